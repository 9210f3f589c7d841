//! What `hammer cleanup` reads and keeps between runs (cli.md §23): the
//! configuration text's directives with hammer(8)'s periods, the default
//! text, whether a directive's period has passed since its last run (the
//! `.<directive>.period` files), and the date in a snapshot softlink's
//! name.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::cparse::strtol;
use crate::ctime::{localtime, mktime_local};
use crate::retention::grid::{Grid, Unit};

/// The blanks the original splits a configuration line at.
const WS: &[u8] = b" \t\r\n";

/// One line of the configuration: `<word> <period> <limit> [...]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    pub word: Vec<u8>,
    /// Seconds; 0 when absent (the directive is disabled).
    pub period: i64,
    /// The second time: the retention of `snapshots`, the max-runtime of
    /// the others (0: none). 0 when absent.
    pub limit: i64,
    /// `snapshots`: its third word holds `any` (the original's `strstr`).
    pub any: bool,
    /// `snapshots`: the retention grid of this tool's `<unit>=<n>` words.
    pub grid: Grid,
}

/// Why a configuration text cannot be run.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("illegal suffix converting '{0}' (a time ends in d, h, m or s)")]
    Suffix(String),
    #[error("'{0}': a time may not be negative")]
    Negative(String),
    #[error("'{0}': a time of more than 68 years")]
    TooLong(String),
    #[error(
        "'{0}': a retention grid term is hourly=, daily=, weekly=, monthly= or yearly= and a count"
    )]
    GridTerm(String),
}

/// The original's `strtosecs`: a C number (base 0) and one suffix, d, h,
/// m or s. The original stops the whole run at a bad suffix; here the
/// PFS's configuration is refused before any of it runs.
pub fn strtosecs(word: &[u8]) -> Result<i64, ScheduleError> {
    let shown = || String::from_utf8_lossy(word).into_owned();
    let (n, rest) = strtol(word, 0);
    let unit = match rest.first() {
        Some(b'd') => 86_400,
        Some(b'h') => 3_600,
        Some(b'm') => 60,
        Some(b's') => 1,
        _ => return Err(ScheduleError::Suffix(shown())),
    };
    if n < 0 {
        return Err(ScheduleError::Negative(shown()));
    }
    // The original keeps seconds in an int.
    n.checked_mul(unit)
        .filter(|&s| s <= i64::from(i32::MAX))
        .ok_or_else(|| ScheduleError::TooLong(shown()))
}

/// The directives of a configuration text, as the original reads them:
/// only lines ended by a newline, split at blanks, a first word starting
/// with `#` a comment; the second and third words are times; for
/// `snapshots`, the third holding `any` lets the expiry take any softlink
/// with a date, and words `<unit>=<n>` after the times make the retention
/// grid (words the original ignores).
pub fn parse(text: &[u8]) -> Result<Vec<Directive>, ScheduleError> {
    let text = text.split(|&c| c == 0).next().unwrap_or_default();
    let mut lines: Vec<&[u8]> = text.split(|&c| c == b'\n').collect();
    // What follows the last newline is no line to the original.
    lines.pop();
    let mut out = Vec::new();
    for line in lines {
        let words: Vec<&[u8]> = line
            .split(|c| WS.contains(c))
            .filter(|w| !w.is_empty())
            .collect();
        let Some(word) = words.first() else { continue };
        if word.starts_with(b"#") {
            continue;
        }
        let time = |i: usize| words.get(i).map_or(Ok(0), |w| strtosecs(w));
        let mut d = Directive {
            word: word.to_vec(),
            period: time(1)?,
            limit: time(2)?,
            any: words
                .get(3)
                .is_some_and(|w| w.windows(3).any(|x| x == b"any")),
            grid: Grid::default(),
        };
        if d.word == b"snapshots" {
            for w in words.iter().skip(3).filter(|w| w.contains(&b'=')) {
                grid_term(&mut d.grid, w)?;
            }
        }
        out.push(d);
    }
    Ok(out)
}

/// One `<unit>=<n>` word into `grid`.
fn grid_term(grid: &mut Grid, w: &[u8]) -> Result<(), ScheduleError> {
    let bad = || ScheduleError::GridTerm(String::from_utf8_lossy(w).into_owned());
    let (name, count) = w.split_at(w.iter().position(|&c| c == b'=').ok_or_else(bad)?);
    let unit = Unit::ALL
        .into_iter()
        .find(|u| u.name().as_bytes() == name)
        .ok_or_else(bad)?;
    let n = std::str::from_utf8(&count[1..])
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
        .and_then(|s| s.parse::<u32>().ok())
        .ok_or_else(bad)?;
    grid.set(unit, n);
    Ok(())
}

