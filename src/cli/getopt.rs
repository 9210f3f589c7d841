//! hammer(8)'s global options, read with BSD getopt(3) semantics: options
//! stop at the first non-option word, the command (spec: cli.md §1).

use std::ffi::{OsStr, OsString};
use std::num::NonZeroU64;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use super::CliError;
use crate::cparse::{parse_cache_size, scan_number, size_suffix};
use crate::wire::zframe::zstd_level;

/// `getopt(3)` option string of hammer.c.
pub const OPTSTRING: &str = "b:c:de:hf:i:m:p:qrt:v2yABC:FR:S:T:X";
/// This tool's own options, on letters the original does not use.
pub const OWN_OPTSTRING: &str = "zj:w:an";

/// Default `-S`: 4 GiB.
const DEFAULT_SPLITUP: u64 = 4_294_967_296;
/// Default `-i`.
const DEFAULT_DELAY: Duration = Duration::from_secs(5);
/// Default `-w`: longer than any commit of a batch takes, short enough
/// that a stalled target does not hold the others for long.
pub const DEFAULT_STALL: Duration = Duration::from_secs(300);

/// The global options after parsing (hammer.c's `*Opt` globals that these
/// commands use; `-C`, `-f`, `-m`, `-r` and `-A` are accepted and unused).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalOpts {
    /// `-2`
    pub two_way: bool,
    /// `-y`
    pub yes: bool,
    /// `-b`, bytes per second; `None`: unlimited.
    pub bandwidth: Option<NonZeroU64>,
    /// `-S`, bytes per prescan chunk.
    pub splitup: u64,
    /// `-S` as typed, forwarded to a remote source.
    pub splitup_text: Option<OsString>,
    /// `-c`
    pub cycle_file: Option<PathBuf>,
    /// `-d` count.
    pub debug: u32,
    /// `-e`
    pub scoreboard: Option<PathBuf>,
    /// `-i`: a negative value means none (D19).
    pub delay: Duration,
    /// `-p`
    pub ssh_port: Option<OsString>,
    /// `-v` and `-q` counts, each undoing the other.
    pub verbose: u32,
    pub quiet: u32,
    /// `-t`; 0 means none.
    pub timeout: Option<Duration>,
    /// `-B`
    pub no_bulk: bool,
    /// `-X`
    pub ssh_compress: bool,
    /// `-R`, first one only.
    pub restrict_cmd: Option<OsString>,
    /// `-T`, first one only.
    pub restrict_path: Option<PathBuf>,
    /// `-F`
    pub force: bool,
    /// `-z` count: compress the stream, harder with each.
    pub compress: u32,
    /// `-j`: where the JSON-lines events go.
    pub events: Option<OsString>,
    /// `-w`: how long a target of a copy to several targets may stall
    /// before it is dropped; `None` (`-w 0`): never.
    pub stall: Option<Duration>,
    /// `-a`: mount lists `@@` in its root.
    pub show_history: bool,
    /// `-n`: prune and cleanup tell what they would do and do nothing.
    pub dry_run: bool,
}

impl GlobalOpts {
    /// `-z`: the zstd level of a compressed stream.
    pub fn zstd_level(&self) -> Option<i32> {
        zstd_level(self.compress)
    }
}

impl Default for GlobalOpts {
    fn default() -> Self {
        GlobalOpts {
            two_way: false,
            yes: false,
            bandwidth: None,
            splitup: DEFAULT_SPLITUP,
            splitup_text: None,
            cycle_file: None,
            debug: 0,
            scoreboard: None,
            delay: DEFAULT_DELAY,
            ssh_port: None,
            verbose: 0,
            quiet: 0,
            timeout: None,
            no_bulk: false,
            ssh_compress: false,
            restrict_cmd: None,
            restrict_path: None,
            force: false,
            compress: 0,
            events: None,
            stall: Some(DEFAULT_STALL),
            show_history: false,
            dry_run: false,
        }
    }
}

/// Whether option `c` takes an argument; `None` if hammer has no such option.
pub fn takes_argument(c: char) -> Option<bool> {
    [OPTSTRING, OWN_OPTSTRING].into_iter().find_map(|s| {
        let i = s.find(c).filter(|_| c != ':')?;
        Some(s[i + c.len_utf8()..].starts_with(':'))
    })
}

/// Reads the options at the head of `words` (argv without the program
/// name); returns them and the words from the command on. Option letters
/// are bytes, as for getopt(3); a value is the rest of its word or the
/// next word, bytes and all. `-h` and `--help` stop it: whatever came
/// before or follows, the command is `help`; `--version` likewise stands
/// for `version` (words of their own: the original has no long options).
pub fn getopt(mut words: Vec<OsString>) -> Result<(GlobalOpts, Vec<OsString>), CliError> {
    let only = |command: &str| Ok((GlobalOpts::default(), vec![command.into()]));
    let mut opts = GlobalOpts::default();
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_bytes();
        match w {
            b"--" => {
                i += 1;
                break;
            }
            b"--help" => return only("help"),
            b"--version" => return only("version"),
            _ => {}
        }
        if !w.starts_with(b"-") || w == b"-" {
            break;
        }
        let mut j = 1;
        while j < w.len() {
            // A byte that is no ASCII letter is shown as Path::display shows it.
            let c = if w[j].is_ascii() {
                char::from(w[j])
            } else {
                char::REPLACEMENT_CHARACTER
            };
            j += 1;
            match takes_argument(c) {
                None => return Err(CliError::IllegalOption(c)),
                Some(false) if c == 'h' => return only("help"),
                Some(false) => apply_flag(&mut opts, c)?,
                Some(true) => {
                    let value = if j < w.len() {
                        OsStr::from_bytes(&w[j..]).to_os_string()
                    } else {
                        i += 1;
                        match words.get(i) {
                            Some(v) => v.clone(),
                            None => return Err(CliError::MissingArgument(c)),
                        }
                    };
                    apply_value(&mut opts, c, value)?;
                    break;
                }
            }
        }
        i += 1;
    }
    let rest = words.split_off(i.min(words.len()));
    Ok((opts, rest))
}

