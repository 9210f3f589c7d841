//! The point of a PFS's history a source names after `@@`: a TID, or a
//! date, which means the newest snapshot or change at or before it
//! (cli.md §16).

use std::fmt;

use crate::ctime::{mktime_local, strftime_local};
use crate::ondisk::SnapshotData;
use crate::pfs::store::Change;

/// What `@@` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Point {
    Tid(u64),
    Date(Moment),
}

/// A moment a date names, in seconds since the epoch, with the text
/// that named it (for the messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moment {
    pub secs: i64,
    pub text: String,
}

/// Why a date names no point of a PFS.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PointError {
    #[error(
        "bad date '@@{text}': {why} (dates are YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS], \
         local time, or with Z or +hh:mm)"
    )]
    BadDate { text: String, why: &'static str },
    #[error("{pfs}@@{text} is before the first point the PFS can be read as of: {first}")]
    TooEarly {
        text: String,
        pfs: String,
        first: String,
    },
    #[error("{pfs}: no snapshot or change to read as of @@{text}")]
    NoPoint { pfs: String, text: String },
}

/// The earliest and latest years a date may name: a store's TIDs are
/// stamped by a clock after 1970, and four digits end at 9999.
const YEARS: std::ops::RangeInclusive<i32> = 1970..=9999;

/// Whether `text` (what follows `@@`) is written as a date rather than a
/// TID: four digits and a dash, which no TID has.
pub fn is_date(text: &[u8]) -> bool {
    text.len() >= 5 && text[..4].iter().all(u8::is_ascii_digit) && text[4] == b'-'
}

/// Reads a date: `YYYY-MM-DD` (the end of that day, 23:59:59 local time),
/// `YYYY-MM-DDTHH:MM[:SS]` in local time, or either time form followed by
/// `Z` or `+hh:mm` / `-hh:mm`. A second of 60 (a leap second) is read as
/// 59, the last second the epoch count has before it.
pub fn parse_date(text: &[u8]) -> Result<Moment, PointError> {
    let shown = String::from_utf8_lossy(text).into_owned();
    let bad = |why| PointError::BadDate {
        text: shown.clone(),
        why,
    };
    let s = std::str::from_utf8(text).map_err(|_| bad("not ASCII"))?;
    let mut c = Cursor(s.as_bytes());
    let year = c.digits(4).ok_or_else(|| bad("no four-digit year"))?;
    let month = c.after(b'-', 2).ok_or_else(|| bad("no two-digit month"))?;
    let day = c.after(b'-', 2).ok_or_else(|| bad("no two-digit day"))?;
    let year = i32::try_from(year).map_err(|_| bad("year out of range"))?;
    if !YEARS.contains(&year) {
        return Err(bad("the year is not within 1970-9999"));
    }
    if !(1..=12).contains(&month) {
        return Err(bad("no such month"));
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err(bad("no such day in that month"));
    }
    if c.0.is_empty() {
        let secs = mktime_local(year, month, day, (23, 59, 59))
            .ok_or_else(|| bad("no such local time"))?;
        return Ok(Moment { secs, text: shown });
    }
    let hour = c
        .after(b'T', 2)
        .ok_or_else(|| bad("no THH:MM after the day"))?;
    let min = c.after(b':', 2).ok_or_else(|| bad("no two-digit minute"))?;
    let sec = if c.0.first() == Some(&b':') {
        c.after(b':', 2).ok_or_else(|| bad("no two-digit second"))?
    } else {
        0
    };
    if hour > 23 || min > 59 || sec > 60 {
        return Err(bad("no such time of day"));
    }
    let sec = sec.min(59);
    let offset = match c.0 {
        b"" => None,
        b"Z" | b"z" => Some(0),
        [sign @ (b'+' | b'-'), ..] => {
            c.0 = &c.0[1..];
            let h = c
                .digits(2)
                .ok_or_else(|| bad("no two-digit offset hours"))?;
            let m = c
                .after(b':', 2)
                .ok_or_else(|| bad("no :mm in the offset"))?;
            if h > 23 || m > 59 || !c.0.is_empty() {
                return Err(bad("no such offset"));
            }
            let magnitude = i64::from(h * 3600 + m * 60);
            Some(if *sign == b'-' { -magnitude } else { magnitude })
        }
        _ => return Err(bad("unexpected text after the time")),
    };
    let secs = match offset {
        Some(offset) => {
            days_from_civil(year, month, day) * 86_400 + i64::from(hour * 3600 + min * 60 + sec)
                - offset
        }
        None => mktime_local(year, month, day, (hour, min, sec))
            .ok_or_else(|| bad("no such local time"))?,
    };
    Ok(Moment { secs, text: shown })
}

