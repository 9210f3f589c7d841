//! The retention grid (cli.md §23.3): which snapshots `keep N hourly /
//! daily / weekly / monthly / yearly` spares from cleanup's expiry,
//! counted as restic's `forget --keep-*`, sanoid and btrbk count them:
//! the newest snapshot of each of the N newest local-time hours, days,
//! ISO weeks, months or years that hold a snapshot.

use crate::ctime::localtime;

/// A unit of the grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Unit {
    pub const ALL: [Unit; 5] = [
        Unit::Hourly,
        Unit::Daily,
        Unit::Weekly,
        Unit::Monthly,
        Unit::Yearly,
    ];

    /// Its word in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Hourly => "hourly",
            Unit::Daily => "daily",
            Unit::Weekly => "weekly",
            Unit::Monthly => "monthly",
            Unit::Yearly => "yearly",
        }
    }

    /// The local-time hour, day, ISO week, month or year of `secs`, as one
    /// number; `None` when the C library has no local time for it.
    fn bucket(self, secs: i64) -> Option<i64> {
        let t = localtime(secs)?;
        let y = i64::from(t.year);
        Some(match self {
            Unit::Hourly => (y * 1_000 + i64::from(t.yday)) * 24 + i64::from(t.hour),
            Unit::Daily => y * 1_000 + i64::from(t.yday),
            Unit::Weekly => {
                let (wy, w) = iso_week(t.year, t.yday, t.wday);
                i64::from(wy) * 100 + i64::from(w)
            }
            Unit::Monthly => y * 100 + i64::from(t.month),
            Unit::Yearly => y,
        })
    }
}

