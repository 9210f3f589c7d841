//! `hammer mirror-verify <master> <slave>`: proves, without writing either
//! PFS, that a slave holds what its master holds as of the slave's sync
//! point, and that `hammer verify` finds nothing wrong with either. Each
//! PFS's side (serve.rs: in a thread, or through ssh for a remote PFS)
//! checks its records as verify does and hashes them into a tree over the
//! key space; this prints the problems each side tells, compares the two
//! trees top-down, descends only into the ranges that differ, and compares
//! the records there one by one.

use std::ffi::OsString;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};

use super::digest::{descend, KeyRange, Node, RecordDigest, TOP};
use super::proto::{read_msg, write_msg, Msg, ProtoError, NODES_CHUNK, RANGES_MAX};
use super::serve::{serve, ServeError};
use super::Key;
use crate::mirror::remote::{shell_word, RemoteSpec, Side, SshOptions};
use crate::ondisk::{BaseElm, HammerUuid, PseudofsData};
use crate::pfs::store::decode_key;

/// Which PFS of the pair, as messages name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Master,
    Slave,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Slave => "slave",
        }
    }
}

/// What a mirror-verify run found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The slave's sync point, which both PFSes were compared as of.
    pub tid: u64,
    /// Records that differ.
    pub differences: u64,
    /// Problems `hammer verify` finds as of the TID, on the master and on
    /// the slave (identical: no difference and no problem).
    pub problems: [u64; 2],
    /// Bytes read from and written to the master's side and the slave's.
    pub bytes: [(u64, u64); 2],
}

/// Why the pair could not be compared; `Display` is the message after
/// `hammer: `.
#[derive(Debug, thiserror::Error)]
pub enum MirrorVerifyError {
    #[error("mirror-verify: {0} is not a slave PFS: give the master first, its slave second")]
    NotSlave(String),
    #[error("mirror-verify: {0} and {1} are the same PFS")]
    SamePfs(String, String),
    #[error(
        "mirror-verify: {master} and {slave} are not a master and its slave: \
         their shared uuids {master_uuid} and {slave_uuid} differ"
    )]
    Unrelated {
        master: String,
        slave: String,
        master_uuid: HammerUuid,
        slave_uuid: HammerUuid,
    },
    /// The side of `0` said what stopped it.
    #[error("mirror-verify: {} {}: {}", .0.name(), .1, .2)]
    Told(Role, String, String),
    #[error("mirror-verify: {} {}: ended without answering", .0.name(), .1)]
    Ended(Role, String),
    /// A local side's thread panicked (a bug): what it said.
    #[error("mirror-verify: {} {}: its side panicked: {}", .0.name(), .1, .2)]
    Panicked(Role, String, String),
    #[error("mirror-verify: {} {}: {}", .0.name(), .1, .2)]
    Channel(Role, String, ProtoError),
    #[error("mirror-verify: {} {}: unexpected answer", .0.name(), .1)]
    Unexpected(Role, String),
    #[error("mirror-verify: {} {}: more than {ANSWER_NODES_MAX} nodes in an answer", .0.name(), .1)]
    TooManyNodes(Role, String),
    #[error("mirror-verify: cannot start {what}: {}", crate::errno::strerror(.source))]
    Spawn {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("mirror-verify: output: {}", crate::errno::strerror(.0))]
    Output(#[source] io::Error),
}

/// Most nodes taken in one answer, which a side of 4 G records reaches:
/// what a hostile side can make the comparing process hold.
const ANSWER_NODES_MAX: usize = 1 << 24;

