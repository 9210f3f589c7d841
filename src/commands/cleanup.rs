//! `hammer cleanup [<filesystem> ...]` (cli.md §23): for each PFS, the
//! directives of its configuration record run as hammer(8)'s cleanup runs
//! them — snapshots taken and expired (with this tool's retention grid),
//! prune, reblock and recopy with their max-runtimes and cycle files,
//! each when its period has passed since its last successful run — with
//! the original's lines on stdout, `-q` for cron, `-j` events per step,
//! and the pidfile abort-cleanup stops it by. Given a store's root, every
//! PFS of the store. With `-n`, on a store, what it would do, changing
//! nothing (cli.md §23.5).

use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, DirBuilder, File};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::abort::{self, Pidfile};
use super::prune::Foreseen;
use super::{prune, reblock, snap, Context, Failure};
use crate::cli::GlobalOpts;
use crate::ctime::{now_secs, strftime_local};
use crate::errno::strerror;
use crate::events::Events;
use crate::ondisk::{rectype, ConfigData, HammerUuid, SnapshotData};
use crate::patharg::PathArg;
use crate::pfs::getpfs::{open_inside, scanpfsid, Inside};
use crate::pfs::reblock::{DO_BTREE, DO_DATA, DO_DIRS, DO_INODES};
use crate::pfs::retain::SNAPS_PER_CALL;
use crate::pfs::store::{self, Freed, Store};
use crate::pfs::{OpenError, Pfs, PfsError, ReblockReq, SnapshotReq};
use crate::retention::grid::{Grid, Unit};
use crate::retention::schedule::{self, Directive};
use crate::retention::{scan_snapshot_links, snapshot_records, DryRun, SnapTime};

/// Where the original keeps the snapshots directories of HAMMER PFSes.
const SNAPSHOTS_BASE: &str = "/var/hammer";

/// What prune -n's summary line holds (cli.md §24).
const DRY_SUMMARY: &[u8] = b": dry run: would prune ";

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
        written: HashSet::new(),
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
    /// A dry run's: the roots of the stores it foresees written to.
    written: HashSet<PathBuf>,
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
    /// Held while the directives run; none in a dry run while the
    /// snapshots directory is not there to lock.
    lock: Option<Flock<File>>,
    /// A dry run's: what the steps so far would have changed, which the
    /// prune takes into account.
    ahead: Foreseen,
    /// A dry run's: the payload file as the steps so far would leave it,
    /// once read.
    payload: Option<Payload>,
}

/// A dry run's payload file: its committed size now, and its size and the
/// bytes of it no record names as the steps so far would leave them.
#[derive(Clone, Copy, Debug)]
struct Payload {
    now: u64,
    size: u64,
    idle: u64,
}

impl From<Freed> for Payload {
    /// The payload file as it is.
    fn from(f: Freed) -> Self {
        Payload {
            now: f.file_bytes,
            size: f.file_bytes,
            idle: f.idle,
        }
    }
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

    /// `-n`: what would be done is told, nothing done.
    fn dry(&self) -> bool {
        self.cx.opts.dry_run
    }