fn apply_flag(o: &mut GlobalOpts, c: char) -> Result<(), CliError> {
    match c {
        '2' => o.two_way = true,
        'y' => o.yes = true,
        'd' => o.debug += 1,
        'q' => {
            if o.verbose > 0 {
                o.verbose -= 1;
            } else {
                o.quiet += 1;
            }
        }
        'v' => {
            if o.quiet > 0 {
                o.quiet -= 1;
            } else {
                o.verbose += 1;
            }
        }
        'B' => o.no_bulk = true,
        'F' => o.force = true,
        'X' => o.ssh_compress = true,
        'z' => o.compress += 1,
        'a' => o.show_history = true,
        'n' => o.dry_run = true,
        'r' | 'A' => {}
        _ => return Err(CliError::IllegalOption(c)),
    }
    Ok(())
}

fn apply_value(o: &mut GlobalOpts, c: char, v: OsString) -> Result<(), CliError> {
    let bytes = v.as_bytes();
    let bad = |expected| CliError::BadValue {
        option: c,
        value: String::from_utf8_lossy(bytes).into_owned(),
        expected,
    };
    match c {
        'b' => o.bandwidth = NonZeroU64::new(size(bytes).ok_or_else(|| bad(BANDWIDTH))?),
        'S' => {
            o.splitup = size(bytes).ok_or_else(|| bad(SPLITSIZE))?;
            o.splitup_text = Some(v);
        }
        'c' => o.cycle_file = Some(v.into()),
        'e' => o.scoreboard = Some(v.into()),
        'i' => {
            let secs = seconds(bytes).ok_or_else(|| bad(DELAY))?;
            // D19: a negative delay is none.
            o.delay = Duration::from_secs(u64::try_from(secs).unwrap_or(0));
        }
        'p' => o.ssh_port = Some(v),
        'j' => o.events = Some(v),
        'w' => {
            let secs = seconds(bytes)
                .and_then(|s| u64::try_from(s).ok())
                .ok_or_else(|| bad(TIMEOUT))?;
            o.stall = (secs > 0).then(|| Duration::from_secs(secs));
        }
        't' => {
            let secs = seconds(bytes)
                .and_then(|s| u64::try_from(s).ok())
                .ok_or_else(|| bad(TIMEOUT))?;
            o.timeout = (secs > 0).then(|| Duration::from_secs(secs));
        }
        'C' => {
            parse_cache_size(bytes).ok_or_else(|| bad(CACHESIZE))?;
        }
        'R' => {
            o.restrict_cmd.get_or_insert(v);
        }
        'T' => {
            o.restrict_path.get_or_insert(v.into());
        }

        'f' | 'm' => {}
        _ => return Err(CliError::IllegalOption(c)),
    }
    Ok(())
}

/// What a bad value of each checked option should have been.
const BANDWIDTH: &str = "expected bytes per second, a number with an optional k, m or g";
const SPLITSIZE: &str = "expected bytes, a number with an optional k, m or g";
const DELAY: &str = "expected whole seconds";
const TIMEOUT: &str = "expected whole seconds, 0 for no limit";
const CACHESIZE: &str = "expected cachesize[:readahead], a number with an optional k or m";

/// `-b` / `-S`: the original's syntax (cli.md §1), refusing what it would
/// silently misread: no digit, a sign, a value beyond 64 bits.
fn size(s: &[u8]) -> Option<u64> {
    let n = scan_number(s, 0).filter(|n| !n.negative)?;
    n.magnitude?.checked_mul(size_suffix(n.rest)?)
}

/// `-i` / `-t`: one whole C number that fits the original's int.
fn seconds(s: &[u8]) -> Option<i32> {
    let n = scan_number(s, 0).filter(|n| n.rest.is_empty())?;
    let m = i64::try_from(n.magnitude?).ok()?;
    i32::try_from(if n.negative { -m } else { m }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// cli.md §1's syntax, without what the original silently misread.
    #[test]
    fn size_suffix_rule() {
        assert_eq!(size(b"10kb"), Some(10240));
        assert_eq!(size(b"0x10"), Some(16));
        assert_eq!(size(b"010"), Some(8));
        assert_eq!(size(b"2G"), Some(2 << 30));
        assert_eq!(size(b"0"), Some(0));
        assert_eq!(size(b"10 "), None);
        assert_eq!(size(b"abc"), None);
        assert_eq!(size(b"0x"), None);
        // The original read these as 0 or as a wrapped number.
        assert_eq!(size(b""), None);
        assert_eq!(size(b"k"), None);
        assert_eq!(size(b"-1"), None);
        assert_eq!(size(b"99999999999999999999"), None);
        assert_eq!(size(b"17179869184g"), None);
    }

    #[test]
    fn seconds_fit_the_originals_int() {
        assert_eq!(seconds(b"30"), Some(30));
        assert_eq!(seconds(b"0x10"), Some(16));
        assert_eq!(seconds(b"-1"), Some(-1));
        assert_eq!(seconds(b"2147483647"), Some(i32::MAX));
        assert_eq!(seconds(b"2147483648"), None);
        assert_eq!(seconds(b"0x100000001"), None);
        assert_eq!(seconds(b"abc"), None);
        assert_eq!(seconds(b"5s"), None);
        assert_eq!(seconds(b""), None);
    }
}