/// Counts the bytes through a reader or a writer.
struct Counted<T> {
    inner: T,
    bytes: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Where a side runs.
enum Running {
    Local(JoinHandle<Result<(), ServeError>>),
    Remote(Child),
}

/// One PFS's side, as the comparing process talks to it.
struct Peer {
    role: Role,
    /// The argument as typed.
    name: String,
    input: Counted<BufReader<UnixStream>>,
    output: Counted<BufWriter<UnixStream>>,
    running: Running,
}

/// The program exec'd for a remote side: `$HAMMER_RSH` or `ssh`.
fn rsh() -> OsString {
    std::env::var_os("HAMMER_RSH").unwrap_or_else(|| "ssh".into())
}

/// ssh's argument vector for a remote side (program first): as
/// mirror-copy reaches a remote side, running mirror-verify-serve.
pub fn ssh_argv(rsh: OsString, ssh: &SshOptions, spec: &RemoteSpec) -> Vec<OsString> {
    let mut v = vec![rsh];
    if ssh.compress {
        v.push("-C".into());
    }
    if let Some(user) = &spec.user {
        v.push("-l".into());
        v.push(user.clone());
    }
    v.push(spec.host.clone());
    if let Some(port) = &ssh.port {
        v.push("-p".into());
        v.push(port.clone());
    }
    v.push("hammer".into());
    v.push("mirror-verify-serve".into());
    v.push(shell_word(&spec.path));
    v
}

/// `MirrorVerifyError::Spawn` of `what`.
fn spawn_err(what: &str) -> impl FnOnce(io::Error) -> MirrorVerifyError {
    let what = what.to_string();
    move |source| MirrorVerifyError::Spawn { what, source }
}

impl Peer {
    fn start(role: Role, side: &Side, ssh: &SshOptions) -> Result<Peer, MirrorVerifyError> {
        match side {
            Side::Local(path) => {
                let path = path.clone();
                Peer::local(role, path.to_string(), move |input, output| {
                    serve(path.as_path(), input, output)
                })
            }
            Side::Remote(spec) => Peer::remote(role, spec, ssh),
        }
    }

    /// A side run by `side` in a thread of this process.
    fn local(
        role: Role,
        name: String,
        side: impl FnOnce(&mut dyn Read, &mut dyn Write) -> Result<(), ServeError> + Send + 'static,
    ) -> Result<Peer, MirrorVerifyError> {
        let (mine, theirs) = UnixStream::pair().map_err(spawn_err("a channel"))?;
        let mut input = theirs.try_clone().map_err(spawn_err("a channel"))?;
        let mut output = theirs;
        let handle = thread::Builder::new()
            .name(format!("{} side", role.name()))
            .spawn(move || side(&mut input, &mut output))
            .map_err(spawn_err("a thread"))?;
        Peer::over(role, name, mine, Running::Local(handle))
    }

    /// A side on another host, through ssh.
    fn remote(role: Role, spec: &RemoteSpec, ssh: &SshOptions) -> Result<Peer, MirrorVerifyError> {
        let (mine, theirs) = UnixStream::pair().map_err(spawn_err("a channel"))?;
        let argv = ssh_argv(rsh(), ssh, spec);
        let what = argv[0].to_string_lossy().into_owned();
        let input: OwnedFd = theirs.try_clone().map_err(spawn_err(&what))?.into();
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::from(input))
            .stdout(Stdio::from(OwnedFd::from(theirs)))
            .spawn()
            .map_err(spawn_err(&what))?;
        let name = format!(
            "{}{}:{}",
            spec.user
                .as_ref()
                .map_or(String::new(), |u| format!("{}@", u.to_string_lossy())),
            spec.host.to_string_lossy(),
            spec.path.to_string_lossy()
        );
        Peer::over(role, name, mine, Running::Remote(child))
    }

    /// The comparing process's end `mine` of a side's channel.
    fn over(
        role: Role,
        name: String,
        mine: UnixStream,
        running: Running,
    ) -> Result<Peer, MirrorVerifyError> {
        let input = mine.try_clone().map_err(spawn_err("a channel"))?;
        Ok(Peer {
            role,
            name,
            input: Counted {
                inner: BufReader::with_capacity(1 << 16, input),
                bytes: 0,
            },
            output: Counted {
                inner: BufWriter::with_capacity(1 << 16, mine),
                bytes: 0,
            },
            running,
        })
    }

    fn send(&mut self, msg: &Msg) -> Result<(), MirrorVerifyError> {
        write_msg(&mut self.output, msg)
            .and_then(|()| self.output.flush())
            .map_err(|e| self.channel(e.into()))
    }