    /// What a directive that is due does.
    fn runs(&self) -> &'static str {
        if self.dry() {
            "would run"
        } else {
            "run"
        }
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
        if self.dry() {
            if c.lock.is_none() {
                self.say(&format!("    would create {}\n", c.snapdir.display()))?;
            }
        } else if self.pidfile.is_none() {
            self.pidfile = Some(abort::hold());
        }
        let directives = match config(&mut c, self.dry()) {
            Ok((d, new)) => {
                if new && self.dry() {
                    self.say("    would write the default configuration\n")?;
                    c.ahead.written.push((rectype::CONFIG, 0));
                    self.written
                        .extend(c.pfs.store().map(|s| s.root().to_path_buf()));
                }
                d
            }
            Err(text) => {
                self.say(&format!("{:>20} - {text}\n", "config"))?;
                return self.fail_told(&shown, "config", &text);
            }
        };
        self.directives(&mut c, &directives)
    }

    /// The PFS at `path` opened, its snapshots directory made (a dry run:
    /// when there) and locked.
    fn open<'p>(&mut self, path: &'p Path, shown: &str) -> Result<Pfsc<'p>, Refused> {
        let Inside { pfs, on_store } = open_inside(path).map_err(|e| match e {
            OpenError::Io(e) => {
                Refused::failed(format!("unable to access directory: {}", strerror(&e)))
            }
            e => Refused::failed(format!("not a HAMMER filesystem: {e}")),
        })?;
        // As prune -n: the kernel has no dry-run prune (cli.md §24).
        if self.dry() && pfs.store().is_none() {
            return Err(Refused::failed(
                "-n is not available on HAMMER: the kernel has no dry-run prune",
            ));
        }
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
        let missing = self.dry() && !snapdir.is_dir();
        if !self.dry() {
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
        }
        // The original locks the PFS's directory; a store's PFS has none
        // to open, so its snapshots directory is locked. A dry run locks
        // too, to tell a PFS another cleanup works on, as the run would.
        let lock_path = if on_store { snapdir.as_path() } else { path };
        let lock = if missing {
            None
        } else {
            Some(lock(lock_path, pfs.pfs_id())?)
        };
        Ok(Pfsc {
            path,
            shown: shown.to_owned(),
            pfs,
            on_store,
            snapdir,
            lock,
            ahead: Foreseen {
                pfs: Some(pfsd.unique_uuid),
                ..Foreseen::default()
            },
            payload: None,
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
                    self.say(&format!("{}\n", self.runs()))?;
                    self.expire(c, d, now)?;
                    Some(self.snapshot(c)?)
                }
                b"prune" => {
                    let warning = if prune_warning {
                        " - WARNING snapshot softlinks present but snapshots disabled"
                    } else {
                        ""
                    };
                    self.say(&format!("{}{warning}\n", self.runs()))?;
                    Some(self.prune(c, d, snapshots_disabled)?)
                }
                word => {
                    self.say(self.runs())?;
                    if self.verbose() > 0 || self.dry() {
                        self.say("\n")?;
                    }
                    Some(self.maintain(c, word, d)?)
                }
            };
            // A step that ran and failed was told by `fail`; one that
            // succeeded is not due again until its period has passed.
            if result == Some(true) {
                self.step(c, &word, self.runs());
                if self.dry() {
                    continue;
                }
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

    /// The original's `cleanup_softlinks`, spared by the grid (`expiry`),
    /// `-v` telling each snapshot expired or kept; a dry run tells those it
    /// would expire and foresees them gone.
    fn expire(&mut self, c: &mut Pfsc<'_>, d: &Directive, now: i64) -> io::Result<()> {
        let mut links: Vec<(PathBuf, i64)> = fs::read_dir(&c.snapdir)
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
        let mut records = match snapshot_records(c.pfs.as_ref()) {
            Ok(r) => r,
            Err(e) => {
                let text = format!("cannot list the snapshot records: {e}");
                return self.fail(&c.shown, "snapshots", &text);
            }
        };
        // A dry run's second `snapshots` line: what the first expired is
        // gone.
        links.retain(|(l, _)| {
            l.file_name()
                .is_none_or(|n| !c.ahead.links_gone.iter().any(|g| g == n))
        });
        records.retain(|r| !c.ahead.records_gone.contains(&r.tid));
        let x = expiry(d, now, links, &records);
        for (what, kept) in &x.told {
            let line = match kept {
                Some(unit) => (self.verbose() > 0).then(|| format!("    keep {what} ({unit})\n")),
                None if self.dry() => Some(format!("    would expire {what}\n")),
                None => (self.verbose() > 0).then(|| format!("    expire {what}\n")),
            };
            if let Some(line) = line {
                self.say(&line)?;
            }
        }
        if self.dry() {
            let names = x.links.iter().filter_map(|l| l.file_name());
            c.ahead.links_gone.extend(names.map(OsStr::to_os_string));
            c.ahead.records_gone.extend(x.records.iter().map(|s| s.tid));
            return Ok(());
        }
        for link in &x.links {
            let _ = fs::remove_file(link);
        }
        for chunk in x.records.chunks(SNAPS_PER_CALL) {
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
        if self.dry() {
            return self.foresee_snapshot(c);
        }
        let mut said = Vec::new();
        let r = snap::cleanup_snapshot(c.path, &c.snapdir, c.on_store, c.ahead.pfs, &mut said);
        self.sub_output(&said)?;
        match r {
            Ok(()) => Ok(true),
            Err(e) => {
                self.fail(&c.shown, "snapshots", &e.to_string())?;
                Ok(false)
            }
        }
    }

    /// A dry run's snapshot: at the PFS's sync point, as the run takes it,
    /// unless a snapshot record (not expired) is there already; foreseen
    /// taken for the prune, its record written.
    fn foresee_snapshot(&mut self, c: &mut Pfsc<'_>) -> io::Result<bool> {
        let found = c.pfs.get_pseudofs().and_then(|pfsd| {
            let records = snapshot_records(c.pfs.as_ref())?;
            Ok((pfsd, records))
        });
        let (pfsd, records) = match found {
            Ok(found) => found,
            Err(e) => {
                self.fail(&c.shown, "snapshots", &e.to_string())?;
                return Ok(false);
            }
        };
        let sync = pfsd.sync_end_tid;
        let root = c.pfs.store().map(|s| s.root().to_path_buf());
        // A master's sync point is its store's newest TID: once the run has
        // written to the store (this PFS's configuration, another PFS's),
        // it lies past every record there is now, where no snapshot is
        // yet. For the prune, one TID past them keeps the same history as
        // that later one: no record lies between them but those written.
        let moves = !pfsd.is_slave() && root.as_ref().is_some_and(|r| self.written.contains(r));
        let there = !moves
            && records
                .iter()
                .any(|r| r.tid == sync && !c.ahead.records_gone.contains(&r.tid));
        let line = if there {
            format!("would take no snapshot: one is at the sync point, 0x{sync:016x}")
        } else if moves {
            format!("would take a snapshot at the sync point, past 0x{sync:016x} by then")
        } else {
            format!("would take a snapshot at the sync point, 0x{sync:016x}")
        };
        self.say(&format!("    {line}\n"))?;
        let tid = if moves { sync + 1 } else { sync };
        if !there {
            c.ahead.written.push((rectype::SNAPSHOT, tid as i64));
            self.written.extend(root);
        }
        c.ahead.taken = Some(SnapTime {
            tid,
            time: now_secs(),
        });
        Ok(true)
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
            dry_run: self.dry(),
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
        let has_links = scan_snapshot_links(&c.snapdir)
            .is_ok_and(|l| l.iter().any(|l| !c.ahead.links_gone.contains(&l.name)));
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
        let r = prune::prune_on(&cx, target, everything, &c.ahead, &mut said, &mut warned);
        self.sub_output(&said)?;
        // prune's warnings go where the original's child wrote them,
        // stderr, but not under -q ("No snapshots found" before the PFS
        // has two snapshots).
        if !self.quiet() {
            io::stderr().lock().write_all(&warned)?;
        }
        if let Ok(prune::Ended {
            freed: Some(freed), ..
        }) = &r
        {
            // A dry run's: its summary (shown whole under -vv), and the
            // bytes the prune leaves to a reblock.
            if self.verbose() < 2 {
                let summary = said
                    .split(|&b| b == b'\n')
                    .find(|l| l.windows(DRY_SUMMARY.len()).any(|w| w == DRY_SUMMARY));
                if let Some(summary) = summary {
                    self.say(&format!("    {}\n", String::from_utf8_lossy(summary)))?;
                }
            }
            c.payload.get_or_insert((*freed).into()).idle += freed.pruned;
        }
        let r = r.map(|e| e.status).map_err(|e| e.to_string());
        self.ended(c, "prune", r, &said)
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
        let dots = self.verbose() == 0 && !self.dry();
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
                if self.dry() {
                    let (name, w) = if word == b"dedup" {
                        ("Dedup", "dedup")
                    } else {
                        ("Rebalance", "rebalance")
                    };
                    let why = reblock::why_nothing(w);
                    self.say(&format!("    {name} {path}: {why}\n"))?;
                }
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
                    if self.dry() {
                        continue;
                    }
                    let opts = self.sub_opts(Some(file), d.limit);
                    let cx = Context {
                        opts: &opts,
                        events: Events::default(),
                        word: "reblock",
                    };
                    let mut said = Vec::new();
                    let r = reblock::reblock_on(&cx, c.path, what, fill, c.ahead.pfs, &mut said);
                    self.sub_output(&said)?;
                    ok &= self.ended(c, name, r.map_err(|e| e.to_string()), &said)?;
                }
                if self.dry() {
                    ok = self.foresee_reblock(c, data_fill)?;
                }
            }
        }
        if dots {
            self.say("\n")?;
        }
        Ok(ok)
    }

    /// A dry run's reblock (or recopy) of the payload file at `fill`%: the
    /// store's rule tells whether it copies the file (`store::copies`), as
    /// the steps before would leave it; the copy gives back the bytes no
    /// record names (the B-Tree passes, the database's free pages, are not
    /// counted, as for prune -n).
    fn foresee_reblock(&mut self, c: &mut Pfsc<'_>, fill: u32) -> io::Result<bool> {
        let read = match c.payload {
            Some(p) => Ok(p),
            None => payload_now(c.pfs.as_ref()).map(Payload::from),
        };
        let mut p = match read {
            Ok(p) => p,
            Err(e) => {
                self.fail(&c.shown, "reblock-data", &e.to_string())?;
                return Ok(false);
            }
        };
        let level = ReblockReq::new(DO_DATA, fill).free_level;
        let copied = p.size == 0 || store::copies(level, p.size, p.idle);
        let freed = if copied { p.idle } else { 0 };
        let mut line = format!(
            "    Reblock would free {freed} bytes of the payload file ({} bytes now)",
            p.now
        );
        if copied {
            p.size -= p.idle;
            p.idle = 0;
        } else if p.idle > 0 {
            line.push_str(&format!(
                ": the {} bytes in no record are less than {}% of it",
                p.idle,
                100 - fill
            ));
        }
        c.payload = Some(p);
        self.say(&format!("{line}\n"))?;
        Ok(true)
    }
}