/// The configuration the original's `config_init` writes for a PFS
/// without one (snapshots disabled for /tmp, /var/tmp and /usr/obj).
pub fn default_text(path: &[u8]) -> Vec<u8> {
    let snapshots: &[u8] = match path {
        b"/tmp" | b"/var/tmp" | b"/usr/obj" => b"snapshots 0d 0d\n",
        _ => b"snapshots 1d 60d\n",
    };
    let mut t = snapshots.to_vec();
    t.extend_from_slice(
        b"prune     1d 5m\n\
          rebalance 1d 5m\n\
          #dedup\t   1d 5m\n\
          reblock   1d 5m\n\
          recopy    30d 10m\n",
    );
    t
}

/// Whether a directive with this period is due at `now` after its last
/// run at `last` (the original's `check_period`): a period of whole
/// minutes, hours or days counts the local-time boundaries crossed, so a
/// daily job runs once the day has turned over, however close to
/// midnight the last run was.
pub fn due(now: i64, last: i64, period: i64) -> bool {
    let floor = |t: i64| -> Option<i64> {
        let tm = localtime(t)?;
        let sec = if period % 60 == 0 { 0 } else { tm.sec };
        let min = if period % 3_600 == 0 { 0 } else { tm.min };
        let hour = if period % 86_400 == 0 { 0 } else { tm.hour };
        mktime_local(tm.year, tm.month, tm.day, (hour, min, sec))
    };
    match (floor(now), floor(last)) {
        (Some(n), Some(l)) => n.saturating_sub(l) >= period,
        _ => true,
    }
}

/// `<dir>/.<word>.period`: where the start time of a directive's last
/// successful run is kept.
fn period_file(dir: &Path, word: &[u8], suffix: &str) -> PathBuf {
    let mut name = b".".to_vec();
    name.extend_from_slice(word);
    name.extend_from_slice(b".period");
    name.extend_from_slice(suffix.as_bytes());
    dir.join(std::ffi::OsStr::new(
        std::str::from_utf8(&name).unwrap_or(".unnamed.period"),
    ))
}

/// The start time of the directive's last successful run; `None` (due)
/// when there is none or it cannot be read.
pub fn last_run(dir: &Path, word: &[u8]) -> Option<i64> {
    let text = fs::read(period_file(dir, word, "")).ok()?;
    let line = text.split(|&c| c == b'\n').next()?;
    if line.is_empty() {
        return None;
    }
    Some(strtol(line, 0).0)
}

/// Records `start` as the directive's last successful run: `0x%08llx` in
/// a new file renamed over the old (the original's `save_period`).
pub fn save_run(dir: &Path, word: &[u8], start: i64) -> io::Result<()> {
    let new = period_file(dir, word, ".new");
    let done = (|| {
        let mut f = fs::File::create(&new)?;
        writeln!(f, "0x{start:08x}")?;
        f.sync_all()?;
        fs::rename(&new, period_file(dir, word, ""))
    })();
    if done.is_err() {
        let _ = fs::remove_file(&new);
    }
    done
}