/// Fixed-width numbers off the front of a date.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<u32> {
        let (head, rest) = self.0.split_at_checked(n)?;
        if !head.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.0 = rest;
        Some(head.iter().fold(0, |v, d| v * 10 + u32::from(d - b'0')))
    }

    fn after(&mut self, sep: u8, n: usize) -> Option<u32> {
        self.0 = self.0.strip_prefix(&[sep])?;
        self.digits(n)
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar
/// (Howard Hinnant's days_from_civil).
fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A point a date may resolve to: a snapshot, or a TID the PFS changed at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub tid: u64,
    /// When it was taken, or when the change was made (seconds).
    pub secs: i64,
    /// A snapshot's label; `None` for a change.
    pub snapshot: Option<String>,
}

/// The points of a PFS read as of `sync` (its sync point) at most: its
/// snapshots and changes with a time (a snapshot or config record's
/// change has none: its leaf carries no create_ts).
pub fn candidates(snapshots: &[SnapshotData], changes: &[Change], sync: u64) -> Vec<Candidate> {
    let snaps = snapshots
        .iter()
        .filter(|s| s.ts != 0 && s.tid <= sync)
        .map(|s| Candidate {
            tid: s.tid,
            secs: i64::try_from(s.ts / 1_000_000).unwrap_or(i64::MAX),
            snapshot: Some(label_text(&s.label)),
        });
    let changes = changes
        .iter()
        .filter(|c| c.time != 0 && c.tid <= sync)
        .map(|c| Candidate {
            tid: c.tid,
            secs: i64::from(c.time),
            snapshot: None,
        });
    snaps.chain(changes).collect()
}

fn label_text(label: &[u8; 64]) -> String {
    let end = label.iter().position(|&b| b == 0).unwrap_or(label.len());
    String::from_utf8_lossy(&label[..end]).into_owned()
}

/// The newest candidate at or before `moment` (the higher TID of two of
/// the same second); a moment before them all names the first.
pub fn choose(moment: &Moment, all: &[Candidate], pfs: &str) -> Result<Candidate, PointError> {
    let key = |c: &&Candidate| (c.secs, c.tid);
    if let Some(c) = all.iter().filter(|c| c.secs <= moment.secs).max_by_key(key) {
        return Ok(c.clone());
    }
    match all.iter().min_by_key(key) {
        Some(first) => Err(PointError::TooEarly {
            text: moment.text.clone(),
            pfs: pfs.to_string(),
            first: format!("@@{} ({:#018x})", date_of(first.secs), first.tid),
        }),
        None => Err(PointError::NoPoint {
            pfs: pfs.to_string(),
            text: moment.text.clone(),
        }),
    }
}

/// A time as dates are read back: `YYYY-MM-DDTHH:MM:SS` local (for the
/// lines that tell which point a date chose).
pub fn date_of(secs: i64) -> String {
    strftime_local(b"%Y-%m-%dT%H:%M:%S", secs, 32).map_or_else(
        || secs.to_string(),
        |b| String::from_utf8_lossy(&b).into_owned(),
    )
}

/// The line a command prints for the point it chose.
pub struct Chosen<'a> {
    pub moment: &'a Moment,
    pub point: &'a Candidate,
}