impl std::fmt::Display for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How many of each unit to keep (0: the unit keeps none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Grid {
    counts: [u32; 5],
}

impl Grid {
    pub fn set(&mut self, unit: Unit, n: u32) {
        self.counts[unit as usize] = n;
    }

    pub fn count(&self, unit: Unit) -> u32 {
        self.counts[unit as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|&n| n == 0)
    }

    /// `daily=7 monthly=12`: the grid as the configuration writes it.
    pub fn text(&self) -> String {
        Unit::ALL
            .into_iter()
            .filter(|&u| self.count(u) > 0)
            .map(|u| format!("{}={}", u.name(), self.count(u)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// For snapshots taken at `times` (seconds since the epoch, in any
    /// order; ties are broken by position, a later one counting as
    /// newer), the first unit that keeps each, or `None`. Walking from the
    /// newest, a unit keeps a snapshot whose hour (day, week, ...) is not
    /// that of the snapshot the unit kept last, until it has kept its
    /// count. A time with no local time is kept by none.
    pub fn kept(&self, times: &[i64]) -> Vec<Option<Unit>> {
        let mut order: Vec<usize> = (0..times.len()).collect();
        order.sort_by(|&a, &b| times[b].cmp(&times[a]).then(b.cmp(&a)));
        let mut kept = vec![None; times.len()];
        for unit in Unit::ALL {
            let mut left = self.count(unit);
            let mut last = None;
            for &i in &order {
                if left == 0 {
                    break;
                }
                let Some(b) = unit.bucket(times[i]) else {
                    continue;
                };
                if last != Some(b) {
                    last = Some(b);
                    left -= 1;
                    kept[i].get_or_insert(unit);
                }
            }
        }
        kept
    }
}

/// What s3-prune keeps of a chain's restore points (cli.md §23.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retain {
    /// `keep=<N>`: the newest N increments, whatever their times.
    pub keep: Option<usize>,
    /// The restore points the grid keeps, by their objects' times.
    pub grid: Grid,
}

impl Retain {
    /// Which of the restore points (the objects' ends, oldest first, each
    /// with its object's time) stay: the newest (the chain's head), those
    /// of the newest `keep` increments and their base, those the grid
    /// keeps, and, when a grid is given, every object without a time (it
    /// cannot be placed in one).
    pub fn kept(&self, times: &[Option<u64>]) -> Vec<bool> {
        let n = times.len();
        let mut kept = vec![false; n];
        if let Some(k) = self.keep {
            kept[n.saturating_sub(k.saturating_add(1))..].fill(true);
        }
        if let Some(head) = kept.last_mut() {
            *head = true;
        }
        if !self.grid.is_empty() {
            let dated: Vec<(usize, i64)> = times
                .iter()
                .enumerate()
                .filter_map(|(i, t)| Some((i, i64::try_from((*t)?).ok()?)))
                .collect();
            let secs: Vec<i64> = dated.iter().map(|d| d.1).collect();
            for ((i, _), unit) in dated.iter().zip(self.grid.kept(&secs)) {
                kept[*i] |= unit.is_some();
            }
            for (k, t) in kept.iter_mut().zip(times) {
                *k |= t.is_none();
            }
        }
        kept
    }

    /// `keep=2 monthly=12`: as the command line gives it.
    pub fn text(&self) -> String {
        let keep = self.keep.map(|k| format!("keep={k}"));
        let grid = Some(self.grid.text()).filter(|g| !g.is_empty());
        [keep, grid]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The ISO 8601 week-numbering year and week of a day given as
/// `localtime` gives it (`yday` from 0, `wday` 0 for Sunday).
fn iso_week(year: i32, yday: u32, wday: u32) -> (i32, u32) {
    let iso_wday = (wday + 6) % 7 + 1;
    let week = (i64::from(yday) + 1 - i64::from(iso_wday) + 10) / 7;
    let jan1 = (i64::from(wday) - i64::from(yday % 7) + 7) % 7;
    if week < 1 {
        let prev_days = if is_leap(year - 1) { 366 } else { 365 };
        let prev_jan1 = (jan1 - prev_days % 7 + 7) % 7;
        (year - 1, weeks_in(year - 1, prev_jan1))
    } else if week > i64::from(weeks_in(year, jan1)) {
        (year + 1, 1)
    } else {
        (year, u32::try_from(week).unwrap_or(1))
    }
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// 53 when the year starts on a Thursday, or is a leap year starting on a
/// Wednesday; else 52. `jan1` is January 1's weekday, 0 for Sunday.
fn weeks_in(year: i32, jan1: i64) -> u32 {
    if jan1 == 4 || (jan1 == 3 && is_leap(year)) {
        53
    } else {
        52
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc() {
        std::env::set_var("TZ", "UTC");
    }

    const DAY: i64 = 86_400;
    /// 2026-01-01 00:00:00 UTC, a Thursday.
    const Y2026: i64 = 1_767_225_600;

    #[test]
    fn iso_weeks_at_the_turn_of_years() {
        utc();
        let week = |t: i64| {
            let tm = localtime(t).unwrap();
            iso_week(tm.year, tm.yday, tm.wday)
        };
        // 2026-01-01 is a Thursday: week 1 of 2026.
        assert_eq!(week(Y2026), (2026, 1));
        // 2025-12-29 (Monday) is in week 1 of 2026 too.
        assert_eq!(week(Y2026 - 3 * DAY), (2026, 1));
        // 2025-12-28 (Sunday) ends week 52 of 2025.
        assert_eq!(week(Y2026 - 4 * DAY), (2025, 52));
        // 2026 starts on a Thursday: it has 53 weeks; 2026-12-31 is in
        // week 53, 2027-01-03 (Sunday) too, 2027-01-04 in week 1 of 2027.
        assert_eq!(week(Y2026 + 364 * DAY), (2026, 53));
        assert_eq!(week(Y2026 + 367 * DAY), (2026, 53));
        assert_eq!(week(Y2026 + 368 * DAY), (2027, 1));
        // 2021-01-01 (Friday) is in week 53 of 2020 (a leap year that
        // started on a Wednesday).
        assert_eq!(week(1_609_459_200), (2020, 53));
    }

    #[test]
    fn each_unit_keeps_the_newest_of_its_newest_buckets() {
        utc();
        // A snapshot every 6 hours for 100 days of 2026.
        let times: Vec<i64> = (0..400).map(|i| Y2026 + i * 6 * 3_600).collect();
        let mut g = Grid::default();
        g.set(Unit::Daily, 3);
        let kept = g.kept(&times);
        let ids: Vec<usize> = (0..times.len()).filter(|&i| kept[i].is_some()).collect();
        // The last snapshot of each of the 3 newest days.
        assert_eq!(ids, [391, 395, 399]);
        g.set(Unit::Monthly, 4);
        let kept = g.kept(&times);
        let monthly: Vec<usize> = (0..times.len())
            .filter(|&i| kept[i] == Some(Unit::Monthly))
            .collect();
        // The newest of January, February and March (the newest of April
        // is the daily 399, counted for both).
        assert_eq!(monthly, [123, 235, 359]);
        assert_eq!(kept[399], Some(Unit::Daily));
        // A unit counts only the buckets that hold a snapshot.
        let sparse = [Y2026, Y2026 + 40 * DAY, Y2026 + 300 * DAY];
        let mut g = Grid::default();
        g.set(Unit::Monthly, 3);
        assert_eq!(g.kept(&sparse), vec![Some(Unit::Monthly); 3]);
        // Two of one second: the later one given is the newer.
        let mut g = Grid::default();
        g.set(Unit::Yearly, 1);
        assert_eq!(g.kept(&[Y2026, Y2026]), vec![None, Some(Unit::Yearly)]);
        assert!(Grid::default().kept(&times).iter().all(Option::is_none));
        assert_eq!(g.text(), "yearly=1");
    }
}
