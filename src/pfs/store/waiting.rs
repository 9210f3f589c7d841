//! Writers waiting for the store's write lock, made visible to the jobs
//! of many short write transactions (prune, reblock's free pages:
//! store-format.md §7), so that a job lets a waiting writer in between two
//! of its transactions, and goes straight on when nobody waits.
//!
//! SQLite's lock is not fair: a writer that finds it taken polls (its busy
//! handler sleeps up to 100 ms between tries) and would miss the moment
//! between two transactions of a job that goes straight on. So a writer
//! that finds the lock taken holds a shared `flock` on
//! `.hammer-store.waiting` until it has the lock (`waiting`), and a job,
//! after each commit, asks for an exclusive lock on that file without
//! blocking (`Job::give_way`): refused means someone waits, and the job
//! then waits until every waiter is in (no shared lock left) or `MAX_TURN`
//! has passed, before it takes the lock again. A dead waiter's lock goes
//! with it. Where the file cannot be had, a job waits after each
//! transaction as long as the transaction held the lock, as if someone
//! waited: it holds the lock at most half the time.

use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

/// The file waiting writers hold a shared lock on.
const NAME: &str = ".hammer-store.waiting";
/// The longest a job waits for the writers waiting to get in: more than
/// the 100 ms a waiter may sleep between two tries.
const MAX_TURN: Duration = Duration::from_millis(250);
/// How often a job looks whether the waiters are in.
const POLL: Duration = Duration::from_millis(2);
/// Without the file: the longest a job waits after a transaction.
const MAX_GAP: Duration = Duration::from_millis(50);

/// The waiting file of the store at `root`, made (empty, with the
/// database file's mode) if missing.
fn open(root: &Path) -> io::Result<File> {
    let path = root.join(NAME);
    let made = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path);
    match made {
        Ok(f) => {
            f.set_permissions(Permissions::from_mode(super::schema::file_mode(root)))?;
            Ok(f)
        }
        // Another user's in a shared store: a lock needs no write access.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => File::open(&path),
        Err(e) => Err(e),
    }
}

/// Says that this writer waits for the store's write lock, for as long
/// as the returned lock lives; `None` when the file cannot be had (the
/// writer then waits unseen, as before jobs looked).
pub(super) fn waiting(root: &Path) -> Option<Flock<File>> {
    Flock::lock(open(root).ok()?, FlockArg::LockShared).ok()
}

/// A job's side: its descriptor of the waiting file, if it has one.
pub(super) struct Job {
    file: Option<File>,
    /// The longest it waits for the waiters: `MAX_TURN` (the tests set
    /// others, to tell "until the waiters were in" from "until the bound"
    /// by outcome rather than by how long it took).
    max_turn: Duration,
}

impl Job {
    pub(super) fn new(root: &Path) -> Job {
        Job {
            file: open(root).ok(),
            max_turn: MAX_TURN,
        }
    }

    /// Called between two transactions of the job, the last of which
    /// held the write lock for `held`: lets in the writers waiting. True
    /// when nobody waited (as far as the job can tell): it may then take
    /// a longer turn next.
    pub(super) fn give_way(&mut self, held: Duration) -> bool {
        let Some(mut file) = self.file.take() else {
            thread::sleep(held.min(MAX_GAP));
            return false;
        };
        let deadline = Instant::now() + self.max_turn;
        let mut waited = false;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => {
                    // Nobody waits (any more). An unlock that fails
                    // leaves the lock to its drop, and the job without
                    // the file.
                    self.file = lock.unlock().ok();
                    return !waited;
                }
                Err((back, _)) => file = back,
            }
            waited = true;
            if Instant::now() >= deadline {
                self.file = Some(file);
                return false;
            }
            thread::sleep(POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pfs::store::Store;

    /// Whether some writer says it waits in the store at `root`.
    fn someone_waits(root: &Path) -> bool {
        Flock::lock(open(root).unwrap(), FlockArg::LockExclusiveNonblock).is_err()
    }

    #[test]
    fn a_job_goes_straight_on_when_nobody_waits() {
        let d = tempfile::tempdir().unwrap();
        let mut job = Job::new(d.path());
        let t = Instant::now();
        for _ in 0..10 {
            assert!(job.give_way(Duration::from_secs(1)));
        }
        assert!(t.elapsed() < MAX_GAP, "{:?}", t.elapsed());
    }

    #[test]
    fn a_job_waits_for_the_waiters_to_get_in_and_no_longer_than_its_bound() {
        let d = tempfile::tempdir().unwrap();
        let mut job = Job::new(d.path());
        // A bound far beyond the waiter's 60 ms, however loaded the
        // machine: a job back before it went on because the waiter was in.
        job.max_turn = Duration::from_secs(60);
        let waiter = waiting(d.path()).unwrap();
        let gone = std::thread::spawn(move || {
            thread::sleep(Duration::from_millis(60));
            let at = Instant::now();
            drop(waiter);
            at
        });
        let t = Instant::now();
        assert!(!job.give_way(Duration::ZERO));
        let (took, back) = (t.elapsed(), Instant::now());
        assert!(
            back >= gone.join().unwrap(),
            "went on before the waiter was in"
        );
        assert!(took < job.max_turn, "{took:?}");
        // One that never gets in holds the job up for its bound, and no
        // longer (with the slack of a loaded machine).
        job.max_turn = MAX_TURN;
        let _stuck = waiting(d.path()).unwrap();
        let t = Instant::now();
        assert!(!job.give_way(Duration::ZERO));
        let took = t.elapsed();
        assert!((MAX_TURN..MAX_TURN * 40).contains(&took), "{took:?}");
    }

    #[test]
    fn a_writer_says_it_waits_only_while_it_waits() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("s");
        let mut store = Store::create(&root).unwrap();
        assert!(!someone_waits(&root));
        // Another connection holds the write lock.
        let other = rusqlite::Connection::open(root.join(super::super::DB_NAME)).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let writer = {
            let root = root.clone();
            std::thread::spawn(move || {
                let mut s = Store::open(&root).unwrap();
                s.begin().unwrap().commit().unwrap();
            })
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !someone_waits(&root) {
            assert!(Instant::now() < deadline, "the writer never said it waits");
            thread::sleep(Duration::from_millis(1));
        }
        other.execute_batch("COMMIT").unwrap();
        writer.join().unwrap();
        assert!(!someone_waits(&root));
        // A writer that finds the lock free takes it without a word.
        store.begin().unwrap().commit().unwrap();
        assert!(!someone_waits(&root));
    }
}