/// The payload file of the store `pfs` is on, as it is.
fn payload_now(pfs: &dyn Pfs) -> Result<Freed, PfsError> {
    let store = pfs.store().ok_or(PfsError::from(Errno::EOPNOTSUPP))?;
    DryRun::of(store)?.payload()
}

/// `flock(LOCK_EX|LOCK_NB)` of `path`, for PFS#`id`'s cleanup.
fn lock(path: &Path, id: u32) -> Result<Flock<File>, Refused> {
    let file = File::open(path).map_err(|e| {
        Refused::failed(format!("can not lock {}: {}", path.display(), strerror(&e)))
    })?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| match e {
        Errno::EWOULDBLOCK => Refused {
            text: format!("PFS#{id} locked by other process"),
            failure: false,
        },
        e => Refused::failed(format!("can not lock {}: {}", path.display(), e.desc())),
    })
}

/// Whether the original knows the directive.
fn known(word: &[u8]) -> bool {
    matches!(
        word,
        b"snapshots" | b"prune" | b"rebalance" | b"reblock" | b"recopy" | b"dedup"
    )
}

/// What the expiry deletes, and what it tells of the snapshots it looks
/// at, in order: `(what, None)` of one it deletes, `(what, Some(unit))` of
/// one old enough that the grid keeps.
struct Expiry {
    links: Vec<PathBuf>,
    records: Vec<SnapshotData>,
    told: Vec<(String, Option<Unit>)>,
}

