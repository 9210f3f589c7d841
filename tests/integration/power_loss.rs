//! Power loss, emulated with LazyFS under the store (tests/common/lazyfs.rs):
//! import, mirror-write, prune and reblock are cut at 20 and more points
//! each, chosen among the writes and fsyncs of the store's files that an
//! uncut run makes. After each cut, whatever no fsync had passed on is
//! gone; the store must open and verify, keep every TID a command
//! reported as committed (a slave's sync point at least where a finished
//! copy left it), export every snapshot it kept as before, and end where
//! an uncut run ends when what was cut runs again (spec: store-format.md
//! §2, store-format.md §10).

// Through the kernel backend the double serves each ioctl from the store,
// which writes the same: the kernel double's run does not repeat these.
#![cfg(not(feature = "kernel-double"))]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::common::lazyfs::{cuts, Cut, LazyFs};
use crate::common::*;

/// Cuts each test must make: LazyFS kills itself at each.
const AT_LEAST: usize = 20;
/// Cuts chosen: a few more than must be made, in case an operation of a
/// cut run comes out a little different from the uncut run the cuts were
/// counted on.
const CHOSEN: (usize, usize) = (24, 30);

/// `hammer args`, ended within two minutes: a cut must not hang it.
fn hammer_run(args: &[&str]) -> Output {
    let child = hammer()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (done, wait) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let hung = wait.recv_timeout(Duration::from_secs(120)).is_err();
        if hung {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
        hung
    });
    let out = child.wait_with_output().unwrap();
    let _ = done.send(());
    assert!(!watchdog.join().unwrap(), "hammer {args:?} hung");
    out
}