    fn recv(&mut self) -> Result<Msg, MirrorVerifyError> {
        match read_msg(&mut self.input) {
            Ok(Msg::Error(text)) => {
                Err(MirrorVerifyError::Told(self.role, self.name.clone(), text))
            }
            Ok(m) => Ok(m),
            Err(ProtoError::Eof) => Err(MirrorVerifyError::Ended(self.role, self.name.clone())),
            Err(e) => Err(self.channel(e)),
        }
    }

    fn channel(&self, e: ProtoError) -> MirrorVerifyError {
        MirrorVerifyError::Channel(self.role, self.name.clone(), e)
    }

    fn unexpected(&self) -> MirrorVerifyError {
        MirrorVerifyError::Unexpected(self.role, self.name.clone())
    }

    fn hello(&mut self) -> Result<PseudofsData, MirrorVerifyError> {
        match self.recv()? {
            Msg::Hello(pfsd) => Ok(*pfsd),
            _ => Err(self.unexpected()),
        }
    }

    /// The answer to `SCAN`: each problem the side's checks found, printed
    /// on `out` as it comes, then the top level's nodes. Returns the nodes
    /// and how many problems.
    fn scanned(&mut self, out: &mut dyn Write) -> Result<(Vec<Node>, u64), MirrorVerifyError> {
        let mut problems = 0;
        loop {
            match self.recv()? {
                Msg::Problem(text) => {
                    writeln!(out, "{}: {}", self.role.name(), printable(&text))
                        .map_err(MirrorVerifyError::Output)?;
                    problems += 1;
                }
                Msg::Nodes { level: TOP, nodes } => {
                    return Ok((self.more_nodes(TOP, nodes)?, problems))
                }
                _ => return Err(self.unexpected()),
            }
        }
    }

    /// An answer of nodes of `level`.
    fn nodes(&mut self, level: u32) -> Result<Vec<Node>, MirrorVerifyError> {
        match self.recv()? {
            Msg::Nodes { level: l, nodes } if l == level => self.more_nodes(level, nodes),
            _ => Err(self.unexpected()),
        }
    }

    /// The rest of an answer of nodes of `level` that began with `nodes`:
    /// messages of `NODES_CHUNK` nodes up to a shorter one.
    fn more_nodes(
        &mut self,
        level: u32,
        mut nodes: Vec<Node>,
    ) -> Result<Vec<Node>, MirrorVerifyError> {
        let mut last = nodes.len();
        while last == NODES_CHUNK {
            match self.recv()? {
                Msg::Nodes {
                    level: l,
                    nodes: more,
                } if l == level => {
                    last = more.len();
                    nodes.extend(more);
                }
                _ => return Err(self.unexpected()),
            }
            if nodes.len() > ANSWER_NODES_MAX {
                return Err(MirrorVerifyError::TooManyNodes(
                    self.role,
                    self.name.clone(),
                ));
            }
        }
        Ok(nodes)
    }

    /// The next record of a `DIGESTS_OF` answer (`None` after its last).
    fn digests(&mut self) -> Result<Option<Vec<RecordDigest>>, MirrorVerifyError> {
        match self.recv()? {
            Msg::Digests(d) if d.is_empty() => Ok(None),
            Msg::Digests(d) => Ok(Some(d)),
            _ => Err(self.unexpected()),
        }
    }

    /// Closes the channel (the side's cue to end) and, if `wait`, waits
    /// for the side. Otherwise (a failed comparison) it may be in the
    /// middle of a scan: a local one is left to end with the process, a
    /// remote one is killed. Its own failure was told over the channel, or
    /// on its stderr; a local side's panic is an error of its own.
    fn finish(self, wait: bool) -> Result<(u64, u64), MirrorVerifyError> {
        let bytes = (self.input.bytes, self.output.bytes);
        drop(self.input);
        drop(self.output);
        match self.running {
            Running::Local(h) if wait => {
                if let Err(panic) = h.join() {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "(no message)".into());
                    return Err(MirrorVerifyError::Panicked(self.role, self.name, what));
                }
            }
            Running::Local(_) => {}
            Running::Remote(mut c) => {
                if !wait {
                    let _ = c.kill();
                }
                let _ = c.wait();
            }
        }
        Ok(bytes)
    }
}

