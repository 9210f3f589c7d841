//! LazyFS under a directory, for the power-loss tests: a FUSE filesystem
//! (tests/lazyfs, built by `.ci/run`, named by `HAMMER_TEST_LAZYFS`) that
//! keeps every write in its own cache until an fsync passes it on, and
//! cuts the power where it is told to: at the n-th write or fsync of a
//! file it kills itself, and what no fsync had passed on is gone, as
//! after a power loss. Also the operations a mount saw, to choose those
//! points from.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::text;

/// The LazyFS binary, or a failure saying how to get one: the tests that
/// call this run under `--include-ignored` only, where a missing LazyFS
/// must not pass unseen.
fn binary() -> PathBuf {
    let path = std::env::var_os("HAMMER_TEST_LAZYFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "HAMMER_TEST_LAZYFS is not set: build LazyFS from tests/lazyfs (its README \
                 says how; .ci/run does) and export HAMMER_TEST_LAZYFS=<its lazyfs binary>"
            )
        });
    assert!(
        path.is_file(),
        "HAMMER_TEST_LAZYFS={} is no file",
        path.display()
    );
    path
}

/// A file operation LazyFS counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Write,
    Fsync,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Write => "write",
            Op::Fsync => "fsync",
        }
    }
}

/// Where the power goes: right after the `n`-th (from 1) `op` on `file`
/// (its path relative to the mounted directory) since the mount. An
/// fsync covers fdatasync too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    pub op: Op,
    pub file: PathBuf,
    pub n: u32,
}

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.file.file_name().unwrap_or_default().to_string_lossy();
        write!(f, "after {} #{} of {name}", self.op.name(), self.n)
    }
}

/// LazyFS mounted at `mnt` over `under`; unmounted when dropped.
pub struct LazyFs {
    mnt: PathBuf,
    under: PathBuf,
    child: Child,
    /// Its configuration, FIFO, log and output.
    work: PathBuf,
    mounted: bool,
}

