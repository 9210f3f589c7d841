//! `hammer cleanup [<filesystem> ...]` (cli.md §23): for each PFS, the
//! directives of its configuration record run as hammer(8)'s cleanup runs
//! them — snapshots taken and expired (with this tool's retention grid),
//! prune, reblock and recopy with their max-runtimes and cycle files,
//! each when its period has passed since its last successful run — with
//! the original's lines on stdout, `-q` for cron, `-j` events per step,
//! and the pidfile abort-cleanup stops it by. Given a store's root, every
//! PFS of the store.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, DirBuilder, File};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::abort::{self, Pidfile};
use super::{prune, reblock, snap, Context, Failure};
use crate::cli::GlobalOpts;
use crate::ctime::{now_secs, strftime_local};
use crate::errno::strerror;
use crate::events::Events;
use crate::ondisk::{ConfigData, HammerUuid, SnapshotData};
use crate::patharg::PathArg;
use crate::pfs::getpfs::{open_inside, scanpfsid, Inside};
use crate::pfs::reblock::{DO_BTREE, DO_DATA, DO_DIRS, DO_INODES};
use crate::pfs::retain::SNAPS_PER_CALL;
use crate::pfs::store::{self, Store};
use crate::pfs::{OpenError, Pfs, SnapshotReq};
use crate::retention::grid::{Grid, Unit};
use crate::retention::schedule::{self, Directive};
use crate::retention::{scan_snapshot_links, snapshot_records};

/// Where the original keeps the snapshots directories of HAMMER PFSes.
const SNAPSHOTS_BASE: &str = "/var/hammer";

/// The time format of `-v`'s expiry lines.
const EXPIRE_TIME: &[u8] = b"%Y-%m-%d %H:%M:%S %Z";

/// `hammer cleanup [<filesystem> ...]`: exit 0 when every PFS was handled
/// and every step that ran succeeded, else 1 (each failure told).
pub(crate) fn cleanup(cx: &Context<'_>, paths: &[PathArg]) -> Result<(), Failure> {
    let targets = match paths {
        [] => mounted()?,
        paths => paths.iter().flat_map(|p| expand(p)).collect(),
    };
    // Where the original would quietly find nothing (no HAMMER mounted:
    // on Linux, always), a nightly job must not pass for done.
    if targets.is_empty() {
        return Err(Failure::errx(
            "cleanup: no HAMMER filesystem is mounted; name a store or a PFS: \
             hammer cleanup <path> ...",
        )
        .class("cleanup", None));
    }
    let mut run = Run {
        cx,
        done: HashSet::new(),
        failed: false,
        pidfile: None,
    };
    for path in targets {
        run.pfs(&path)
            .map_err(|e| Failure::errx(format_args!("{}", strerror(&e))).class("cleanup", None))?;
    }
    if run.failed {
        return Err(Failure::status(1).class("cleanup", None));
    }
    Ok(())
}

/// With no argument, what the original cleans: the `hammer` mounts and the
/// null mounts of a PFS (`/@@0x...`, `/@@-1...`) in /proc/mounts.
fn mounted() -> Result<Vec<PathBuf>, Failure> {
    let text = fs::read("/proc/mounts").map_err(|e| {
        Failure::errx(format_args!(
            "hammer cleanup: setmntent failed: {}",
            strerror(&e)
        ))
        .exit(2)
    })?;
    let mut out = Vec::new();
    for line in text.split(|&c| c == b'\n') {
        let f: Vec<&[u8]> = line.split(|&c| c == b' ').collect();
        let [fsname, dir, fstype, ..] = f[..] else {
            continue;
        };
        let pfs_ref = |s: &[u8]| s.windows(5).any(|w| w == b"/@@0x" || w == b"/@@-1");
        if fstype == b"hammer" || (fstype == b"null" && pfs_ref(fsname)) {
            out.push(PathBuf::from(OsString::from_vec(unescape_mount(dir))));
        }
    }
    Ok(out)
}