/// The records of one side in key ranges, one at a time, asked for by
/// `DIGESTS_OF` requests of at most `RANGES_MAX` ranges each.
struct DigestStream<'p> {
    peer: &'p mut Peer,
    /// The ranges not asked for yet.
    rest: &'p [KeyRange],
    batch: std::vec::IntoIter<RecordDigest>,
    /// Whether an answer is under way.
    asked: bool,
}

impl<'p> DigestStream<'p> {
    /// Asks for the first ranges at once, so that both sides work at once.
    fn start(peer: &'p mut Peer, ranges: &'p [KeyRange]) -> Result<Self, MirrorVerifyError> {
        let mut s = DigestStream {
            peer,
            rest: ranges,
            batch: Vec::new().into_iter(),
            asked: false,
        };
        s.ask()?;
        Ok(s)
    }

    /// Asks for the next ranges, if any are left.
    fn ask(&mut self) -> Result<(), MirrorVerifyError> {
        if !self.rest.is_empty() {
            let (piece, rest) = self.rest.split_at(self.rest.len().min(RANGES_MAX));
            self.peer.send(&Msg::DigestsOf(piece.to_vec()))?;
            self.rest = rest;
            self.asked = true;
        }
        Ok(())
    }

    fn next(&mut self) -> Result<Option<RecordDigest>, MirrorVerifyError> {
        loop {
            if let Some(d) = self.batch.next() {
                return Ok(Some(d));
            }
            if !self.asked {
                return Ok(None);
            }
            match self.peer.digests()? {
                Some(b) => self.batch = b.into_iter(),
                None => {
                    self.asked = false;
                    self.ask()?;
                }
            }
        }
    }
}

/// Compares the PFS `master` with its slave `slave` as of the slave's
/// sync point: on `out`, each side's problems, one line per differing
/// record, and `identical as of <tid>` when there are none, else a
/// summary.
pub fn mirror_verify(
    master: &Side,
    slave: &Side,
    ssh: &SshOptions,
    out: &mut dyn Write,
) -> Result<Outcome, MirrorVerifyError> {
    let m = Peer::start(Role::Master, master, ssh)?;
    let s = match Peer::start(Role::Slave, slave, ssh) {
        Ok(s) => s,
        Err(e) => {
            let _ = m.finish(false);
            return Err(e);
        }
    };
    run(m, s, out)
}

/// Compares the sides `m` and `s`, then ends them; the last line is
/// printed once both are known to have ended well.
fn run(mut m: Peer, mut s: Peer, out: &mut dyn Write) -> Result<Outcome, MirrorVerifyError> {
    let mut out = BufWriter::new(out);
    let result = compare(&mut m, &mut s, &mut out);
    // Waited for: a side after a comparison that went well, and one that
    // ended of itself (its thread is ending: it may have panicked).
    let wait = |role| match &result {
        Ok(_) => true,
        Err(MirrorVerifyError::Ended(r, _)) => *r == role,
        Err(_) => false,
    };
    let (mw, sw) = (wait(Role::Master), wait(Role::Slave));
    let (mb, sb) = (m.finish(mw), s.finish(sw));
    let bytes = [mb?, sb?];
    let (tid, differences, ranges, problems) = result?;
    writeln!(out, "{}", summary(tid, differences, ranges, problems))
        .and_then(|()| out.flush())
        .map_err(MirrorVerifyError::Output)?;
    Ok(Outcome {
        tid,
        differences,
        problems,
        bytes,
    })
}

/// Asks both sides the same, then reads both answers: they work at once.
fn ask_both<T>(
    m: &mut Peer,
    s: &mut Peer,
    msg: &Msg,
    mut answer: impl FnMut(&mut Peer) -> Result<T, MirrorVerifyError>,
) -> Result<(T, T), MirrorVerifyError> {
    m.send(msg)?;
    s.send(msg)?;
    Ok((answer(m)?, answer(s)?))
}