/// The original's `cleanup_softlinks`, spared by the grid: of the
/// softlinks `links` (with the time their names give) and the snapshot
/// records, those older than the retention time (and records of TID 0)
/// are deleted, unless the grid keeps them.
fn expiry(d: &Directive, now: i64, links: Vec<(PathBuf, i64)>, records: &[SnapshotData]) -> Expiry {
    let rec_time = |s: &SnapshotData| i64::try_from(s.ts / 1_000_000).unwrap_or(i64::MAX);
    // The grid counts every snapshot with a time; records by TID order so
    // that of two of one second the later TID is the newer. A record
    // without a time (`ts` 0, not 1970's) is none of them, nor one of TID
    // 0, which goes whatever the grid says: neither takes the place of a
    // snapshot the grid keeps.
    let mut sorted = records.to_vec();
    sorted.sort_by_key(|s| s.tid);
    let counted: Vec<usize> = (0..sorted.len())
        .filter(|&j| sorted[j].ts != 0 && sorted[j].tid != 0)
        .collect();
    let times: Vec<i64> = links
        .iter()
        .map(|l| l.1)
        .chain(counted.iter().map(|&j| rec_time(&sorted[j])))
        .collect();
    let kept = grid_kept(&d.grid, &times);
    let mut rec_kept = vec![None; sorted.len()];
    for (k, &j) in counted.iter().enumerate() {
        rec_kept[j] = kept[links.len() + k];
    }
    let old = |t: i64| now.saturating_sub(t) > d.limit;
    let mut x = Expiry {
        links: Vec::new(),
        records: Vec::new(),
        told: Vec::new(),
    };
    for (i, (link, t)) in links.iter().enumerate() {
        if old(*t) {
            x.told.push((link.display().to_string(), kept[i]));
            if kept[i].is_none() {
                x.links.push(link.clone());
            }
        }
    }
    for (j, s) in sorted.iter().enumerate() {
        let t = rec_time(s);
        let keep = rec_kept[j];
        if !(old(t) || s.tid == 0) {
            continue;
        }
        if old(t) {
            let when = strftime_local(EXPIRE_TIME, t, 64).unwrap_or_default();
            let what = format!(
                "0x{:016x} {} {}",
                s.tid,
                String::from_utf8_lossy(&when),
                String::from_utf8_lossy(s.label_bytes())
            );
            x.told.push((what, keep));
        }
        if keep.is_none() {
            x.records.push(*s);
        }
    }
    x
}

/// The grid's choice, or none kept when the grid is empty.
fn grid_kept(grid: &Grid, times: &[i64]) -> Vec<Option<Unit>> {
    if grid.is_empty() {
        return vec![None; times.len()];
    }
    grid.kept(times)
}

/// The PFS's configuration, the default one written first when it has
/// none (the original's `config_init`; a dry run only uses it); its
/// directives, and whether it is the default one, to be written.
fn config(c: &mut Pfsc<'_>, dry: bool) -> Result<(Vec<Directive>, bool), String> {
    let (text, new) = match c.pfs.get_config() {
        Ok(Some(config)) => (config.text_bytes().to_vec(), false),
        Ok(None) => {
            let text = schedule::default_text(c.path.as_os_str().as_bytes());
            if !dry {
                let config = ConfigData::from_text(&text).unwrap_or_default();
                c.pfs
                    .set_config(&config)
                    .map_err(|e| format!("cannot init meta-data config!: {e}"))?;
            }
            (text, true)
        }
        Err(e) => return Err(format!("cannot read the config: {e}")),
    };
    let directives = schedule::parse(&text).map_err(|e| format!("bad config: {e}"))?;
    Ok((directives, new))
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