impl LazyFs {
    /// Mounts LazyFS at `mnt` (made if missing) over the directory
    /// `under`, keeping its own files in `work` (made if missing). With a
    /// `cut` it kills itself there; without, it logs every operation, for
    /// `ops`.
    pub fn mount(work: &Path, under: &Path, mnt: &Path, cut: Option<&Cut>) -> LazyFs {
        fs::create_dir_all(work).unwrap();
        fs::create_dir_all(mnt).unwrap();
        let quoted = |p: &Path| format!("{:?}", p.to_str().unwrap());
        // The cache holds everything not yet synced; nothing is evicted,
        // so nothing reaches `under` but through an fsync.
        let mut config = format!(
            "[faults]\nfifo_path={}\n[cache]\napply_eviction=false\n\
             [cache.simple]\ncustom_size=\"96mb\"\nblocks_per_page=1\n\
             [filesystem]\nlog_all_operations={}\nlogfile={}\n",
            quoted(&work.join("faults.fifo")),
            cut.is_none(),
            quoted(&work.join("ops.log")),
        );
        if let Some(c) = cut {
            // LazyFS counts an operation before it runs: "after" the n-th
            // is `occurrence = n`. `crash` kills it there instead of only
            // clearing its cache, so that nothing the process does after
            // the cut reaches the disk.
            config += &format!(
                "[[injection]]\ntype=\"clear-cache\"\nop=\"{}\"\nfrom={}\n\
                 timing=\"after\"\noccurrence={}\ncrash=true\n",
                c.op.name(),
                quoted(&under.join(&c.file)),
                c.n
            );
        }
        let toml = work.join("lazyfs.toml");
        fs::write(&toml, config).unwrap();
        let out = fs::File::create(work.join("lazyfs.out")).unwrap();
        let child = Command::new(binary())
            .arg(mnt)
            .arg("--config-path")
            .arg(&toml)
            .args(["-o", "modules=subdir", "-o"])
            .arg(format!("subdir={}", under.to_str().unwrap()))
            .arg("-f")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("LazyFS starts");
        let mut fs_ = LazyFs {
            mnt: mnt.to_path_buf(),
            under: under.to_path_buf(),
            child,
            work: work.to_path_buf(),
            mounted: true,
        };
        let parent = fs::metadata(mnt.parent().unwrap()).unwrap().dev();
        let end = Instant::now() + Duration::from_secs(30);
        while fs::metadata(mnt).map_or(true, |m| m.dev() == parent) {
            assert!(
                fs_.child.try_wait().unwrap().is_none() && Instant::now() < end,
                "LazyFS did not mount {} (needs root and /dev/fuse): {}",
                mnt.display(),
                fs_.output()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        fs_
    }

    /// What LazyFS printed.
    pub fn output(&self) -> String {
        text(&fs::read(self.work.join("lazyfs.out")).unwrap_or_default())
    }

    /// Unmounts; returns whether LazyFS had cut the power (killed
    /// itself). A clean unmount loses what was not synced too: LazyFS
    /// writes nothing back as it stops.
    pub fn unmount(mut self) -> bool {
        self.detach()
            .is_some_and(|s| s.signal() == Some(nix::sys::signal::Signal::SIGKILL as i32))
    }

    /// Unmounts and waits for LazyFS to end: its exit status, or None if
    /// it had to be killed.
    fn detach(&mut self) -> Option<ExitStatus> {
        if !self.mounted {
            return None;
        }
        self.mounted = false;
        // Lazily: a dead LazyFS leaves a mount that answers ENOTCONN.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mnt)
            .stderr(Stdio::null())
            .status();
        // LazyFS kills itself (SIGKILL) at the cut, or exits once
        // unmounted: wait for either, as the process that saw the mount
        // fail may have run on before LazyFS was quite dead.
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The writes and fsyncs LazyFS logged (mounted without a cut) on
    /// files `keep` accepts, in order, each with its path relative to the
    /// mounted directory. Call after the operations to count are done.
    pub fn ops(&self, keep: impl Fn(&Path) -> bool) -> Vec<(Op, PathBuf)> {
        let log = text(&fs::read(self.work.join("ops.log")).unwrap());
        log.lines()
            .filter_map(|l| {
                let call = l.split("[lazyfs.ops]: ").nth(1)?;
                let (name, args) = call.split_once("(path=")?;
                let op = match name {
                    "lfs_write" => Op::Write,
                    "lfs_fsync" => Op::Fsync,
                    _ => return None,
                };
                let path = Path::new(args.split(',').next()?);
                let path = path.strip_prefix(&self.under).ok()?;
                keep(path).then(|| (op, path.to_path_buf()))
            })
            .collect()
    }
}

impl Drop for LazyFs {
    fn drop(&mut self) {
        self.detach();
    }
}

/// Where to cut a run whose operations were `ops` (as `LazyFs::ops`
/// lists them), counting only those from `from` on: right after every
/// fsync and right after the last write before each, the points where
/// what is durable changes or is about to; then writes spread evenly
/// until there are `at_least`; of more than `at_most`, as many spread
/// evenly.
pub fn cuts(ops: &[(Op, PathBuf)], from: usize, at_least: usize, at_most: usize) -> Vec<Cut> {
    // The n of each operation: its rank among those of its kind on its
    // file since the mount.
    let mut seen = std::collections::HashMap::new();
    let numbered: Vec<Cut> = ops
        .iter()
        .map(|(op, file)| {
            let n = seen.entry((*op, file.clone())).or_insert(0);
            *n += 1;
            Cut {
                op: *op,
                file: file.clone(),
                n: *n,
            }
        })
        .collect();
    let tested = &numbered[from.min(numbered.len())..];
    let mut pick = vec![false; tested.len()];
    for (i, c) in tested.iter().enumerate() {
        if c.op == Op::Fsync {
            pick[i] = true;
            if i > 0 && tested[i - 1].op == Op::Write {
                pick[i - 1] = true;
            }
        }
    }
    let writes: Vec<usize> = (0..tested.len()).filter(|&i| !pick[i]).collect();
    let missing = at_least.saturating_sub(pick.iter().filter(|&&p| p).count());
    for k in 0..missing.min(writes.len()) {
        pick[writes[k * writes.len() / missing.min(writes.len())]] = true;
    }
    let picked: Vec<Cut> = tested
        .iter()
        .zip(pick)
        .filter(|&(_, p)| p)
        .map(|(c, _)| c.clone())
        .collect();
    let keep = picked.len().min(at_most);
    (0..keep)
        .map(|k| picked[k * picked.len() / keep].clone())
        .collect()
}
