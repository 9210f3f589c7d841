//! `@@<date>` through the binary: export, verify and mount sources name a
//! point by date, which is the newest snapshot or change at or before it;
//! the TID chosen is told; a date before every point, or no date at all,
//! is refused with a line naming the problem (spec: cli.md §16).

use std::fs;
use std::path::Path;
use std::process::{Output, Stdio};

use hammer_mirror::ondisk::SnapshotData;
use hammer_mirror::pfs::{Pfs, SnapshotReq};

use crate::common::*;

/// 2020-01-01T00:00:00Z and 2021-01-01T00:00:00Z, in µs.
const F1_TS: u64 = 1_577_836_800_000_000;
const F2_TS: u64 = 1_609_459_200_000_000;

/// A master whose tree is "one" as of the first import and "two" as of
/// the second, with a snapshot dated 2020-01-01 at the first import's
/// TID and one dated 2021-01-01 at the second's (the imports' own
/// snapshots and changes are dated now). Returns the PFS and the TIDs.
fn dated_master(dir: &Path) -> (std::path::PathBuf, u64, u64) {
    let root = store_with_master(dir, "s");
    let pfs = root.join("master");
    let t = tree(dir, [("f", "one")]);
    let tid1 = import(&t, &pfs);
    fs::write(t.join("f"), "two").unwrap();
    let tid2 = import(&t, &pfs);
    let mut store = open(&root, 1);
    let mut req = SnapshotReq::of(&[
        SnapshotData::new(tid1, F1_TS, b"f1"),
        SnapshotData::new(tid2, F2_TS, b"f2"),
    ])
    .unwrap();
    store.add_snapshots(&mut req).unwrap();
    assert_eq!(req.error, None);
    (pfs, tid1, tid2)
}

fn in_zone(tz: &str, args: &[&str]) -> Output {
    hammer()
        .env("TZ", tz)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Exports `pfs@@<date>` into a new directory; the output and what `f`
/// holds there (`None`: no target was made).
fn export_at(tz: &str, pfs: &Path, date: &str, dir: &Path) -> (Output, Option<String>) {
    let target = dir.join(format!("out-{}", date.replace(':', "_")));
    let source = format!("{}@@{date}", pfs.display());
    let out = in_zone(tz, &["export", &source, target.to_str().unwrap()]);
    let f = fs::read_to_string(target.join("f")).ok();
    if !out.status.success() {
        assert!(
            !target.exists(),
            "a refused export made {}",
            target.display()
        );
    }
    (out, f)
}

#[test]
fn a_date_means_the_newest_point_at_or_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let (pfs, tid1, tid2) = dated_master(dir.path());
    let pfs_text = pfs.display().to_string();
    let (out, f) = export_at("UTC", &pfs, "2020-06-01", dir.path());
    assert_eq!(f.as_deref(), Some("one"), "{}", text(&out.stderr));
    assert_stderr_has(
        &out,
        &format!(
            "hammer: {pfs_text}@@2020-06-01 is {tid1:#018x}: the snapshot of 2020-01-01T00:00:00 \"f1\"\n"
        ),
    );
    // Exactly at the second dated snapshot.
    let (out, f) = export_at("UTC", &pfs, "2021-01-01T00:00Z", dir.path());
    assert_eq!(f.as_deref(), Some("two"), "{}", text(&out.stderr));
    assert_stderr_has(
        &out,
        &format!("is {tid2:#018x}: the snapshot of 2021-01-01T00:00:00"),
    );
    // A second before it, with an offset: the first.
    let (_, f) = export_at("UTC", &pfs, "2021-01-01T01:59:59+02:00", dir.path());
    assert_eq!(f.as_deref(), Some("one"));
    // Far in the future: the newest point (the imports' own, dated now).
    let (out, f) = export_at("UTC", &pfs, "9999-12-31", dir.path());
    assert_eq!(f.as_deref(), Some("two"), "{}", text(&out.stderr));
    // verify reads as of the TID chosen.
    let out = in_zone("UTC", &["verify", &format!("{pfs_text}@@2020-06-01")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with(&format!(
            "Verifying {pfs_text} (PFS#1) as of {tid1:#018x}\n"
        )),
        "{}",
        text(&out.stdout)
    );
}

/// Local time is the zone's: in a zone two hours east of UTC, 02:00 on
/// 2020-01-01 is the first snapshot's moment and 01:59 is before it.
#[test]
fn a_date_without_a_zone_is_local_time() {
    let dir = tempfile::tempdir().unwrap();
    let (pfs, tid1, _) = dated_master(dir.path());
    let east = "XST-2";
    let (out, f) = export_at(east, &pfs, "2020-01-01T02:00", dir.path());
    assert_eq!(f.as_deref(), Some("one"), "{}", text(&out.stderr));
    let (out, f) = export_at(east, &pfs, "2020-01-01T01:59", dir.path());
    assert_eq!(f, None);
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_has(
        &out,
        &format!(
            "@@2020-01-01T01:59 is before the first point the PFS can be read as of: \
             @@2020-01-01T02:00:00 ({tid1:#018x})\n"
        ),
    );
    // A time in a daylight-saving gap (02:30 on 2020-03-08 does not exist
    // in US Eastern time) and a leap second get a defined answer.
    let us = "EST5EDT,M3.2.0,M11.1.0";
    let (out, f) = export_at(us, &pfs, "2020-03-08T02:30", dir.path());
    assert_eq!(f.as_deref(), Some("one"), "{}", text(&out.stderr));
    let (out, f) = export_at("UTC", &pfs, "2016-12-31T23:59:60Z", dir.path());
    assert_eq!((out.status.code(), f), (Some(1), None));
    assert_stderr_has(&out, "is before the first point");
}

#[test]
fn bad_dates_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (pfs, tid1, _) = dated_master(dir.path());
    for (date, why) in [
        ("0000-01-01", "the year is not within 1970-9999"),
        ("2021-02-29", "no such day in that month"),
        ("2021-01-01T25:00", "no such time of day"),
        ("2021-01-01T10:00+5", "no two-digit offset hours"),
    ] {
        let (out, f) = export_at("UTC", &pfs, date, dir.path());
        assert_eq!((out.status.code(), f), (Some(1), None), "{date}");
        assert_stderr_has(
            &out,
            &format!("hammer: bad date '@@{date}': {why} (dates are"),
        );
    }
    // A TID keeps its form and meaning.
    let (out, f) = export_at("UTC", &pfs, &format!("{tid1:#018x}"), dir.path());
    assert_eq!(f.as_deref(), Some("one"), "{}", text(&out.stderr));
}