/// A mount point as /proc/mounts writes it: blanks, tabs, newlines and
/// backslashes as `\ooo`.
fn unescape_mount(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let oct = s
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (s[i], oct) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') << 6 | (d[1] - b'0') << 3 | (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// A store's root stands for every PFS of the store: PFS#0 as the root
/// itself, another by a PFS link in the root naming it (the first by name)
/// or else as `<root>/@@-1:<id>`. Any other path is itself.
fn expand(path: &Path) -> Vec<PathBuf> {
    let whole = || vec![path.to_path_buf()];
    if scanpfsid(path).pfs_id.is_some() {
        return whole();
    }
    let Ok(real) = fs::canonicalize(path) else {
        return whole();
    };
    if store::find_root(&real).as_deref() != Some(real.as_path()) {
        return whole();
    }
    let Some(ids) = Store::open(&real).ok().and_then(|s| s.pfs_ids().ok()) else {
        return whole();
    };
    let mut links: BTreeMap<u32, PathBuf> = BTreeMap::new();
    let mut names: Vec<OsString> = fs::read_dir(path)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    names.sort();
    for name in names {
        let p = path.join(&name);
        let is_link = fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink());
        if let (true, Some(id)) = (is_link, scanpfsid(&p).pfs_id) {
            links.entry(id).or_insert(p);
        }
    }
    ids.into_iter()
        .map(|id| match (id, links.remove(&id)) {
            (0, _) => path.to_path_buf(),
            (_, Some(link)) => link,
            (id, None) => path.join(format!("@@-1:{id:05}")),
        })
        .collect()
}

/// A cleanup run over its PFSes.
struct Run<'a> {
    cx: &'a Context<'a>,
    /// The PFSes handled, by unique uuid: a PFS named twice is cleaned
    /// once.
    done: HashSet<HammerUuid>,
    failed: bool,
    /// Made when the first PFS is handled (inside: `None` when it could
    /// not be), removed when the run ends; the original makes one per
    /// PFS, which left abort-cleanup nothing to find between two.
    pidfile: Option<Option<Pidfile>>,
}

/// How a PFS's cleanup stopped before its directives ran: the text the
/// original ends the `cleanup` line with.
struct Refused {
    text: String,
    /// Whether it counts as a failure (a PFS already handled, or locked by
    /// another cleanup, does not).
    failure: bool,
}

impl Refused {
    fn failed(text: impl Into<String>) -> Self {
        Refused {
            text: text.into(),
            failure: true,
        }
    }
}

/// One PFS being cleaned.
struct Pfsc<'a> {
    path: &'a Path,
    shown: String,
    pfs: Box<dyn Pfs>,
    on_store: bool,
    snapdir: PathBuf,
    /// Held while the directives run.
    _lock: Flock<File>,
}

