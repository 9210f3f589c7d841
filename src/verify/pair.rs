//! `hammer mirror-verify <master> <slave>`: proves, without writing either
//! PFS, that a slave holds what its master holds as of the slave's sync
//! point. Each PFS's side (serve.rs: in a thread, or through ssh for a
//! remote PFS) hashes its records into a tree over the key space; this
//! compares the two trees top-down, descends only into the ranges that
//! differ, and compares the records there one by one.

use std::ffi::OsString;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};

use super::digest::{descend, Node, Payload, RecordDigest, TOP};
use super::proto::{read_msg, write_msg, Msg, ProtoError};
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
    /// Records that differ (0: identical).
    pub differences: u64,
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
    #[error("mirror-verify: {} {}: {}", .0.name(), .1, .2)]
    Channel(Role, String, ProtoError),
    #[error("mirror-verify: {} {}: unexpected answer", .0.name(), .1)]
    Unexpected(Role, String),
    #[error("mirror-verify: cannot start {what}: {}", crate::errno::strerror(.source))]
    Spawn {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("mirror-verify: output: {}", crate::errno::strerror(.0))]
    Output(#[source] io::Error),
}

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

impl Peer {
    fn start(role: Role, side: &Side, ssh: &SshOptions) -> Result<Peer, MirrorVerifyError> {
        let spawn_err = |what: &str| {
            let what = what.to_string();
            move |source| MirrorVerifyError::Spawn { what, source }
        };
        let (mine, theirs) = UnixStream::pair().map_err(spawn_err("a channel"))?;
        let (name, running) = match side {
            Side::Local(path) => {
                let name = path.to_string();
                let path = path.clone();
                let mut input = theirs.try_clone().map_err(spawn_err("a channel"))?;
                let mut output = theirs;
                let handle = thread::Builder::new()
                    .name(format!("{} side", role.name()))
                    .spawn(move || serve(path.as_path(), &mut input, &mut output))
                    .map_err(spawn_err("a thread"))?;
                (name, Running::Local(handle))
            }
            Side::Remote(spec) => {
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
                (name, Running::Remote(child))
            }
        };
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

    fn nodes(&mut self, level: u32) -> Result<Vec<Node>, MirrorVerifyError> {
        match self.recv()? {
            Msg::Nodes { level: l, nodes } if l == level => Ok(nodes),
            _ => Err(self.unexpected()),
        }
    }

    /// The next record of a `DIGESTS_OF` answer (`None` after its last).
    fn digests(&mut self) -> Result<Option<Vec<RecordDigest>>, MirrorVerifyError> {
        match self.recv()? {
            Msg::Digests(d) if d.is_empty() => Ok(None),
            Msg::Digests(d) => Ok(Some(d)),
            _ => Err(self.unexpected()),
        }
    }

    /// Closes the channel (the side's cue to end) and waits for the side;
    /// after a failed comparison (`failed`) a side may be in the middle of
    /// a scan: a local one is left to end with the process, a remote one
    /// is killed. Its own failure was told over the channel, or on its
    /// stderr.
    fn finish(self, failed: bool) -> (u64, u64) {
        let bytes = (self.input.bytes, self.output.bytes);
        drop(self.input);
        drop(self.output);
        match self.running {
            Running::Local(h) if !failed => {
                let _ = h.join();
            }
            Running::Local(_) => {}
            Running::Remote(mut c) => {
                if failed {
                    let _ = c.kill();
                }
                let _ = c.wait();
            }
        }
        bytes
    }
}

/// The records of one side's `DIGESTS_OF` answer, one at a time.
struct DigestStream<'p> {
    peer: &'p mut Peer,
    batch: std::vec::IntoIter<RecordDigest>,
    done: bool,
}

impl DigestStream<'_> {
    fn next(&mut self) -> Result<Option<RecordDigest>, MirrorVerifyError> {
        loop {
            if let Some(d) = self.batch.next() {
                return Ok(Some(d));
            }
            if self.done {
                return Ok(None);
            }
            match self.peer.digests()? {
                Some(b) => self.batch = b.into_iter(),
                None => self.done = true,
            }
        }
    }
}