/// Compares the two sides, printing the problems each tells and the
/// records that differ: returns the slave's sync point, how many records
/// differ, in how many key ranges, and the problems of each side.
fn compare(
    m: &mut Peer,
    s: &mut Peer,
    out: &mut dyn Write,
) -> Result<(u64, u64, u64, [u64; 2]), MirrorVerifyError> {
    let (mpfsd, spfsd) = (m.hello()?, s.hello()?);
    if !spfsd.is_slave() {
        return Err(MirrorVerifyError::NotSlave(s.name.clone()));
    }
    if mpfsd.shared_uuid != spfsd.shared_uuid {
        return Err(MirrorVerifyError::Unrelated {
            master: m.name.clone(),
            slave: s.name.clone(),
            master_uuid: mpfsd.shared_uuid,
            slave_uuid: spfsd.shared_uuid,
        });
    }
    if mpfsd.unique_uuid == spfsd.unique_uuid {
        return Err(MirrorVerifyError::SamePfs(m.name.clone(), s.name.clone()));
    }
    let tid = spfsd.sync_end_tid;
    let ((mtop, mp), (stop, sp)) = ask_both(m, s, &Msg::Scan { tid }, |p| p.scanned(out))?;
    let problems = [mp, sp];
    let ranges = descend((mtop, stop), |level, ranges| {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for piece in ranges.chunks(RANGES_MAX) {
            let ask = Msg::NodesOf {
                level,
                ranges: piece.to_vec(),
            };
            let (x, y) = ask_both(m, s, &ask, |p| p.nodes(level))?;
            a.extend(x);
            b.extend(y);
        }
        Ok((a, b))
    })?;
    let mut differences = 0;
    if !ranges.is_empty() {
        let ms = DigestStream::start(m, &ranges)?;
        let ss = DigestStream::start(s, &ranges)?;
        differences = report(ms, ss, out)?;
    }
    Ok((tid, differences, ranges.len() as u64, problems))
}

/// The last line: `identical as of <tid>` only with no record differing
/// and no problem on either side.
fn summary(tid: u64, differences: u64, ranges: u64, problems: [u64; 2]) -> String {
    let found: Vec<String> = [Role::Master, Role::Slave]
        .into_iter()
        .zip(problems)
        .filter(|&(_, n)| n > 0)
        .map(|(role, n)| format!("{} on the {}", plural(n, "problem"), role.name()))
        .collect();
    let records = match differences {
        0 if found.is_empty() => return format!("identical as of 0x{tid:016x}"),
        0 => format!("no record differs as of 0x{tid:016x}"),
        1 => format!(
            "1 record differs as of 0x{tid:016x}, in {}",
            plural(ranges, "key range")
        ),
        n => format!(
            "{n} records differ as of 0x{tid:016x}, in {}",
            plural(ranges, "key range")
        ),
    };
    if found.is_empty() {
        records
    } else {
        format!("{records}; {}", found.join(", "))
    }
}

/// A side's text with its control characters escaped: a remote side
/// cannot draw on the terminal or add lines of its own.
fn printable(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}