/// A directory for a test's stores, copies and exports: on tmpfs where
/// there is one, as the checks create thousands of files, several times
/// faster there than on a disk (LazyFS's fsyncs to it need no disk
/// either: what they pass on is what a power loss keeps).
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Asserts a run succeeded, saying which and after which cut.
#[track_caller]
fn assert_ran(out: &Output, what: &str, args: &str) {
    assert!(
        out.status.success(),
        "{what}: hammer {args} failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `hammer verify <pfs>`, which must find nothing.
#[track_caller]
fn verify(pfs: &Path, what: &str) {
    assert_ran(
        &hammer_run(&["verify", s(pfs)]),
        what,
        &format!("verify {}", pfs.display()),
    );
}

/// `len` bytes of `seed`'s.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1).bytes(len)
}

/// The TID an import's summary line ends with; None if it failed.
fn import_to(tree: &Path, pfs: &Path) -> Option<u64> {
    let out = hammer_run(&["import", s(tree), s(pfs)]);
    if !out.status.success() {
        return None;
    }
    let line = text(&out.stdout);
    let tid = line.trim_end().rsplit("TID 0x").next()?;
    Some(u64::from_str_radix(tid, 16).expect("a TID ends the summary"))
}

/// The TIDs of the snapshots snapls lists for `pfs`.
fn snapshots(pfs: &Path) -> Vec<u64> {
    let out = hammer_run(&["snapls", s(pfs)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .skip(2)
        .map(|l| u64::from_str_radix(&l[2..18], 16).unwrap())
        .collect()
}

/// Exports `pfs` as of `tid` (its newest with None) into `to`.
#[track_caller]
fn export(pfs: &Path, tid: Option<u64>, to: &Path, what: &str) {
    let at = match tid {
        Some(t) => format!("{}@@0x{t:016x}", pfs.display()),
        None => pfs.display().to_string(),
    };
    let _ = fs::remove_dir_all(to);
    assert_ran(
        &hammer_run(&["export", &at, s(to)]),
        what,
        &format!("export {at}"),
    );
}

/// A tree's entries by path: kind, mode, mtime, and contents or a
/// symlink's target.
fn entries(root: &Path) -> BTreeMap<PathBuf, (u32, i64, i64, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, (u32, i64, i64, Vec<u8>)>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let body = if m.file_type().is_symlink() {
                fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else if m.is_file() {
                fs::read(&p).unwrap()
            } else {
                walk(root, &p, out);
                Vec::new()
            };
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            out.insert(rel, (m.mode(), m.mtime(), m.mtime_nsec(), body));
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Asserts two exports are the same tree to the byte (modes and mtimes
/// too).
#[track_caller]
fn assert_same_tree(got: &Path, want: &Path, what: &str) {
    let (g, w) = (entries(got), entries(want));
    let differ: Vec<&PathBuf> = g
        .keys()
        .chain(w.keys())
        .filter(|k| g.get(*k) != w.get(*k))
        .collect();
    assert!(
        differ.is_empty(),
        "{what}: {} differs from {} at {differ:?}",
        got.display(),
        want.display()
    );
}

/// Copies the directory `from` to `to`, files (with their modes),
/// symlinks and directories.
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir(to).unwrap();
    fs::set_permissions(to, fs::metadata(from).unwrap().permissions()).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let t = e.file_type().unwrap();
        if t.is_symlink() {
            symlink(fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if t.is_dir() {
            copy_dir(&src, &dst);
        } else {
            fs::copy(&src, &dst).unwrap();
        }
    }
}

/// Views of a PFS it must keep, each with its export made before the
/// cuts: (TID, export).
struct Views(Vec<(u64, PathBuf)>);

impl Views {
    /// Exports `pfs` as of each of `tids` into `dir/view-<tid>`.
    fn of(pfs: &Path, tids: &[u64], dir: &Path) -> Views {
        let views = tids
            .iter()
            .map(|&t| {
                let to = dir.join(format!("view-{t:016x}"));
                export(pfs, Some(t), &to, "before the cuts");
                (t, to)
            })
            .collect();
        Views(views)
    }

    /// The first `n`.
    fn first(&self, n: usize) -> Views {
        Views(self.0[..n].to_vec())
    }

    fn tids(&self) -> Vec<u64> {
        self.0.iter().map(|v| v.0).collect()
    }

    /// Asserts `pfs` exports as of each TID as before (scratch exports go
    /// to `run/check`).
    #[track_caller]
    fn assert_kept(&self, pfs: &Path, run: &Path, what: &str) {
        for (t, view) in &self.0 {
            let to = run.join("check");
            export(pfs, Some(*t), &to, what);
            assert_same_tree(&to, view, &format!("{what}: as of {t:#x}"));
        }
    }
}

/// Asserts snapls lists each of `snaps` for `pfs`.
#[track_caller]
fn assert_listed(pfs: &Path, snaps: &[u64], what: &str) {
    let listed = snapshots(pfs);
    for t in snaps {
        assert!(
            listed.contains(t),
            "{what}: snapshot {t:#x} lost: {listed:x?}"
        );
    }
}

/// One operation's steps, run on a copy of a base directory (`run`)
/// whose `disk` LazyFS mounts: the first `setup` only set up the
/// operation under test, and no cut is chosen among their writes.
trait Steps {
    fn count(&self) -> usize;
    fn setup(&self) -> usize;
    /// Step `k` in `run`, on the store as `disk` shows it (the mount, or
    /// `run/disk` itself for a rerun): what it reported committed, None
    /// when it failed.
    fn step(&self, run: &Path, disk: &Path, k: usize) -> Option<Option<u64>>;
    /// Checks `run/disk` after a cut; `reported` holds what each step
    /// that ended reported.
    fn after_cut(&self, run: &Path, reported: &[Option<u64>], what: &str);
    /// Checks `run/disk` once the steps left have run again.
    fn after_rerun(&self, run: &Path, what: &str);
}

/// The files of a store whose writes and syncs count: the database, its
/// WAL and the payload files (the WAL index, `-shm`, is rebuilt after a
/// crash).
fn store_file(p: &Path) -> bool {
    let name = p.file_name().unwrap_or_default().to_string_lossy();
    name.starts_with(".hammer-store.") && !name.ends_with("-shm")
}

/// Runs `steps` on copies of `dir/base` under LazyFS: once uncut, every
/// operation logged, and once per cut chosen among them; after each, the
/// checks, the steps that did not end run again on the plain directory,
/// and the checks of a rerun.
fn cut_everywhere(dir: &Path, steps: &dyn Steps) {
    let copy = |name: &str| {
        let run = dir.join(name);
        copy_dir(&dir.join("base"), &run);
        run
    };
    let run = copy("uncut");
    let (under, mnt) = (run.join("disk"), run.join("mnt"));
    let lazy = LazyFs::mount(&run.join("lazyfs"), &under, &mnt, None);
    let mut reported = Vec::new();
    let mut from = 0;
    for k in 0..steps.count() {
        if k == steps.setup() {
            from = lazy.ops(store_file).len();
        }
        let r = steps.step(&run, &mnt, k);
        reported.push(r.unwrap_or_else(|| panic!("uncut step {k} failed: {}", lazy.output())));
    }
    let ops = lazy.ops(store_file);
    assert!(!lazy.unmount(), "LazyFS died without a cut");
    // Unmounting loses what was not synced: a cut after the last step.
    check(steps, &run, &reported, "after the uncut run");
    fs::remove_dir_all(&run).unwrap();

    let chosen = cuts(&ops, from, CHOSEN.0, CHOSEN.1);
    let mut made = 0;
    for (i, cut) in chosen.iter().enumerate() {
        let run = copy(&format!("cut{i}"));
        let (under, mnt) = (run.join("disk"), run.join("mnt"));
        let lazy = LazyFs::mount(&run.join("lazyfs"), &under, &mnt, Some(cut));
        let mut reported = Vec::new();
        while reported.len() < steps.count() {
            match steps.step(&run, &mnt, reported.len()) {
                Some(r) => reported.push(r),
                None => break,
            }
        }
        let output = lazy.output();
        let was_cut = lazy.unmount();
        let what = format!("cut {i} ({cut})");
        assert!(
            was_cut || reported.len() == steps.count(),
            "{what}: a step failed with no cut: {output}"
        );
        made += usize::from(was_cut);
        check(steps, &run, &reported, &what);
        fs::remove_dir_all(&run).unwrap();
    }
    assert!(
        made >= AT_LEAST,
        "{made} of {} cuts chosen were made (at least {AT_LEAST} wanted)",
        chosen.len()
    );
}

/// The checks after a cut, the steps run again from the first that did
/// not end (the last one at least: a prune that ended may have been lost
/// to the cut, as nothing of it needs to be durable), and the checks
/// after that.
fn check(steps: &dyn Steps, run: &Path, reported: &[Option<u64>], what: &str) {
    steps.after_cut(run, reported, what);
    let disk = run.join("disk");
    for k in reported.len().min(steps.count() - 1)..steps.count() {
        assert!(
            steps.step(run, &disk, k).is_some(),
            "{what}: step {k} failed when run again"
        );
    }
    steps.after_rerun(run, what);
}

/// Generation `g` of a tree in `dir/trees/g<g>`: small files kept in the
/// database's rows, files of 20 and 200 KB in the payload file, a
/// symlink and a subdirectory, part of each changed at every generation.
fn generation(dir: &Path, g: u64) -> PathBuf {
    let t = dir.join(format!("trees/g{g}"));
    fs::create_dir_all(t.join("sub")).unwrap();
    for i in 0..4u64 {
        let v = if i <= g % 4 { g } else { 0 };
        fs::write(t.join(format!("small{i}")), format!("small {i} v{v}\n")).unwrap();
    }
    for i in 0..3u64 {
        let v = if (i + g).is_multiple_of(2) { g } else { 0 };
        fs::write(t.join(format!("sub/medium{i}")), noise(100 * v + i, 20_000)).unwrap();
    }
    fs::write(t.join("big"), noise(1000 + g / 2, 200_000)).unwrap();
    fs::write(t.join(format!("new{g}")), noise(2000 + g, 3_000)).unwrap();
    symlink(format!("target{g}"), t.join("link")).unwrap();
    t
}

/// Imports: generations 1 to `IMPORTS` into a master holding generation 0.
struct Imports {
    trees: Vec<PathBuf>,
    /// The TID of each import in an uncut run (generation 0's first),
    /// with its export.
    tids: Views,
    /// The snapshot each import recorded, with its export.
    snaps: Views,
}

const IMPORTS: usize = 8;

impl Steps for Imports {
    fn count(&self) -> usize {
        IMPORTS
    }
    fn setup(&self) -> usize {
        0
    }
    fn step(&self, _: &Path, disk: &Path, k: usize) -> Option<Option<u64>> {
        import_to(&self.trees[k + 1], &disk.join("st/master")).map(Some)
    }
    fn after_cut(&self, run: &Path, reported: &[Option<u64>], what: &str) {
        let m = run.join("disk/st/master");
        verify(&m, what);
        // Generation 0 and every import reported: the same TIDs as
        // uncut, the PFS as of each and their snapshots as before.
        let kept = reported.len() + 1;
        let want: Vec<Option<u64>> = self.tids.tids()[1..kept].iter().map(|&t| Some(t)).collect();
        assert_eq!(reported, want, "{what}: TIDs unlike the uncut run's");
        let newest = sync_end(&run.join("disk/st"), 1);
        if let Some(Some(last)) = reported.last() {
            assert!(
                newest > *last,
                "{what}: TID {last:#x}, reported committed, is lost: the store's newest is {newest:#x}"
            );
        }
        assert_listed(&m, &self.snaps.first(kept).tids(), what);
        self.tids.first(kept).assert_kept(&m, run, what);
        self.snaps.first(kept).assert_kept(&m, run, what);
    }
    fn after_rerun(&self, run: &Path, what: &str) {
        let m = run.join("disk/st/master");
        let what = format!("{what}, run again");
        verify(&m, &what);
        let to = run.join("check");
        export(&m, None, &to, &what);
        assert_same_tree(&to, &self.tids.0[IMPORTS].1, &what);
        assert_listed(&m, &self.snaps.tids(), &what);
    }
}

#[test]
#[ignore = "needs LazyFS (.ci/run builds it) and root for FUSE"]
fn imports_cut_anywhere_keep_every_reported_tid() {
    let dir = scratch();
    let dir = dir.path();
    let trees: Vec<PathBuf> = (0..=IMPORTS as u64).map(|g| generation(dir, g)).collect();
    let base = dir.join("base/disk");
    fs::create_dir_all(&base).unwrap();
    let m = store_with_master(&base, "st").join("master");
    let first = import_to(&trees[0], &m).unwrap();
    // An uncut run on the plain directory: the TIDs and views to keep.
    let whole = dir.join("whole");
    copy_dir(&dir.join("base"), &whole);
    let wm = whole.join("disk/st/master");
    let tids: Vec<u64> = std::iter::once(first)
        .chain(trees[1..].iter().map(|t| import_to(t, &wm).unwrap()))
        .collect();
    let snaps = snapshots(&wm);
    assert_eq!(snaps.len(), IMPORTS + 1);
    let steps = Imports {
        tids: Views::of(&wm, &tids, dir),
        snaps: Views::of(&wm, &snaps, dir),
        trees,
    };
    cut_everywhere(dir, &steps);
}

/// Mirror-write: a master outside LazyFS takes generation `k` at step
/// `k` (0 before the steps) and is copied at each step into a slave of
/// the store under LazyFS, which the first copy creates.
struct Mirror {
    trees: Vec<PathBuf>,
}

const COPIES: usize = 6;

impl Mirror {
    fn master(run: &Path) -> PathBuf {
        run.join("src/ms/master")
    }
}

/// `hammer mirror-verify`: the slave holds what the master holds as of
/// the slave's sync point. (Not record by record: MIRROR_WRITE rewrites
/// the PFS bits of the localization a directory entry names, and a slave
/// made again after a cut that lost its link is not PFS#1.)
#[track_caller]
fn mirror_verify(run: &Path, what: &str) {
    let (m, slave) = (Mirror::master(run), run.join("disk/st/slave"));
    let out = hammer_run(&["mirror-verify", s(&m), s(&slave)]);
    assert_ran(&out, what, "mirror-verify");
    assert!(
        text(&out.stdout).contains("identical as of "),
        "{what}: {}",
        text(&out.stdout)
    );
}

impl Steps for Mirror {
    fn count(&self) -> usize {
        COPIES
    }
    fn setup(&self) -> usize {
        0
    }
    fn step(&self, run: &Path, disk: &Path, k: usize) -> Option<Option<u64>> {
        let m = Mirror::master(run);
        if k > 0 {
            import_to(&self.trees[k], &m).expect("the master is not cut");
        }
        let slave = disk.join("st/slave");
        // -i 0: a copy with nothing to do ends at once.
        let out = hammer_run(&["-i", "0", "-y", "-q", "mirror-copy", s(&m), s(&slave)]);
        // A copy that ended well reports the master's sync point as the
        // slave's.
        out.status
            .success()
            .then(|| Some(sync_end(&run.join("src/ms"), 1)))
    }
    fn after_cut(&self, run: &Path, reported: &[Option<u64>], what: &str) {
        let st = run.join("disk/st");
        verify(&st, what);
        let Some(id) = link_id(&st.join("slave")) else {
            assert!(reported.is_empty(), "{what}: the slave's link is gone");
            return;
        };
        let slave = st.join("slave");
        verify(&slave, what);
        let sync = sync_end(&st, id);
        if let Some(Some(last)) = reported.last() {
            assert!(
                sync >= *last,
                "{what}: the slave's sync point {sync:#x} is below {last:#x}, where a copy left it"
            );
        }
        mirror_verify(run, what);
        for &r in reported.iter().flatten() {
            let (a, b) = (run.join("check"), run.join("check-master"));
            export(&slave, Some(r), &a, what);
            export(&Mirror::master(run), Some(r), &b, what);
            assert_same_tree(&a, &b, &format!("{what}: the slave as of {r:#x}"));
        }
    }
    fn after_rerun(&self, run: &Path, what: &str) {
        let st = run.join("disk/st");
        let id = link_id(&st.join("slave")).expect("the slave made again");
        verify(&st.join("slave"), what);
        let ms = run.join("src/ms");
        assert_eq!(sync_end(&st, id), sync_end(&ms, 1), "{what}, run again");
        mirror_verify(run, &format!("{what}, run again"));
    }
}

#[test]
#[ignore = "needs LazyFS (.ci/run builds it) and root for FUSE"]
fn mirror_writes_cut_anywhere_keep_the_sync_point_reached() {
    let dir = scratch();
    let dir = dir.path();
    let trees: Vec<PathBuf> = (0..COPIES as u64).map(|g| generation(dir, g)).collect();
    let src = dir.join("base/src");
    fs::create_dir_all(&src).unwrap();
    fs::create_dir_all(dir.join("base/disk")).unwrap();
    new_store(&dir.join("base/disk"), "st");
    let m = store_with_master(&src, "ms").join("master");
    import_to(&trees[0], &m).unwrap();
    cut_everywhere(dir, &Mirror { trees });
}

/// Files of the prune's tree.
const PRUNED_FILES: u64 = 600;
/// Generations of it imported before the prune, all but the first and
/// the last one's snapshots deleted: the history the prune removes is
/// thousands of records, removed in several transactions that commit
/// without syncing and become durable at the checkpoint that ends the
/// prune (store-format.md §7), so that cuts fall before it, inside it and
/// after it.
const PRUNED_GENERATIONS: u64 = 8;

/// The version file `i` of the prune's tree has at generation `g`: two
/// thirds of the files change at each generation before the prune; the
/// import after them, generation `PRUNED_GENERATIONS`, changes one.
fn version(g: u64, i: u64) -> u64 {
    let last = PRUNED_GENERATIONS - 1;
    match (g, i) {
        (_, 1) if g > last => g,
        _ if i.is_multiple_of(3) => 0,
        _ => g.min(last),
    }
}

/// The generations of the prune's tree in `dir/trees/p<g>`:
/// `PRUNED_FILES` small files, each a hard link to its version in
/// `dir/trees/pool`, so that a file is the same inode in every
/// generation it did not change in and an import finds it unchanged.
/// All made before the first import, so that no link count changes after
/// it.
fn many_files(dir: &Path) -> Vec<PathBuf> {
    let pool = dir.join("trees/pool");
    fs::create_dir_all(&pool).unwrap();
    (0..=PRUNED_GENERATIONS)
        .map(|g| {
            let t = dir.join(format!("trees/p{g}"));
            fs::create_dir_all(&t).unwrap();
            for i in 0..PRUNED_FILES {
                let v = version(g, i);
                let file = pool.join(format!("f{i}.v{v}"));
                if !file.exists() {
                    fs::write(&file, format!("v{v} {i}")).unwrap();
                }
                fs::hard_link(&file, t.join(format!("f{i}"))).unwrap();
            }
            t
        })
        .collect()
}

/// The records of PFS#1 of `root`, deleted ones included.
fn records(root: &Path) -> usize {
    let mut n = 0;
    open(root, 1).for_each_record(|_, _| n += 1).unwrap();
    n
}

/// The payload files of the store at `root`, with their sizes.
fn payload_files(root: &Path) -> Vec<(PathBuf, u64)> {
    let mut v: Vec<(PathBuf, u64)> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| s(p).contains(".hammer-store.pfs"))
        .map(|p| {
            let len = fs::metadata(&p).unwrap().len();
            (p, len)
        })
        .collect();
    v.sort();
    v
}

/// Checks a store (`run/disk/st`) once a command ran again.
type End = Box<dyn Fn(&Path, &str)>;

/// A maintenance command (prune, reblock) on a master with snapshots,
/// after an import whose TID it must keep: the import sets up, the
/// command is cut.
struct AfterImport {
    verb: &'static str,
    tree: PathBuf,
    /// The import's TID.
    tid: u64,
    /// The snapshot it records, with its export.
    new: Views,
    /// The snapshots there before, with their exports.
    kept: Views,
    end: End,
}

impl AfterImport {
    /// Makes `dir/base/disk/st`, its master set up by `setup`, then
    /// imports `tree` and runs `verb` on a copy, uncut: what the cuts
    /// must keep, and `end` (given the copy's store) to check a rerun.
    fn new(
        dir: &Path,
        verb: &'static str,
        tree: PathBuf,
        setup: impl FnOnce(&Path),
        end: impl FnOnce(&Path) -> End,
    ) -> AfterImport {
        let base = dir.join("base/disk");
        fs::create_dir_all(&base).unwrap();
        setup(&store_with_master(&base, "st").join("master"));
        let whole = dir.join("whole");
        copy_dir(&dir.join("base"), &whole);
        let wm = whole.join("disk/st/master");
        let kept = snapshots(&wm);
        let tid = import_to(&tree, &wm).unwrap();
        ok(&[verb, s(&wm)]);
        let snaps = snapshots(&wm);
        assert_eq!(snaps.len(), kept.len() + 1, "the import's snapshot");
        AfterImport {
            verb,
            tree,
            tid,
            new: Views::of(&wm, &snaps[kept.len()..], dir),
            kept: Views::of(&wm, &kept, dir),
            end: end(&whole.join("disk/st")),
        }
    }
}

impl Steps for AfterImport {
    fn count(&self) -> usize {
        2
    }
    fn setup(&self) -> usize {
        1
    }
    fn step(&self, _: &Path, disk: &Path, k: usize) -> Option<Option<u64>> {
        let m = disk.join("st/master");
        if k == 0 {
            return import_to(&self.tree, &m).map(Some);
        }
        hammer_run(&[self.verb, s(&m)])
            .status
            .success()
            .then_some(None)
    }
    fn after_cut(&self, run: &Path, reported: &[Option<u64>], what: &str) {
        let m = run.join("disk/st/master");
        verify(&m, what);
        self.kept.assert_kept(&m, run, what);
        assert_listed(&m, &self.kept.tids(), what);
        if let Some(r) = reported.first() {
            assert_eq!(*r, Some(self.tid), "{what}: the import's TID");
            self.new.assert_kept(&m, run, what);
            assert_listed(&m, &self.new.tids(), what);
        }
    }
    fn after_rerun(&self, run: &Path, what: &str) {
        let m = run.join("disk/st/master");
        let what = format!("{what}, run again");
        verify(&m, &what);
        (self.end)(&run.join("disk/st"), &what);
    }
}

#[test]
#[ignore = "needs LazyFS (.ci/run builds it) and root for FUSE"]
fn prunes_cut_anywhere_keep_the_snapshots_views() {
    let dir = scratch();
    let dir = dir.path();
    let trees = many_files(dir);
    let last = PRUNED_GENERATIONS as usize;
    let setup = |m: &Path| {
        for t in &trees[..last] {
            import_to(t, m).unwrap();
        }
        for t in &snapshots(m)[1..last - 1] {
            ok(&["snaprm", s(m), &format!("{t:#018x}")]);
        }
    };
    let end = |st: &Path| -> End {
        let want = records(st);
        Box::new(move |st: &Path, what: &str| {
            assert_eq!(records(st), want, "{what}: records left");
        })
    };
    let steps = AfterImport::new(dir, "prune", trees[last].clone(), setup, end);
    cut_everywhere(dir, &steps);
}

#[test]
#[ignore = "needs LazyFS (.ci/run builds it) and root for FUSE"]
fn reblocks_cut_anywhere_keep_every_payload() {
    let dir = scratch();
    let dir = dir.path();
    // Generations of six 512 KiB files; of the first three, the middle
    // one's snapshot deleted and pruned: a third of the payload file is
    // named by no record.
    let generation = |g: u64| {
        let t = dir.join(format!("trees/r{g}"));
        fs::create_dir_all(&t).unwrap();
        for i in 0..6 {
            fs::write(t.join(format!("f{i}")), noise(g * 10 + i, 512 << 10)).unwrap();
        }
        fs::write(t.join("small"), format!("generation {g}")).unwrap();
        t
    };
    let setup = |m: &Path| {
        for g in 0..3 {
            import_to(&generation(g), m).unwrap();
        }
        ok(&["snaprm", s(m), &format!("{:#018x}", snapshots(m)[1])]);
        ok(&["prune", s(m)]);
    };
    let end = |st: &Path| -> End {
        let [(_, size)] = payload_files(st).try_into().unwrap();
        Box::new(move |st: &Path, what: &str| {
            let files = payload_files(st);
            assert!(
                files.len() == 1 && files[0].1 == size,
                "{what}: payload files {files:?}, not one of {size} bytes"
            );
        })
    };
    let steps = AfterImport::new(dir, "reblock", generation(3), setup, end);
    cut_everywhere(dir, &steps);
}

#[test]
fn cuts_fall_after_every_fsync_and_spread_over_the_writes() {
    use crate::common::lazyfs::Op::{Fsync, Write};
    let (wal, db) = (PathBuf::from("st/wal"), PathBuf::from("st/db"));
    let mut ops = vec![(Write, db.clone())];
    for _ in 0..3 {
        ops.extend(std::iter::repeat_n((Write, wal.clone()), 10));
        ops.push((Fsync, wal.clone()));
    }
    // Counted from the second operation on (the db's write sets up):
    // after each fsync and the write before it, and four writes spread
    // over the 27 others to make 10.
    let shown = |c: Vec<Cut>| c.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    assert_eq!(
        shown(cuts(&ops, 1, 10, 30)),
        [
            "after write #1 of wal",
            "after write #7 of wal",
            "after write #10 of wal",
            "after fsync #1 of wal",
            "after write #15 of wal",
            "after write #20 of wal",
            "after fsync #2 of wal",
            "after write #23 of wal",
            "after write #30 of wal",
            "after fsync #3 of wal",
        ]
    );
    // At most 4 of the 6 after fsyncs: spread over them.
    assert_eq!(
        shown(cuts(&ops, 1, 4, 4)),
        [
            "after write #10 of wal",
            "after fsync #1 of wal",
            "after fsync #2 of wal",
            "after write #30 of wal",
        ]
    );
}