impl Run<'_> {
    fn quiet(&self) -> bool {
        self.cx.opts.quiet > 0
    }

    fn verbose(&self) -> u32 {
        self.cx.opts.verbose
    }

    fn events(&self) -> &Events {
        &self.cx.events
    }

    /// Text on stdout, unless `-q`.
    fn say(&self, text: &str) -> io::Result<()> {
        if self.quiet() {
            return Ok(());
        }
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()
    }

    /// A failure of a step or of a PFS: an event, exit status 1 at the
    /// end, and a line on stderr (unless the line on stdout told it
    /// already).
    fn fail(&mut self, shown: &str, step: &str, message: &str) -> io::Result<()> {
        self.failed = true;
        self.events()
            .cleanup(shown, None, step, "failed", Some(message));
        writeln!(
            io::stderr().lock(),
            "hammer cleanup {shown}: {step}: {message}"
        )
    }

    /// A failure the `cleanup` line on stdout tells: on stderr only under
    /// `-q`.
    fn fail_told(&mut self, shown: &str, step: &str, message: &str) -> io::Result<()> {
        if self.quiet() {
            return self.fail(shown, step, message);
        }
        self.failed = true;
        self.events()
            .cleanup(shown, None, step, "failed", Some(message));
        Ok(())
    }

    /// The original's `do_cleanup` of one path.
    fn pfs(&mut self, path: &Path) -> io::Result<()> {
        let shown = path.as_os_str().to_string_lossy().into_owned();
        let mut head = b"cleanup ".to_vec();
        head.extend_from_slice(path.as_os_str().as_bytes());
        let pad = 20usize.saturating_sub(path.as_os_str().len());
        head.extend(std::iter::repeat_n(b' ', pad));
        head.extend_from_slice(b" -");
        self.say(&String::from_utf8_lossy(&head))?;
        let mut c = match self.open(path, &shown) {
            Ok(c) => c,
            Err(r) => {
                self.say(&format!(" {}\n", r.text))?;
                if r.failure {
                    self.fail_told(&shown, "pfs", &r.text)?;
                } else {
                    self.events()
                        .cleanup(&shown, None, "pfs", "passed over", Some(&r.text));
                }
                return Ok(());
            }
        };
        let id = c.pfs.pfs_id();
        self.say(&format!(" handle PFS#{id} using {}\n", c.snapdir.display()))?;
        self.events()
            .cleanup(&shown, Some(id), "pfs", "handle", None);
        if self.pidfile.is_none() {
            self.pidfile = Some(abort::hold());
        }
        let directives = match config(&mut c) {
            Ok(d) => d,
            Err(text) => {
                self.say(&format!("{:>20} - {text}\n", "config"))?;
                return self.fail_told(&shown, "config", &text);
            }
        };
        self.directives(&mut c, &directives)
    }

    /// The PFS at `path` opened, its snapshots directory made and locked.
    fn open<'p>(&mut self, path: &'p Path, shown: &str) -> Result<Pfsc<'p>, Refused> {
        let Inside { pfs, on_store } = open_inside(path).map_err(|e| match e {
            OpenError::Io(e) => {
                Refused::failed(format!("unable to access directory: {}", strerror(&e)))
            }
            e => Refused::failed(format!("not a HAMMER filesystem: {e}")),
        })?;
        let pfsd = pfs
            .get_pseudofs()
            .map_err(|e| Refused::failed(format!("not a HAMMER filesystem: {e}")))?;
        let version = pfs
            .version()
            .map_err(|_| Refused::failed("HAMMER filesystem but couldn't retrieve version!"))?;
        if version < 3 {
            return Err(Refused::failed(
                "HAMMER version 2 or older: this cleanup needs version 3 \
                 (hammer version-upgrade <filesystem> 3)",
            ));
        }
        if !self.done.insert(pfsd.unique_uuid) {
            return Err(Refused {
                text: format!("PFS#{} already handled", pfs.pfs_id()),
                failure: false,
            });
        }
        let snapdir = snapshots_dir(path, pfsd.snapshots_bytes(), on_store, pfs.pfs_id())?;
        let mode = if on_store { 0o700 } else { 0o755 };
        DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(&snapdir)
            .map_err(|e| {
                Refused::failed(format!(
                    "unable to create snapshot dir \"{}\": {}",
                    snapdir.display(),
                    strerror(&e)
                ))
            })?;
        // The original locks the PFS's directory; a store's PFS has none
        // to open, so its snapshots directory is locked.
        let lock_path = if on_store { snapdir.as_path() } else { path };
        let file = File::open(lock_path).map_err(|e| {
            Refused::failed(format!(
                "can not lock {}: {}",
                lock_path.display(),
                strerror(&e)
            ))
        })?;
        let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(Refused {
                    text: format!("PFS#{} locked by other process", pfs.pfs_id()),
                    failure: false,
                })
            }
            Err((_, e)) => {
                return Err(Refused::failed(format!(
                    "can not lock {}: {}",
                    lock_path.display(),
                    e.desc()
                )))
            }
        };
        Ok(Pfsc {
            path,
            shown: shown.to_owned(),
            pfs,
            on_store,
            snapdir,
            _lock: lock,
        })
    }

    /// The directives in the configuration's order, each run when due.
    fn directives(&mut self, c: &mut Pfsc<'_>, directives: &[Directive]) -> io::Result<()> {
        let mut snapshots_disabled = false;
        let mut prune_warning = false;
        for d in directives {
            let word = String::from_utf8_lossy(&d.word).into_owned();
            self.say(&format!("{word:>20} - "))?;
            let now = now_secs();
            let due = self.cx.opts.force
                || schedule::last_run(&c.snapdir, &d.word)
                    .is_none_or(|last| schedule::due(now, last, d.period));
            let result: Option<bool> = match d.word.as_slice() {
                b"snapshots" if d.period == 0 => {
                    if d.limit != 0 && self.count_snapshots(c) > 0 {
                        self.say("only removing old snapshots\n")?;
                        prune_warning = true;
                        self.expire(c, d, now)?;
                        self.step(c, &word, "only removing old snapshots");
                    } else {
                        self.say("disabled\n")?;
                        snapshots_disabled = true;
                        self.step(c, &word, "disabled");
                    }
                    None
                }
                _ if d.period == 0 => {
                    self.say("disabled\n")?;
                    self.step(c, &word, "disabled");
                    None
                }
                _ if !known(&d.word) => {
                    self.say("unknown directive\n")?;
                    self.step(c, &word, "unknown directive");
                    None
                }
                _ if !due => {
                    self.say("skip\n")?;
                    self.step(c, &word, "skip");
                    None
                }
                b"snapshots" => {
                    self.say("run\n")?;
                    self.expire(c, d, now)?;
                    Some(self.snapshot(c)?)
                }
                b"prune" => {
                    self.say(if prune_warning {
                        "run - WARNING snapshot softlinks present but snapshots disabled\n"
                    } else {
                        "run\n"
                    })?;
                    Some(self.prune(c, d, snapshots_disabled)?)
                }
                word => {
                    self.say("run")?;
                    if self.verbose() > 0 {
                        self.say("\n")?;
                    }
                    Some(self.maintain(c, word, d)?)
                }
            };
            // A step that ran and failed was told by `fail`; one that
            // succeeded is not due again until its period has passed.
            if result == Some(true) {
                self.step(c, &word, "run");
                if let Err(e) = schedule::save_run(&c.snapdir, &d.word, now) {
                    let text = format!(
                        "Unable to create period-file {}/.{word}.period: {}",
                        c.snapdir.display(),
                        strerror(&e)
                    );
                    self.fail(&c.shown, &word, &text)?;
                }
            }
        }
        Ok(())
    }

    fn step(&self, c: &Pfsc<'_>, word: &str, result: &str) {
        self.events()
            .cleanup(&c.shown, Some(c.pfs.pfs_id()), word, result, None);
    }

    /// The snapshots the expiry could take: softlinks in the snapshots
    /// directory and snapshot records (the original's `check_softlinks`).
    fn count_snapshots(&self, c: &Pfsc<'_>) -> usize {
        let links = fs::read_dir(&c.snapdir)
            .map(|d| {
                d.flatten()
                    .filter(|e| !e.file_name().as_bytes().starts_with(b"."))
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_symlink()))
                    .count()
            })
            .unwrap_or(0);
        links + snapshot_records(c.pfs.as_ref()).map_or(0, |r| r.len())
    }

    /// The original's `cleanup_softlinks`, spared by the grid: softlinks
    /// named `snap-<date>` (any `*-<date>` or `*.<date>` with `any`) and
    /// snapshot records older than the retention time (and records of TID
    /// 0) are deleted, unless the grid keeps them.
    fn expire(&mut self, c: &mut Pfsc<'_>, d: &Directive, now: i64) -> io::Result<()> {
        let links: Vec<(PathBuf, i64)> = fs::read_dir(&c.snapdir)
            .map(|dir| {
                dir.flatten()
                    .filter_map(|e| {
                        let name = e.file_name();
                        let n = name.as_bytes();
                        let wanted = !n.starts_with(b".")
                            && e.file_type().is_ok_and(|t| t.is_symlink())
                            && (d.any || n.starts_with(b"snap-"));
                        let t = schedule::name_time(n).filter(|_| wanted)?;
                        Some((e.path(), t))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let records = match snapshot_records(c.pfs.as_ref()) {
            Ok(r) => r,
            Err(e) => {
                let text = format!("cannot list the snapshot records: {e}");
                return self.fail(&c.shown, "snapshots", &text);
            }
        };
        let rec_time = |s: &SnapshotData| i64::try_from(s.ts / 1_000_000).unwrap_or(i64::MAX);
        // The grid counts every snapshot with a time; records by TID order
        // so that of two of one second the later TID is the newer.
        let mut sorted = records.clone();
        sorted.sort_by_key(|s| s.tid);
        let times: Vec<i64> = links
            .iter()
            .map(|l| l.1)
            .chain(sorted.iter().map(rec_time))
            .collect();
        let kept = grid_kept(&d.grid, &times);
        let old = |t: i64| now.saturating_sub(t) > d.limit;
        for (i, (link, t)) in links.iter().enumerate() {
            if !old(*t) {
                continue;
            }
            if let Some(unit) = kept[i] {
                if self.verbose() > 0 {
                    self.say(&format!("    keep {} ({unit})\n", link.display()))?;
                }
                continue;
            }
            if self.verbose() > 0 {
                self.say(&format!("    expire {}\n", link.display()))?;
            }
            let _ = fs::remove_file(link);
        }
        let mut doomed = Vec::new();
        for (j, s) in sorted.iter().enumerate() {
            let t = rec_time(s);
            let keep = kept[links.len() + j].filter(|_| s.tid != 0);
            if !(old(t) || s.tid == 0) {
                continue;
            }
            let when = strftime_local(EXPIRE_TIME, t, 64).unwrap_or_default();
            let line = |what: &str| {
                format!(
                    "    {what} 0x{:016x} {} {}",
                    s.tid,
                    String::from_utf8_lossy(&when),
                    String::from_utf8_lossy(s.label_bytes())
                )
            };
            if let Some(unit) = keep {
                if self.verbose() > 0 {
                    self.say(&format!("{} ({unit})\n", line("keep")))?;
                }
                continue;
            }
            if old(t) && self.verbose() > 0 {
                self.say(&format!("{}\n", line("expire")))?;
            }
            doomed.push(*s);
        }
        for chunk in doomed.chunks(SNAPS_PER_CALL) {
            self.delete(c, chunk)?;
        }
        Ok(())
    }

    /// DEL_SNAPSHOT of up to 16 snapshots (the original's
    /// `delete_snapshots`): a snapshot refused is told and stepped over.
    fn delete(&mut self, c: &mut Pfsc<'_>, chunk: &[SnapshotData]) -> io::Result<()> {
        let mut req = SnapshotReq {
            count: chunk.len() as u32,
            ..SnapshotReq::default()
        };
        req.snaps[..chunk.len()].copy_from_slice(chunk);
        while req.index < req.count {
            if let Err(e) = c.pfs.del_snapshots(&mut req) {
                let text = format!("Ioctl to delete snapshots failed: {e}");
                self.say(&format!("    {text}\n"))?;
                return self.fail(&c.shown, "snapshots", &text);
            }
            let Some(e) = req.error else { break };
            let tid = req.snaps[req.index as usize].tid;
            let text = format!(
                "Ioctl to delete snapshots failed at snap={tid:016x}: {}",
                e.desc()
            );
            self.say(&format!("    {text}\n"))?;
            self.fail(&c.shown, "snapshots", &text)?;
            req.error = None;
            req.index += 1;
        }
        Ok(())
    }

    /// A new snapshot at the PFS's sync point (`hammer snapshot <path>
    /// <snapshots-dir>` on HAMMER).
    fn snapshot(&mut self, c: &mut Pfsc<'_>) -> io::Result<bool> {
        let mut said = Vec::new();
        let r = snap::cleanup_snapshot(c.path, &c.snapdir, c.on_store, &mut said);
        self.sub_output(&said)?;
        match r {
            Ok(()) => Ok(true),
            Err(e) => {
                self.fail(&c.shown, "snapshots", &e.to_string())?;
                Ok(false)
            }
        }
    }

    /// What a sub-command printed on stdout: shown under `-vv`, as the
    /// original's `runcmd` leaves it, else dropped.
    fn sub_output(&self, said: &[u8]) -> io::Result<()> {
        if self.verbose() >= 2 && !self.quiet() {
            let mut out = io::stdout().lock();
            out.write_all(said)?;
            out.flush()?;
        }
        Ok(())
    }

    /// The options a sub-command runs with: `-c <cycle>` and `-t <limit>`.
    fn sub_opts(&self, cycle: Option<PathBuf>, limit: i64) -> GlobalOpts {
        GlobalOpts {
            cycle_file: cycle,
            timeout: u64::try_from(limit)
                .ok()
                .filter(|&s| s > 0)
                .map(Duration::from_secs),
            ..GlobalOpts::default()
        }
    }

    /// `-v`'s echo of the command the original runs.
    fn echo(&self, command: String) -> io::Result<()> {
        if self.verbose() > 0 {
            self.say(&format!("    {command}\n"))?;
        }
        Ok(())
    }

    /// The original's `cleanup_prune`: prune-everything when snapshots are
    /// disabled, else prune of the snapshots directory when it holds
    /// softlinks, of the PFS otherwise.
    fn prune(&mut self, c: &mut Pfsc<'_>, d: &Directive, everything: bool) -> io::Result<bool> {
        let has_links = scan_snapshot_links(&c.snapdir).is_ok_and(|l| !l.is_empty());
        let target: &Path = if !everything && has_links {
            &c.snapdir
        } else {
            c.path
        };
        let word = if everything {
            "prune-everything"
        } else {
            "prune"
        };
        let cycle = c.snapdir.join(".prune.cycle");
        let opts = if d.limit != 0 {
            self.echo(format!(
                "hammer -c {} -t {} {word} {}",
                cycle.display(),
                d.limit,
                target.display()
            ))?;
            self.sub_opts(Some(cycle), d.limit)
        } else {
            self.echo(format!("hammer {word} {}", target.display()))?;
            self.sub_opts(None, 0)
        };
        let cx = Context {
            opts: &opts,
            events: Events::default(),
            word: "prune",
        };
        let mut said = Vec::new();
        let mut warned = Vec::new();
        let r = prune::prune_on(&cx, target, everything, &mut said, &mut warned);
        self.sub_output(&said)?;
        // prune's warnings go where the original's child wrote them,
        // stderr, but not under -q ("No snapshots found" before the PFS
        // has two snapshots).
        if !self.quiet() {
            io::stderr().lock().write_all(&warned)?;
        }
        self.ended(c, "prune", r.map_err(|e| e.to_string()), &said)
    }

    /// How a sub-command ended: a failure is told with what it printed.
    fn ended(
        &mut self,
        c: &Pfsc<'_>,
        step: &str,
        r: Result<u8, String>,
        said: &[u8],
    ) -> io::Result<bool> {
        let text = match r {
            Ok(0) => return Ok(true),
            Ok(status) => {
                let last = said
                    .split(|&b| b == b'\n')
                    .rfind(|l| l.windows(6).any(|w| w == b"failed"))
                    .map(|l| String::from_utf8_lossy(l).into_owned());
                last.unwrap_or_else(|| format!("exit status {status}"))
            }
            Err(e) => e,
        };
        self.fail(&c.shown, step, &text)?;
        Ok(false)
    }

    /// rebalance, reblock, recopy and dedup: the original's commands with
    /// their cycle files, a dot before each and a newline at the end
    /// (without -v).
    fn maintain(&mut self, c: &mut Pfsc<'_>, word: &[u8], d: &Directive) -> io::Result<bool> {
        let dots = self.verbose() == 0;
        let dot = |run: &Self| if dots { run.say(".") } else { Ok(()) };
        let cycle = |n: &str| c.snapdir.join(n);
        let path = c.path.display().to_string();
        let mut ok = true;
        match word {
            b"rebalance" | b"dedup" => {
                dot(self)?;
                let command = if word == b"dedup" {
                    format!("hammer -t {} dedup {path}", d.limit)
                } else {
                    format!(
                        "hammer -c {} -t {} rebalance {path}",
                        cycle(".rebalance.cycle").display(),
                        d.limit
                    )
                };
                self.echo(command)?;
                dot(self)?;
            }
            _ => {
                // reblock defragments data at 95%, recopy fully; the
                // B-Tree, inodes and directories are always done whole.
                let (base, data_fill) = if word == b"recopy" {
                    (".recopy", 100)
                } else {
                    (".reblock", 95)
                };
                let passes = [
                    (1, "reblock-btree", DO_BTREE, 100),
                    (2, "reblock-inodes", DO_INODES, 100),
                    (4, "reblock-dirs", DO_DIRS, 100),
                    (3, "reblock-data", DO_DATA, data_fill),
                ];
                for (n, name, what, fill) in passes {
                    dot(self)?;
                    let file = cycle(&format!("{base}-{n}.cycle"));
                    let fill_word = if fill == 95 { " 95" } else { "" };
                    self.echo(format!(
                        "hammer -c {} -t {} {name} {path}{fill_word}",
                        file.display(),
                        d.limit
                    ))?;
                    let opts = self.sub_opts(Some(file), d.limit);
                    let cx = Context {
                        opts: &opts,
                        events: Events::default(),
                        word: "reblock",
                    };
                    let mut said = Vec::new();
                    let r = reblock::reblock_on(&cx, c.path, what, fill, &mut said);
                    self.sub_output(&said)?;
                    ok &= self.ended(c, name, r.map_err(|e| e.to_string()), &said)?;
                }
            }
        }
        if dots {
            self.say("\n")?;
        }
        Ok(ok)
    }
}

/// Whether the original knows the directive.
fn known(word: &[u8]) -> bool {
    matches!(
        word,
        b"snapshots" | b"prune" | b"rebalance" | b"reblock" | b"recopy" | b"dedup"
    )
}

/// The grid's choice, or none kept when the grid is empty.
fn grid_kept(grid: &Grid, times: &[i64]) -> Vec<Option<Unit>> {
    if grid.is_empty() {
        return vec![None; times.len()];
    }
    grid.kept(times)
}

/// The PFS's configuration, the default one written first when it has
/// none (the original's `config_init`); its directives.
fn config(c: &mut Pfsc<'_>) -> Result<Vec<Directive>, String> {
    let text = match c.pfs.get_config() {
        Ok(Some(config)) => config.text_bytes().to_vec(),
        Ok(None) => {
            let text = schedule::default_text(c.path.as_os_str().as_bytes());
            let config = ConfigData::from_text(&text).unwrap_or_default();
            c.pfs
                .set_config(&config)
                .map_err(|e| format!("cannot init meta-data config!: {e}"))?;
            text
        }
        Err(e) => return Err(format!("cannot read the config: {e}")),
    };
    schedule::parse(&text).map_err(|e| format!("bad config: {e}"))
}

/// Where the PFS's period and cycle files live (and, on HAMMER, the
/// softlinks cleanup makes): the PFS's `snapshots` directory when set
/// (it must be absolute), else on a store
/// `<store>/.hammer-store.cleanup/pfs<id>`, on HAMMER `/var/hammer/<path>`
/// (`/var/hammer/root` for `/`).
fn snapshots_dir(
    path: &Path,
    configured: &[u8],
    on_store: bool,
    id: u32,
) -> Result<PathBuf, Refused> {
    if configured.first() == Some(&b'/') {
        return Ok(PathBuf::from(OsString::from_vec(configured.to_vec())));
    }
    if !configured.is_empty() {
        return Err(Refused::failed(
            "WARNING: pfs-slave's snapshots dir is not absolute",
        ));
    }
    if on_store {
        let pp = scanpfsid(path);
        let root = fs::canonicalize(&pp.open_path)
            .ok()
            .and_then(|p| store::find_root(&p))
            .ok_or_else(|| Refused::failed("cannot find the store the PFS is in"))?;
        return Ok(store::cleanup_dir(&root, id));
    }
    let p = path.as_os_str().as_bytes();
    if p.first() != Some(&b'/') {
        return Err(Refused::failed("path must start with '/'"));
    }
    let mut dir = SNAPSHOTS_BASE.as_bytes().to_vec();
    dir.push(b'/');
    dir.extend_from_slice(if p == b"/" { b"root" } else { &p[1..] });
    Ok(PathBuf::from(OsString::from_vec(dir)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape_mount(br"/mnt/a\040b\134c"), b"/mnt/a b\\c");
        assert_eq!(unescape_mount(br"/x\04"), br"/x\04");
    }

    #[test]
    fn hammer_snapshots_directories() {
        let dir = |p: &str| snapshots_dir(Path::new(p), b"", false, 1).map_err(|r| r.text);
        assert_eq!(dir("/"), Ok(PathBuf::from("/var/hammer/root")));
        assert_eq!(dir("/home"), Ok(PathBuf::from("/var/hammer/home")));
        assert_eq!(dir("home").unwrap_err(), "path must start with '/'");
        assert_eq!(
            snapshots_dir(Path::new("/home"), b"/snaps/h", false, 1).ok(),
            Some(PathBuf::from("/snaps/h"))
        );
        assert!(snapshots_dir(Path::new("/home"), b"snaps", false, 1).is_err());
    }
}
