//! `hammer cleanup` through the binary (cli.md §23): every PFS of a store
//! handled once per period with the original's lines, the default
//! configuration written, snapshots taken (a slave's at its sync point)
//! and expired with the retention grid over simulated months (faketime),
//! prune-everything when snapshots are disabled, refusals of bad
//! configurations, locks, `-q`, `-j` and a kill at 50 points.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::*;
use hammer_mirror::ondisk::rectype;

/// 2027-01-01 00:00:00 UTC, a Friday.
pub(super) const JAN1: i64 = 1_798_761_600;
pub(super) const DAY: i64 = 86_400;

fn utc(args: &[&str]) -> Output {
    hammer()
        .env("TZ", "UTC")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The library faketime preloads (package libfaketime, which .ci/run
/// installs with faketime). Preloaded straight into hammer rather than
/// through the faketime program, which forks: a kill must reach hammer.
fn libfaketime() -> PathBuf {
    let found = fs::read_dir("/usr/lib")
        .unwrap()
        .flatten()
        .map(|e| e.path().join("faketime/libfaketime.so.1"))
        .chain([PathBuf::from("/usr/lib/faketime/libfaketime.so.1")])
        .find(|p| p.is_file());
    found.expect("libfaketime (apt-get install faketime; .ci/run installs it)")
}

/// `secs` as FAKETIME's absolute form, `@YYYY-MM-DD HH:MM:SS` (UTC).
fn faketime(secs: i64) -> String {
    // Days to a civil date (Howard Hinnant's algorithm).
    let (days, rem) = (secs.div_euclid(DAY), secs.rem_euclid(DAY));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "@{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3_600,
        rem / 60 % 60,
        rem % 60
    )
}

/// hammer with the clock starting at `secs` (UTC).
fn hammer_at(secs: i64) -> Command {
    let mut c = hammer();
    c.env("LD_PRELOAD", libfaketime())
        .env("FAKETIME", faketime(secs))
        .env("TZ", "UTC")
        .stdin(Stdio::null());
    c
}

/// `hammer <args>` with the clock at `secs` (UTC).
pub(super) fn at(secs: i64, args: &[&str]) -> Output {
    hammer_at(secs).args(args).output().unwrap()
}

#[track_caller]
pub(super) fn at_ok(secs: i64, args: &[&str]) -> Output {
    let out = at(secs, args);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// (TID, note) of each snapshot snapls lists.
pub(super) fn snapshots(pfs: &Path) -> Vec<(u64, String)> {
    let out = ok(&["snapls", pfs.to_str().unwrap()]);
    text(&out.stdout)
        .lines()
        .skip(2)
        .map(|l| {
            let tid = u64::from_str_radix(&l[2..18], 16).unwrap();
            (tid, l.rsplit('\t').next().unwrap().to_owned())
        })
        .collect()
}

pub(super) fn set_config(pfs: &Path, text: &str) {
    let file = pfs.with_extension("config");
    fs::write(&file, text).unwrap();
    ok(&["config", pfs.to_str().unwrap(), file.to_str().unwrap()]);
}

/// The directory cleanup keeps PFS `id`'s period and cycle files in.
pub(super) fn cleanup_dir(root: &Path, id: u32) -> PathBuf {
    root.canonicalize()
        .unwrap()
        .join(format!(".hammer-store.cleanup/pfs{id:05}"))
}

/// The lines of one PFS's part of cleanup's stdout.
pub(super) fn pfs_lines(path: &Path, dir: &Path, id: u32, steps: &[(&str, &str)]) -> String {
    let mut s = format!(
        "cleanup {:<20} - handle PFS#{id} using {}\n",
        path.display(),
        dir.display()
    );
    for (word, what) in steps {
        s.push_str(&format!("{word:>20} - {what}\n"));
    }
    s
}

const DEFAULT_STEPS: [&str; 5] = ["snapshots", "prune", "rebalance", "reblock", "recopy"];

fn all(result: [&'static str; 5]) -> Vec<(&'static str, &'static str)> {
    DEFAULT_STEPS.into_iter().zip(result).collect()
}

/// A store with a master (an import in it) and its slave, mirrored.
fn master_and_slave(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let root = store_with_master(dir, "st");
    let m = root.join("master");
    let t = tree(dir, [("f", b"one".to_vec())]);
    import(&t, &m);
    let s = root.join("slave");
    let shared = format!("shared-uuid={}", shared_uuid(&m));
    ok(&["pfs-slave", s.to_str().unwrap(), &shared]);
    ok(&["mirror-copy", m.to_str().unwrap(), s.to_str().unwrap()]);
    (root, m, s)
}

#[test]
fn a_store_has_each_pfs_cleaned_once_per_period() {
    let dir = tempfile::tempdir().unwrap();
    let (root, m, s) = master_and_slave(dir.path());
    let slave_sync = sync_end(&root, 2);
    let before = snapshots(&m);
    let out = utc(&["cleanup", root.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run = all(["run", "run", "run..", "run....", "run...."]);
    let want = [
        pfs_lines(&root, &cleanup_dir(&root, 0), 0, &run),
        pfs_lines(&m, &cleanup_dir(&root, 1), 1, &run),
        pfs_lines(&s, &cleanup_dir(&root, 2), 2, &run),
    ]
    .concat();
    assert_eq!(text(&out.stdout), want);
    // Each PFS got the default configuration.
    let config = text(&ok(&["config", s.to_str().unwrap()]).stdout);
    assert_eq!(
        config,
        "snapshots 1d 60d\nprune     1d 5m\nrebalance 1d 5m\n#dedup\t   1d 5m\n\
         reblock   1d 5m\nrecopy    30d 10m\n"
    );
    // The master's snapshot is at its sync point, where the import's is
    // (or just past it: writing the configuration moved the sync point);
    // the slave's is at the slave's sync point, which it holds whole.
    let after = snapshots(&m);
    assert_eq!(after.len(), before.len() + 1, "{after:?}");
    assert_eq!(snapshots(&s).last().unwrap().0, slave_sync);
    for step in DEFAULT_STEPS {
        assert!(cleanup_dir(&root, 1)
            .join(format!(".{step}.period"))
            .is_file());
    }
    // The store's own directory stays private.
    let mode = fs::metadata(cleanup_dir(&root, 2)).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o700
    );

    // Again the same day: every step skipped; -F runs them.
    let out = utc(&["cleanup", m.to_str().unwrap()]);
    assert_eq!(
        text(&out.stdout),
        pfs_lines(&m, &cleanup_dir(&root, 1), 1, &all(["skip"; 5]))
    );
    let out = utc(&["-F", "cleanup", m.to_str().unwrap(), m.to_str().unwrap()]);
    assert_eq!(
        text(&out.stdout),
        pfs_lines(&m, &cleanup_dir(&root, 1), 1, &run)
            + &format!("cleanup {:<20} - PFS#1 already handled\n", m.display())
    );
    assert_eq!(out.status.code(), Some(0));
    // pfs-status names the directory.
    let status = text(&ok(&["pfs-status", m.to_str().unwrap()]).stdout);
    assert!(status.contains(&format!(
        "    snapshots directory defaults to {}\n",
        cleanup_dir(&root, 1).display()
    )));
    // A PFS destroyed takes its directory with it: a new PFS of the id
    // starts afresh.
    destroy(&s);
    assert!(!cleanup_dir(&root, 2).exists());
}

#[test]
fn quiet_runs_say_nothing_and_events_tell_each_step() {
    let dir = tempfile::tempdir().unwrap();
    let (root, m, _) = master_and_slave(dir.path());
    let events = dir.path().join("events");
    let out = utc(&[
        "-q",
        "-j",
        events.to_str().unwrap(),
        "cleanup",
        root.to_str().unwrap(),
    ]);
    assert_eq!(
        (text(&out.stdout), text(&out.stderr), out.status.code()),
        (String::new(), String::new(), Some(0))
    );
    let lines = fs::read_to_string(&events).unwrap();
    let steps: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["event"] == "cleanup")
        .collect();
    // Per PFS: one "handle" and one event per directive.
    assert_eq!(steps.len(), 3 * 6, "{lines}");
    let master: Vec<_> = steps
        .iter()
        .filter(|v| v["pfs_id"] == 1)
        .map(|v| {
            format!(
                "{}={}",
                v["step"].as_str().unwrap(),
                v["result"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        master,
        [
            "pfs=handle",
            "snapshots=run",
            "prune=run",
            "rebalance=run",
            "reblock=run",
            "recopy=run"
        ]
    );
    assert_eq!(steps[1]["path"], root.to_str().unwrap());
    let m_steps = steps
        .iter()
        .filter(|v| v["path"] == m.to_str().unwrap())
        .count();
    assert_eq!(m_steps, 6);
}

#[test]
fn bad_configurations_unknown_words_and_locks() {
    let dir = tempfile::tempdir().unwrap();
    let (root, m, s) = master_and_slave(dir.path());
    set_config(&m, "snapshots 1d 30d\nprune 1 5m\n");
    set_config(&s, "snapshots 1d 30d fortnightly=2\n");
    let out = utc(&["cleanup", m.to_str().unwrap(), s.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let head = |p: &Path, id| {
        format!(
            "cleanup {:<20} - handle PFS#{id} using {}\n",
            p.display(),
            cleanup_dir(&root, id).display()
        )
    };
    assert_eq!(
        text(&out.stdout),
        format!(
            "{}              config - bad config: illegal suffix converting '1' (a time ends in d, h, m or s)\n\
             {}              config - bad config: 'fortnightly=2': a retention grid term is hourly=, daily=, weekly=, monthly= or yearly= and a count\n",
            head(&m, 1),
            head(&s, 2)
        )
    );
    // Nothing ran: no snapshot, no period file.
    assert!(!cleanup_dir(&root, 1).join(".snapshots.period").exists());
    // Under -q the failures are on stderr.
    let out = utc(&["-q", "cleanup", m.to_str().unwrap()]);
    assert_eq!(text(&out.stdout), "");
    assert!(
        text(&out.stderr).contains("config: bad config: illegal suffix converting '1'"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1));

    // Words the original does not know, and periods of 0.
    set_config(
        &m,
        "frobnicate 1d 5m\nprune 0d 5m\nreblock\nfrobnicate 0d\n",
    );
    let out = utc(&["cleanup", m.to_str().unwrap()]);
    assert_eq!(
        text(&out.stdout),
        pfs_lines(
            &m,
            &cleanup_dir(&root, 1),
            1,
            &[
                ("frobnicate", "unknown directive"),
                ("prune", "disabled"),
                ("reblock", "disabled"),
                ("frobnicate", "disabled")
            ]
        )
    );
    assert_eq!(out.status.code(), Some(0));

    // A PFS another cleanup holds is passed over.
    let lock = fs::File::open(cleanup_dir(&root, 1)).unwrap();
    let held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock).unwrap();
    let out = utc(&["cleanup", m.to_str().unwrap()]);
    assert_eq!(
        text(&out.stdout),
        format!(
            "cleanup {:<20} - PFS#1 locked by other process\n",
            m.display()
        )
    );
    assert_eq!(out.status.code(), Some(0));
    drop(held);

    // A path in no store and on no HAMMER.
    let out = utc(&["cleanup", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).starts_with(&format!(
            "cleanup {:<20} - not a HAMMER filesystem",
            dir.path().display()
        )),
        "{}",
        text(&out.stdout)
    );
}

/// The retention grid counts the snapshots with a time (cli.md §23.3): a
/// record without one (`ts` 0, which would read as 1970) is not kept as
/// the newest of its year, and a record of TID 0, which the expiry always
/// deletes, takes no year's place from a snapshot the grid keeps.
#[test]
fn the_grid_counts_only_snapshots_with_a_time() {
    use hammer_mirror::ondisk::SnapshotData;
    use hammer_mirror::pfs::{Pfs, SnapshotReq};
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let m = root.join("master");
    let t = tree(dir.path(), [("f", b"one".to_vec())]);
    let tid = import(&t, &m);
    // 2020-06-01 12:00 and 13:00 UTC, in µs.
    const NOON: u64 = 1_591_012_800_000_000;
    const ONE: u64 = NOON + 3_600_000_000;
    let mut req = SnapshotReq::of(&[
        SnapshotData::new(tid - 1, 0, b"no time"),
        SnapshotData::new(tid - 2, NOON, b"kept 2020"),
        SnapshotData::new(0, ONE, b"tid zero"),
    ])
    .unwrap();
    open(&root, 1).add_snapshots(&mut req).unwrap();
    assert_eq!(req.error, None);
    // This year's snapshot (the import's) and 2020's; 1970 is no year of
    // a snapshot.
    set_config(&m, "snapshots 1d 1h yearly=3\n");
    let out = utc(&["-v", "-F", "cleanup", m.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains(&format!(
            "    expire 0x{:016x} 1970-01-01 00:00:00 UTC no time\n",
            tid - 1
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "    keep 0x{:016x} 2020-06-01 12:00:00 UTC kept 2020 (yearly)\n",
            tid - 2
        )),
        "{said}"
    );
    let left: Vec<u64> = snapshots(&m).iter().map(|s| s.0).collect();
    assert!(left.contains(&(tid - 2)), "{left:x?}");
    assert!(!left.contains(&(tid - 1)), "{left:x?}");
    assert!(!left.contains(&0), "{left:x?}");
}

#[test]
#[ignore = "needs libfaketime (apt-get install faketime): cargo test -- --include-ignored, as .ci/run does"]
fn disabled_snapshots_prune_everything_and_period_zero_only_expires() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let m = root.join("master");
    let t = tree(dir.path(), [("f", b"v0".to_vec())]);
    for g in 1..4 {
        at_ok(
            JAN1 + g * DAY,
            &["import", t.to_str().unwrap(), m.to_str().unwrap()],
        );
        fs::write(t.join("f"), format!("v{g}")).unwrap();
    }
    assert_eq!(snapshots(&m).len(), 3);
    // Retention only: snapshots older than 2 days go, none is taken.
    set_config(&m, "snapshots 0d 2d\n");
    let out = at_ok(
        JAN1 + 4 * DAY - 3600,
        &["-v", "cleanup", m.to_str().unwrap()],
    );
    let said = text(&out.stdout);
    assert!(
        said.contains("           snapshots - only removing old snapshots\n"),
        "{said}"
    );
    assert!(said.contains("    expire 0x"), "{said}");
    assert!(said.contains(" 2027-01-02 00:00:00 UTC import "), "{said}");
    let left = snapshots(&m);
    assert_eq!(left.len(), 2, "{left:?}");
    // Snapshots disabled: prune-everything, the snapshot records go too.
    set_config(&m, "snapshots 0d 0d\nprune 1d 5m\n");
    let out = at_ok(JAN1 + 5 * DAY, &["cleanup", m.to_str().unwrap()]);
    assert!(
        text(&out.stdout).contains("           snapshots - disabled\n               prune - run\n")
    );
    assert_eq!(snapshots(&m), []);
    let mut n = 0;
    open(&root, 1)
        .for_each_record(|leaf, _| n += usize::from(leaf.base.delete_tid != 0))
        .unwrap();
    assert_eq!(n, 0, "history left after prune-everything");
    ok(&["verify", m.to_str().unwrap()]);
}

/// Seventy simulated days of a nightly import (02:00) and cleanup (03:00)
/// with `snapshots 1d 7d weekly=3 monthly=3`: what is left is the last 7
/// days and the newest snapshot of the months and ISO weeks the grid
/// counts, each exporting the file as it was that day.
#[test]
#[ignore = "needs libfaketime (apt-get install faketime): cargo test -- --include-ignored, as .ci/run does"]
fn seventy_nights_keep_the_retention_and_the_grid() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let m = root.join("master");
    let t = tree(dir.path(), [("f", b"".to_vec())]);
    set_config(
        &m,
        "snapshots 1d 7d weekly=3 monthly=3\nprune 1d 5m\nreblock 7d 5m\n",
    );
    let mut tid_of_day = Vec::new();
    for day in 0..70 {
        fs::write(t.join("f"), format!("day {day}")).unwrap();
        let out = at_ok(
            JAN1 + day * DAY + 7_200,
            &["import", t.to_str().unwrap(), m.to_str().unwrap()],
        );
        let summary = text(&out.stdout);
        let tid = u64::from_str_radix(summary.trim().rsplit("0x").next().unwrap(), 16).unwrap();
        tid_of_day.push(tid);
        let out = at_ok(
            JAN1 + day * DAY + 10_800,
            &["-q", "cleanup", m.to_str().unwrap()],
        );
        assert_eq!(text(&out.stderr), "", "day {day}");
    }
    // Day 69 is Thursday 2027-03-11. In the retention: days 63 to 69
    // (day 62's snapshot, 02:00 on March 4, is 7 days and an hour old).
    // Weekly: the newest of the weeks of March 8 (day 69), March 1 (day
    // 65, Sunday March 7) and February 22 (day 58). Monthly: March, February
    // (day 58) and January (day 30).
    let want: Vec<usize> = [30, 58].into_iter().chain(63..70).collect();
    let left: Vec<u64> = snapshots(&m).iter().map(|s| s.0).collect();
    let days: Vec<usize> = left
        .iter()
        .map(|tid| {
            tid_of_day
                .iter()
                .rposition(|t| t <= tid)
                .expect("a snapshot before the first import")
        })
        .collect();
    assert_eq!(days, want);
    // Each kept snapshot still reads as its day; history between them
    // went.
    for (tid, day) in left.iter().zip(&days) {
        let to = dir.path().join(format!("x{day}"));
        ok(&[
            "export",
            &format!("{}@@0x{tid:016x}", m.display()),
            to.to_str().unwrap(),
        ]);
        assert_eq!(
            fs::read_to_string(to.join("f")).unwrap(),
            format!("day {day}")
        );
    }
    let space = text(&ok(&["space", m.to_str().unwrap()]).stdout);
    assert!(
        space.contains("held by no snapshot: 0 records, 0 bytes"),
        "{space}"
    );
    ok(&["verify", m.to_str().unwrap()]);
}

/// The records of the master of `root` as of `tid` but its snapshot
/// records (which the expiry deletes).
type Record = ((u32, i64, i64, u16, u64), (u64, Vec<u8>));

fn view(root: &Path, tid: u64) -> Vec<Record> {
    as_of(root, 1, tid)
        .into_iter()
        .filter(|(k, _)| k.3 != rectype::SNAPSHOT)
        .collect()
}

/// SIGKILL at 50 points of a cleanup that expires snapshots, prunes and
/// reblocks: each time the store verifies, the snapshots cleanup keeps
/// read as before, and a rerun (-F) ends as an uncut cleanup does.
#[test]
#[ignore = "needs libfaketime (apt-get install faketime): cargo test -- --include-ignored, as .ci/run does"]
fn a_cleanup_killed_anywhere_leaves_a_sound_store_and_a_rerun_converges() {
    let dir = tempfile::tempdir().unwrap();
    let base = store_with_master(dir.path(), "base");
    let m = base.join("master");
    let t = tree(
        dir.path(),
        (0..1500).map(|i| (format!("d{}/f{i}", i % 15), format!("v0 {i}"))),
    );
    // Four imports a day apart; a cleanup on the fifth day keeps the
    // last two days' snapshots (retention 2d) and prunes the rest.
    for g in 0..4i64 {
        for i in (0..1500).filter(|i| i % 3 != 0) {
            fs::write(t.join(format!("d{}/f{i}", i % 15)), format!("v{g} {i}")).unwrap();
        }
        at_ok(
            JAN1 + g * DAY,
            &["import", t.to_str().unwrap(), m.to_str().unwrap()],
        );
    }
    set_config(&m, "snapshots 0d 2d\nprune 1d 0m\nreblock 1d 0m\n");
    let now = JAN1 + 3 * DAY + 3_600;
    let snaps: Vec<u64> = snapshots(&m).iter().map(|s| s.0).collect();
    let kept = &snaps[2..];
    let views: Vec<_> = kept.iter().map(|&tid| view(&base, tid)).collect();
    let whole = copy_store(&base, &dir.path().join("whole"));
    let started = std::time::Instant::now();
    at_ok(now, &["cleanup", whole.join("master").to_str().unwrap()]);
    let took = started.elapsed().as_micros() as u64;
    let count = |root: &Path| {
        let mut n = 0;
        open(root, 1).for_each_record(|_, _| n += 1).unwrap();
        n
    };
    let end = count(&whole);
    assert!(end + 1000 < count(&base), "too little to prune");
    for i in 0..50u64 {
        let root = copy_store(&base, &dir.path().join(format!("cut{i}")));
        let m = root.join("master");
        let child = hammer_at(now)
            .args(["cleanup", m.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = std::time::Duration::from_micros(took * i / 50);
        kill_after("the killed cleanup", delay, child);
        ok(&["verify", m.to_str().unwrap()]);
        for (tid, before) in kept.iter().zip(&views) {
            assert!(
                view(&root, *tid) == *before,
                "cut {i}: a kept snapshot's view changed"
            );
        }
        at_ok(now, &["-F", "cleanup", m.to_str().unwrap()]);
        assert_eq!(count(&root), end, "cut {i}");
        let left: Vec<u64> = snapshots(&m).iter().map(|s| s.0).collect();
        assert_eq!(left, kept, "cut {i}");
        fs::remove_dir_all(&root).unwrap();
    }
}

/// A PFS destroyed and made again at its path while a cleanup of it runs
/// is not the cleanup's: its later steps refuse the new one, rather than
/// run on it the old one's configuration, here prune-everything (cli.md
/// §23). The prune's cycle file is a FIFO the test holds shut (through a
/// second name, as pfs-destroy removes the cleanup directory), so that the
/// destroy, the new PFS and its history come after the cleanup opened the
/// PFS and before its prune does.
#[test]
fn a_pfs_made_again_under_a_running_cleanup_is_not_its() {
    let dir = tempfile::tempdir().unwrap();
    let root = store_with_master(dir.path(), "st");
    let m = root.join("master");
    let ms = m.to_str().unwrap();
    set_config(&m, "snapshots 0d 0d\nprune 1d 5m\nreblock 1d 5m\n");
    let cdir = cleanup_dir(&root, 1);
    fs::create_dir_all(&cdir).unwrap();
    let fifo = cdir.join(".prune.cycle");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let held = dir.path().join("fifo");
    fs::hard_link(&fifo, &held).unwrap();
    let rundir = dir.path().join("run");
    fs::create_dir(&rundir).unwrap();
    let child = hammer()
        .env("TZ", "UTC")
        .env("HAMMER_RUNDIR", &rundir)
        .args(["cleanup", ms])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The cleanup is at its prune once it waits for the FIFO's writer
    // (Linux names that wait `wait_for_partner`).
    let wchan = format!("/proc/{}/wchan", child.id());
    let began = std::time::Instant::now();
    while fs::read_to_string(&wchan).unwrap_or_default() != "wait_for_partner" {
        assert!(
            began.elapsed().as_secs() < 120,
            "the cleanup never reached its prune"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    destroy(&m);
    ok(&["pfs-master", ms]);
    let t = tree(dir.path(), [("f", b"one".to_vec())]);
    import(&t, &m);
    fs::write(t.join("f"), b"two").unwrap();
    import(&t, &m);
    let history = |root: &Path| {
        let mut n = 0;
        open(root, 1)
            .for_each_record(|leaf, _| n += usize::from(leaf.base.delete_tid != 0))
            .unwrap();
        n
    };
    let before = history(&root);
    assert!(before > 0);
    // The prune reads its cycle file (empty) and goes on.
    drop(fs::OpenOptions::new().write(true).open(&held).unwrap());
    let out = child.wait_with_output().unwrap();
    let (said, err) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(history(&root), before, "the new PFS lost history: {err}");
    assert_eq!(out.status.code(), Some(1), "{said}{err}");
    let refused = "not the PFS this cleanup began with (destroyed and made again meanwhile)";
    for line in [
        format!("hammer cleanup {ms}: prune: {ms}/: {refused}\n"),
        format!("hammer cleanup {ms}: reblock-data: Reblock {ms} failed: {ms}: {refused}\n"),
    ] {
        assert!(err.contains(&line), "{said}{err}");
    }
}