/// `n` and the noun, in the plural unless `n` is 1.
fn plural(n: u64, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// Prints one line per record that differs between the master's digests
/// and the slave's (both in key order, read as they come); returns how
/// many.
fn report(
    mut ms: DigestStream<'_>,
    mut ss: DigestStream<'_>,
    out: &mut dyn Write,
) -> Result<u64, MirrorVerifyError> {
    let (mut a, mut b) = (ms.next()?, ss.next()?);
    let mut n = 0;
    loop {
        let (what, d) = match (&a, &b) {
            (None, None) => return Ok(n),
            (Some(x), Some(y)) if x.key == y.key => {
                let found = differs(x, y).map(|w| (w, *x));
                (a, b) = (ms.next()?, ss.next()?);
                match found {
                    Some(f) => f,
                    None => continue,
                }
            }
            (Some(x), Some(y)) if x.key < y.key => {
                let x = *x;
                a = ms.next()?;
                ("missing on the slave".to_string(), x)
            }
            (Some(x), None) => {
                let x = *x;
                a = ms.next()?;
                ("missing on the slave".to_string(), x)
            }
            (_, Some(y)) => {
                let y = *y;
                b = ss.next()?;
                ("extra on the slave".to_string(), y)
            }
        };
        let key = BaseElm {
            delete_tid: d.delete_tid,
            ..decode_key(&d.key)
        };
        writeln!(out, "{}: {what}", Key(&key)).map_err(MirrorVerifyError::Output)?;
        n += 1;
    }
}

/// What differs between the master's version `a` and the slave's `b` of
/// one record, if anything. (Which of them fails its data CRC or cannot
/// be read, the side's checks have told.)
fn differs(a: &RecordDigest, b: &RecordDigest) -> Option<String> {
    let mut what = Vec::new();
    if a.delete_tid != b.delete_tid {
        what.push(format!(
            "different delete_tid (master 0x{:016x}, slave 0x{:016x})",
            a.delete_tid, b.delete_tid
        ));
    }
    if a.content != b.content {
        what.push("different data".to_string());
    }
    (!what.is_empty()).then(|| what.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ondisk::PFSD_SLAVE;
    use crate::verify::digest::HASH_LEN;
    use crate::verify::proto::write_nodes;

    /// When a stand-in side panics.
    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Panic {
        Never,
        BeforeHello,
        AtTheEnd,
    }

    /// A stand-in side for a PFS of no records with `pfsd`, speaking as
    /// serve does, that panics `when` told.
    fn stand_in(
        pfsd: PseudofsData,
        when: Panic,
    ) -> impl FnOnce(&mut dyn Read, &mut dyn Write) -> Result<(), ServeError> + Send + 'static {
        move |input, output| {
            assert!(when != Panic::BeforeHello, "a bug before hello");
            write_msg(output, &Msg::Hello(Box::new(pfsd)))?;
            loop {
                match read_msg(input) {
                    Ok(Msg::Scan { .. }) => {
                        let empty = Node {
                            last: None,
                            hash: [0; HASH_LEN],
                        };
                        write_nodes(output, TOP, &[empty])?;
                    }
                    Err(ProtoError::Eof) => break,
                    other => panic!("not a request of this test: {other:?}"),
                }
            }
            assert!(when != Panic::AtTheEnd, "a bug at the end");
            Ok(())
        }
    }

    /// A local side's thread that panics, even after it answered all, is
    /// an error (exit 2) naming it, and nothing is called identical; the
    /// panic used to be dropped.
    #[test]
    fn a_local_side_that_panics_is_an_error() {
        let master = PseudofsData {
            unique_uuid: HammerUuid([1; 16]),
            ..Default::default()
        };
        let slave = PseudofsData {
            sync_end_tid: 5,
            mirror_flags: PFSD_SLAVE,
            ..Default::default()
        };
        for when in [Panic::Never, Panic::AtTheEnd, Panic::BeforeHello] {
            let m = Peer::local(Role::Master, "m".into(), stand_in(master, Panic::Never));
            let s = Peer::local(Role::Slave, "s".into(), stand_in(slave, when));
            let mut out = Vec::new();
            let got = run(m.unwrap(), s.unwrap(), &mut out).map_err(|e| e.to_string());
            let out = String::from_utf8(out).unwrap();
            match when {
                Panic::Never => {
                    assert_eq!(got.map(|o| o.tid), Ok(5));
                    assert_eq!(out, "identical as of 0x0000000000000005\n");
                }
                Panic::BeforeHello | Panic::AtTheEnd => {
                    let said = if when == Panic::AtTheEnd {
                        "a bug at the end"
                    } else {
                        "a bug before hello"
                    };
                    let want = format!("mirror-verify: slave s: its side panicked: {said}");
                    assert_eq!(got.map(|o| o.tid), Err(want));
                    assert_eq!(out, "");
                }
            }
        }
    }

    #[test]
    fn ssh_argv_runs_the_serving_side() {
        let spec = RemoteSpec {
            user: Some("backup".into()),
            host: "h".into(),
            path: "/pfs/a b".into(),
        };
        let ssh = SshOptions {
            compress: true,
            port: Some("2222".into()),
            splitup_text: None,
        };
        let argv: Vec<String> = ssh_argv("ssh".into(), &ssh, &spec)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            argv.join(" "),
            "ssh -C -l backup h -p 2222 hammer mirror-verify-serve '/pfs/a b'"
        );
    }
}
