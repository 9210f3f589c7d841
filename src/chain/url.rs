//! `s3://bucket/prefix[@@0x<tid>]`: where a chain lives and, for a
//! restore, the point of it wanted.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;

use crate::bridge::point::{is_date, parse_date, Moment};
use crate::patharg::CHAIN_SCHEME;

/// A parsed chain URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainUrl {
    pub bucket: String,
    /// Without leading or trailing `/`; may be empty.
    pub prefix: String,
    /// `@@0x<tid>`: the restore point asked for.
    pub tid: Option<u64>,
    /// `@@<date>`: the newest restore point stored at or before it.
    pub date: Option<Moment>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{url}: {why}")]
pub struct UrlError {
    pub url: String,
    pub why: &'static str,
}

impl ChainUrl {
    pub fn parse(word: &OsStr) -> Result<Self, UrlError> {
        let text = word.to_string_lossy().into_owned();
        let bad = |why| UrlError {
            url: text.clone(),
            why,
        };
        let rest = std::str::from_utf8(word.as_bytes())
            .map_err(|_| bad("not valid UTF-8"))?
            .strip_prefix(CHAIN_SCHEME)
            .ok_or_else(|| bad("does not start with s3://"))?;
        let (rest, tid, date) = match rest.rsplit_once("@@") {
            Some((r, t)) if is_date(t.as_bytes()) => {
                let date = parse_date(t.as_bytes()).map_err(|_| {
                    bad("bad @@<date>: YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS], local time or with Z or +hh:mm")
                })?;
                (r, None, Some(date))
            }
            Some((r, t)) => (
                r,
                Some(parse_tid(t).ok_or_else(|| bad("bad @@0x<tid>"))?),
                None,
            ),
            None => (rest, None, None),
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if !valid_bucket(bucket) {
            return Err(bad("bucket names are 3-63 of a-z 0-9 . -"));
        }
        let prefix = prefix.trim_matches('/');
        let parts_ok = prefix.is_empty()
            || prefix
                .split('/')
                .all(|p| !p.is_empty() && p != "." && p != ".." && !p.contains(['\0', '\\']));
        if !parts_ok || prefix.chars().any(char::is_control) {
            return Err(bad(
                "prefix has an empty, '.' or '..' part or a control character",
            ));
        }
        Ok(ChainUrl {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            tid,
            date,
        })
    }

    /// The object key of `name` under the prefix.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    /// The URL without its restore point.
    pub fn base(&self) -> ChainUrl {
        ChainUrl {
            tid: None,
            date: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for ChainUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{CHAIN_SCHEME}{}", self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        if let Some(t) = self.tid {
            write!(f, "@@{t:#018x}")?;
        }
        if let Some(d) = &self.date {
            write!(f, "@@{}", d.text)?;
        }
        Ok(())
    }
}

fn parse_tid(t: &str) -> Option<u64> {
    let hex = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X"))?;
    if hex.is_empty() || hex.len() > 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// S3's rules for new bucket names (the same for Garage).
fn valid_bucket(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && b.as_bytes()[0].is_ascii_alphanumeric()
        && b.as_bytes()[b.len() - 1].is_ascii_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ChainUrl, UrlError> {
        ChainUrl::parse(OsStr::new(s))
    }

    #[test]
    fn a_restore_point_by_date() {
        let u = parse("s3://backups/site@@2026-12-05T18:00Z").unwrap();
        assert_eq!(
            (u.tid, u.date.as_ref().map(|d| d.secs)),
            (None, Some(1_796_493_600))
        );
        assert_eq!(u.to_string(), "s3://backups/site@@2026-12-05T18:00Z");
        assert_eq!(u.base().to_string(), "s3://backups/site");
        let e = parse("s3://backups/site@@2026-02-30").unwrap_err();
        assert!(e.why.starts_with("bad @@<date>"), "{e}");
    }

    #[test]
    fn bucket_prefix_and_tid() {
        let u = parse("s3://backups/site/a/@@0x00000001000a0000").unwrap();
        assert_eq!(u.bucket, "backups");
        assert_eq!(u.prefix, "site/a");
        assert_eq!(u.tid, Some(0x1000a0000));
        assert_eq!(u.key("manifest.json"), "site/a/manifest.json");
        assert_eq!(u.to_string(), "s3://backups/site/a@@0x00000001000a0000");
        let u = parse("s3://backups").unwrap();
        assert_eq!((u.prefix.as_str(), u.tid), ("", None));
        assert_eq!(u.key("manifest.json"), "manifest.json");
    }

    #[test]
    fn refuses_what_is_not_a_chain_url() {
        for bad in [
            "s3://",
            "s3://Up/x",
            "s3://ab/x",
            "s3://-ab/x",
            "s3://b_b/x",
            "s3://bucket/a/../b",
            "s3://bucket/a//b",
            "s3://bucket/./b",
            "s3://bucket/x@@1000",
            "s3://bucket/x@@0x",
            "s3://bucket/x@@0x11112222333344445",
            "s3://bucket/a\nb",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