impl fmt::Display for Chosen<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (m, c) = (self.moment, self.point);
        write!(f, "@@{} is {:#018x}: ", m.text, c.tid)?;
        match &c.snapshot {
            Some(label) => write!(f, "the snapshot of {} \"{label}\"", date_of(c.secs)),
            None => write!(f, "the change of {}", date_of(c.secs)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> i64 {
        parse_date(text.as_bytes()).unwrap().secs
    }

    fn refused(text: &str) -> &'static str {
        match parse_date(text.as_bytes()) {
            Err(PointError::BadDate { why, .. }) => why,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn dates_with_a_zone_are_exact() {
        assert_eq!(utc("1970-01-01T00:00Z"), 0);
        assert_eq!(utc("2026-12-06T21:14:56Z"), 1_796_591_696);
        assert_eq!(utc("2026-12-06T22:14:56+01:00"), 1_796_591_696);
        assert_eq!(utc("2026-12-06T16:14:56-05:00"), 1_796_591_696);
        assert_eq!(utc("2000-02-29T12:00z"), 951_825_600);
        assert_eq!(utc("9999-12-31T23:59:59Z"), 253_402_300_799);
        // A leap second is the second before it.
        assert_eq!(utc("2016-12-31T23:59:60Z"), utc("2016-12-31T23:59:59Z"));
    }

    #[test]
    fn bad_dates_are_named() {
        assert_eq!(refused("0000-01-01"), "the year is not within 1970-9999");
        assert_eq!(refused("1969-12-31"), "the year is not within 1970-9999");
        assert_eq!(refused("2026-13-01"), "no such month");
        assert_eq!(refused("2026-02-29"), "no such day in that month");
        assert_eq!(refused("2026-04-31"), "no such day in that month");
        assert_eq!(refused("2026-12-06T24:00"), "no such time of day");
        assert_eq!(refused("2026-12-06T12:00:61"), "no such time of day");
        assert_eq!(refused("2026-12-06T12"), "no two-digit minute");
        assert_eq!(refused("2026-12-06 12:00"), "no THH:MM after the day");
        assert_eq!(
            refused("2026-12-06T12:00+1:00"),
            "no two-digit offset hours"
        );
        assert_eq!(refused("2026-12-06T12:00+24:00"), "no such offset");
        assert_eq!(
            refused("2026-12-06T12:00Q"),
            "unexpected text after the time"
        );
        assert_eq!(refused("2026-1-06"), "no two-digit month");
        assert_eq!(refused("2026-12-06\u{e9}"), "no THH:MM after the day");
        assert!(matches!(
            parse_date(b"2026-12-06\xff"),
            Err(PointError::BadDate {
                why: "not ASCII",
                ..
            })
        ));
    }

    #[test]
    fn only_dates_start_with_a_year_and_a_dash() {
        assert!(is_date(b"2026-12-06"));
        assert!(!is_date(b"0x0000000100000000"));
        assert!(!is_date(b"100000000"));
        assert!(!is_date(b"-1"));
    }

    fn snap(tid: u64, secs: u64, label: &str) -> SnapshotData {
        let mut s = SnapshotData {
            tid,
            ts: secs * 1_000_000,
            ..SnapshotData::default()
        };
        s.label[..label.len()].copy_from_slice(label.as_bytes());
        s
    }

    #[test]
    fn the_newest_point_at_or_before_the_moment_is_chosen() {
        let snaps = [
            snap(0x10, 100, "a"),
            snap(0x30, 300, "c"),
            snap(0x90, 50, "late"),
        ];
        let changes = [
            Change {
                tid: 0x20,
                time: 200,
                ..Change::default()
            },
            // Of no known time: never chosen.
            Change {
                tid: 0x28,
                time: 0,
                ..Change::default()
            },
        ];
        // 0x90 lies beyond the sync point: never a candidate.
        let all = candidates(&snaps, &changes, 0x40);
        assert_eq!(all.len(), 3);
        let at = |secs| {
            choose(
                &Moment {
                    secs,
                    text: "t".into(),
                },
                &all,
                "pfs",
            )
            .map(|c| c.tid)
        };
        assert_eq!(at(100), Ok(0x10));
        assert_eq!(at(299), Ok(0x20));
        assert_eq!(at(300), Ok(0x30));
        assert_eq!(at(i64::MAX), Ok(0x30));
        let early = at(99).unwrap_err();
        assert!(
            matches!(&early, PointError::TooEarly { first, .. } if first.ends_with("(0x0000000000000010)")),
            "{early}"
        );
        assert!(matches!(
            choose(
                &Moment {
                    secs: 1,
                    text: "t".into()
                },
                &[],
                "pfs"
            ),
            Err(PointError::NoPoint { .. })
        ));
    }

    #[test]
    fn two_points_of_one_second_give_the_later_tid() {
        let all = candidates(&[snap(0x10, 100, "a"), snap(0x12, 100, "b")], &[], u64::MAX);
        let m = Moment {
            secs: 100,
            text: "t".into(),
        };
        assert_eq!(choose(&m, &all, "pfs").unwrap().tid, 0x12);
    }
}