/// The time a snapshot softlink's name tells (the original's
/// `check_expired`): after its first `-` or `.`, `%4d%2d%2d[-%2d%2d]`
/// read as local time. `None` when the name holds no date.
pub fn name_time(name: &[u8]) -> Option<i64> {
    let start = name.iter().position(|&c| c == b'-' || c == b'.')? + 1;
    let rest = &name[start..];
    let num = |s: &[u8], width: usize| -> Option<(i32, usize)> {
        // sscanf's %Nd: blanks, a sign, then up to N characters in all.
        let skip = s.iter().take_while(|c| c.is_ascii_whitespace()).count();
        let s = &s[skip..];
        let sign = usize::from(matches!(s.first(), Some(b'-' | b'+')));
        let digits = s[sign..]
            .iter()
            .take(width.saturating_sub(sign))
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        let v: i32 = std::str::from_utf8(&s[..sign + digits])
            .ok()?
            .parse()
            .ok()?;
        Some((v, skip + sign + digits))
    };
    let (year, a) = num(rest, 4)?;
    let (month, b) = num(&rest[a..], 2)?;
    let (day, c) = num(&rest[a + b..], 2)?;
    let mut at = a + b + c;
    let (mut hour, mut minute) = (0, 0);
    if rest.get(at) == Some(&b'-') {
        at += 1;
        if let Some((h, n)) = num(&rest[at..], 2) {
            hour = h;
            if let Some((m, _)) = num(&rest[at + n..], 2) {
                minute = m;
            }
        }
    }
    let u = |v: i32| u32::try_from(v).ok();
    mktime_local(year, u(month)?, u(day)?, (u(hour)?, u(minute)?, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc() {
        std::env::set_var("TZ", "UTC");
    }

    #[test]
    fn times_read_as_the_original_reads_them() {
        assert_eq!(strtosecs(b"1d"), Ok(86_400));
        assert_eq!(strtosecs(b"5m"), Ok(300));
        assert_eq!(strtosecs(b"2h"), Ok(7_200));
        assert_eq!(strtosecs(b"30s"), Ok(30));
        assert_eq!(strtosecs(b"0d"), Ok(0));
        // Base 0, and what follows the suffix is not looked at.
        assert_eq!(strtosecs(b"010m"), Ok(480));
        assert_eq!(strtosecs(b"1dx"), Ok(86_400));
        assert_eq!(strtosecs(b"12"), Err(ScheduleError::Suffix("12".into())));
        assert_eq!(strtosecs(b"1w"), Err(ScheduleError::Suffix("1w".into())));
        assert_eq!(
            strtosecs(b"-1d"),
            Err(ScheduleError::Negative("-1d".into()))
        );
        assert_eq!(
            strtosecs(b"30000d"),
            Err(ScheduleError::TooLong("30000d".into()))
        );
    }

    #[test]
    fn the_default_configuration_parses_as_its_lines_say() {
        let d = parse(&default_text(b"/home")).unwrap();
        let words: Vec<_> = d.iter().map(|d| d.word.as_slice()).collect();
        assert_eq!(
            words,
            [
                &b"snapshots"[..],
                b"prune",
                b"rebalance",
                b"reblock",
                b"recopy"
            ]
        );
        assert_eq!((d[0].period, d[0].limit), (86_400, 60 * 86_400));
        assert_eq!((d[4].period, d[4].limit), (30 * 86_400, 600));
        assert!(default_text(b"/tmp").starts_with(b"snapshots 0d 0d\n"));
    }

    #[test]
    fn lines_comments_any_and_the_grid() {
        let text = b"# a comment\n\n  snapshots 1d 30d any monthly=12 daily=7\nprune 1d\nreblock\nlast line without newline 1d";
        let d = parse(text).unwrap();
        assert_eq!(d.len(), 3);
        assert!(d[0].any);
        assert_eq!(d[0].grid.count(Unit::Monthly), 12);
        assert_eq!(d[0].grid.count(Unit::Daily), 7);
        assert_eq!(d[0].grid.count(Unit::Hourly), 0);
        assert_eq!((d[1].period, d[1].limit), (86_400, 0));
        assert_eq!((d[2].period, d[2].limit), (0, 0));
        // The third word only: `any` later is a word the original ignores.
        let d = parse(b"snapshots 1d 30d monthly=1 any\n").unwrap();
        assert!(!d[0].any);
        // The text ends at its NUL.
        assert_eq!(parse(b"prune 1d 5m\n\0reblock 1d 5m\n").unwrap().len(), 1);
        for bad in [
            &b"snapshots 1d 30d monthly=\n"[..],
            b"snapshots 1d 30d fortnightly=2\n",
            b"snapshots 1d 30d monthly=-1\n",
            b"snapshots 1d 30d monthly=x\n",
            b"snapshots 1d 30d monthly=99999999999\n",
        ] {
            assert!(
                matches!(parse(bad), Err(ScheduleError::GridTerm(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse(b"prune 1 5m\n"),
            Err(ScheduleError::Suffix(_))
        ));
    }

    #[test]
    fn a_period_counts_local_boundaries() {
        utc();
        let day = 86_400;
        let midnight = 1_796_601_600; // 2026-12-07 00:00:00 UTC
                                      // A daily job that ran a minute before midnight is due after it.
        assert!(due(midnight + 60, midnight - 60, day));
        assert!(!due(midnight + 23 * 3_600, midnight + 60, day));
        // Five minutes: whole minutes are compared.
        assert!(due(midnight + 300, midnight + 59, 300));
        assert!(!due(midnight + 299, midnight + 1, 300));
        // 90 seconds: no rounding.
        assert!(!due(midnight + 89, midnight, 90));
        assert!(due(midnight + 90, midnight, 90));
    }

    #[test]
    fn period_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(last_run(dir.path(), b"prune"), None);
        save_run(dir.path(), b"prune", 0x5f5e_1000).unwrap();
        assert_eq!(
            fs::read(dir.path().join(".prune.period")).unwrap(),
            b"0x5f5e1000\n"
        );
        assert_eq!(last_run(dir.path(), b"prune"), Some(0x5f5e_1000));
        assert!(!dir.path().join(".prune.period.new").exists());
    }

    #[test]
    fn softlink_names_tell_their_date() {
        utc();
        assert_eq!(name_time(b"snap-20261207-0130"), Some(1_796_607_000));
        assert_eq!(name_time(b"snap-20261207"), Some(1_796_601_600));
        assert_eq!(name_time(b"daily.20261207"), Some(1_796_601_600));
        assert_eq!(name_time(b"snapshot"), None);
        assert_eq!(name_time(b"snap-x"), None);
    }
}