/// Compares the PFS `master` with its slave `slave` as of the slave's
/// sync point: `identical as of <tid>`, or one line per differing record
/// and a summary, on `out`.
pub fn mirror_verify(
    master: &Side,
    slave: &Side,
    ssh: &SshOptions,
    out: &mut dyn Write,
) -> Result<Outcome, MirrorVerifyError> {
    let mut m = Peer::start(Role::Master, master, ssh)?;
    let mut s = match Peer::start(Role::Slave, slave, ssh) {
        Ok(s) => s,
        Err(e) => {
            m.finish(true);
            return Err(e);
        }
    };
    let result = compare(&mut m, &mut s, out);
    let failed = result.is_err();
    let bytes = [m.finish(failed), s.finish(failed)];
    result.map(|(tid, differences)| Outcome {
        tid,
        differences,
        bytes,
    })
}

/// Asks both sides the same, then reads both answers: they work at once.
fn ask_both<T>(
    m: &mut Peer,
    s: &mut Peer,
    msg: &Msg,
    answer: impl Fn(&mut Peer) -> Result<T, MirrorVerifyError>,
) -> Result<(T, T), MirrorVerifyError> {
    m.send(msg)?;
    s.send(msg)?;
    Ok((answer(m)?, answer(s)?))
}

fn compare(
    m: &mut Peer,
    s: &mut Peer,
    out: &mut dyn Write,
) -> Result<(u64, u64), MirrorVerifyError> {
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
    let top = ask_both(m, s, &Msg::Scan { tid }, |p| p.nodes(TOP))?;
    let ranges = descend(top, |level, ranges| {
        let ask = Msg::NodesOf {
            level,
            ranges: ranges.to_vec(),
        };
        ask_both(m, s, &ask, |p| p.nodes(level))
    })?;
    let mut out = BufWriter::new(out);
    let mut differences = 0;
    if !ranges.is_empty() {
        m.send(&Msg::DigestsOf(ranges.clone()))?;
        s.send(&Msg::DigestsOf(ranges.clone()))?;
        differences = report(m, s, &mut out)?;
    }
    if differences == 0 {
        writeln!(out, "identical as of 0x{tid:016x}")
    } else {
        let (records, ranges) = (
            plural(differences, "record"),
            plural(ranges.len() as u64, "key range"),
        );
        let verb = if differences == 1 {
            "differs"
        } else {
            "differ"
        };
        writeln!(out, "{records} {verb} as of 0x{tid:016x}, in {ranges}")
    }
    .and_then(|()| out.flush())
    .map_err(MirrorVerifyError::Output)?;
    Ok((tid, differences))
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
fn report(m: &mut Peer, s: &mut Peer, out: &mut dyn Write) -> Result<u64, MirrorVerifyError> {
    let mut ms = DigestStream {
        peer: m,
        batch: Vec::new().into_iter(),
        done: false,
    };
    let mut ss = DigestStream {
        peer: s,
        batch: Vec::new().into_iter(),
        done: false,
    };
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
/// one record, if anything.
fn differs(a: &RecordDigest, b: &RecordDigest) -> Option<String> {
    let mut what = Vec::new();
    if a.delete_tid != b.delete_tid {
        what.push(format!(
            "different delete_tid (master 0x{:016x}, slave 0x{:016x})",
            a.delete_tid, b.delete_tid
        ));
    }
    for (d, role) in [(a, Role::Master), (b, Role::Slave)] {
        match d.payload {
            Payload::Good => {}
            Payload::BadCrc => what.push(format!("data fails its CRC on the {}", role.name())),
            Payload::Unreadable => what.push(format!("data cannot be read on the {}", role.name())),
        }
    }
    if a.content != b.content && a.payload == b.payload {
        what.push("different data".to_string());
    }
    (!what.is_empty()).then(|| what.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

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
