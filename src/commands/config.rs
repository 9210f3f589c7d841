//! `config` and `viconfig`: a PFS's configuration text (the CONFIG
//! record, kernel-semantics.md §2.6; GET/SET_CONFIG, ioctl-abi.md §10)
//! shown, replaced from a file, or edited with `$EDITOR`, with hammer(8)'s
//! output, messages and exit statuses (cli.md §14).

use std::ffi::OsString;
use std::fs::{self, File, FileTimes};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command as Child;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Failure, Line, NO_STORE_HINT};
use crate::errno::strerror;
use crate::ondisk::ConfigData;
use crate::pfs::getpfs::open_inside;
use crate::pfs::{OpenError, Pfs, PfsError};

/// What viconfig offers to edit when the PFS has no configuration (the
/// original's text).
pub const DEFAULT_CONFIG: &str = "\
# No configuration present, here are some defaults
# you can uncomment.  Also remove these instructions
#
#snapshots 1d 60d
#prune     1d 5m
#rebalance 1d 5m
#dedup     1d 5m
#reblock   1d 5m
#recopy    30d 10m
";

/// The longest text a configuration holds: its 1024 bytes less the NUL.
const TEXT_MAX: usize = ConfigData::SIZE - 1;

/// How config or viconfig failed, with the original's texts (cli.md §14):
/// exit 2, but 1 for `ViArgs`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("hammer config: unable to open directory {}: {}", dir.display(), strerror(source))]
    OpenDir { dir: PathBuf, source: io::Error },
    /// Printed with the hint that names the store.
    #[error("hammer config: not a HAMMER filesystem!")]
    NotHammer,
    #[error("hammer config: {0}")]
    Store(OpenError),
    #[error("hammer config: config_get")]
    Get(PfsError),
    #[error("hammer config: no configuration found")]
    NoConfig,
    #[error("hammer config: {}: {}", path.display(), strerror(source))]
    File { path: PathBuf, source: io::Error },
    #[error("hammer config: config file too big, limit {TEXT_MAX} bytes")]
    TooBig,
    #[error("hammer config: unable to open directory {}", .0.display())]
    SetOpenDir(PathBuf),
    #[error("hammer config: {0}")]
    Set(PfsError),
    #[error("hammer viconfig: 0 or 1 argument (<fs>) only")]
    ViArgs,
    #[error("hammer viconfig: read config failed error: {0}")]
    ViRead(PfsError),
    #[error("hammer viconfig: creating temporary file: {}", strerror(.0))]
    Temp(io::Error),
    #[error("hammer viconfig: cannot run {editor}: {}", strerror(source))]
    Editor { editor: String, source: io::Error },
    #[error("hammer viconfig: unable to stat file after vi: {}", strerror(.0))]
    StatAfter(io::Error),
    #[error("hammer viconfig: unable to read {}: {}", path.display(), strerror(source))]
    ReadBack { path: PathBuf, source: io::Error },
    /// Writing stdout failed.
    #[error("{}", strerror(.0))]
    Output(#[from] io::Error),
}

fn failure(e: ConfigError) -> Failure {
    match e {
        ConfigError::ViArgs => Failure::errx(e),
        ConfigError::NotHammer => Failure {
            lines: vec![Line::Errx(e.to_string()), Line::Say(NO_STORE_HINT.into())],
            ..Failure::status(2)
        },
        e => Failure::errx(e).exit(2),
    }
    .class("config", None)
}

/// The original's `config_get`'s opening: the directory, then a HAMMER
/// request on it; a descriptor inside the PFS (ioctl-abi.md §10).
fn open(dir: &Path) -> Result<Box<dyn Pfs>, ConfigError> {
    let pfs = match open_inside(dir) {
        Ok(inside) => inside.pfs,
        Err(OpenError::Io(source)) => {
            return Err(ConfigError::OpenDir {
                dir: dir.to_path_buf(),
                source,
            })
        }
        Err(OpenError::NotHammer(_)) => return Err(ConfigError::NotHammer),
        Err(e) => return Err(ConfigError::Store(e)),
    };
    pfs.version().map_err(|_| ConfigError::NotHammer)?;
    Ok(pfs)
}

/// `config_set`: the directory opened again, SET_CONFIG.
fn set(dir: &Path, config: &ConfigData) -> Result<(), ConfigError> {
    let mut pfs = match open(dir) {
        Err(ConfigError::OpenDir { dir, .. }) => return Err(ConfigError::SetOpenDir(dir)),
        r => r?,
    };
    pfs.set_config(config).map_err(ConfigError::Set)
}

/// At most `TEXT_MAX` bytes of `r`; reading that many means the text is
/// too big (the original reads with one `read` of that size and refuses
/// a full one, so 1022 bytes is the most it takes).
fn read_text(r: &mut dyn Read) -> io::Result<Option<Vec<u8>>> {
    let mut text = Vec::with_capacity(TEXT_MAX);
    r.take(TEXT_MAX as u64).read_to_end(&mut text)?;
    Ok((text.len() < TEXT_MAX).then_some(text))
}

fn config_data(text: &[u8]) -> Result<ConfigData, ConfigError> {
    ConfigData::from_text(text).ok_or(ConfigError::TooBig)
}

/// `hammer config [<filesystem> [<configfile>]]` (cli.md §14.1).
pub(crate) fn config(fs: Option<&Path>, file: Option<&Path>) -> Result<(), Failure> {
    config_on(fs.unwrap_or(Path::new(".")), file, &mut io::stdout().lock()).map_err(failure)
}

fn config_on(dir: &Path, file: Option<&Path>, out: &mut dyn Write) -> Result<(), ConfigError> {
    let pfs = open(dir)?;
    let got = pfs.get_config().map_err(ConfigError::Get);
    let Some(file) = file else {
        let config = got?.ok_or(ConfigError::NoConfig)?;
        out.write_all(config.text_bytes())?;
        out.flush()?;
        return Ok(());
    };
    drop(pfs);
    let failed = |source| ConfigError::File {
        path: file.to_path_buf(),
        source,
    };
    let mut f = File::open(file).map_err(failed)?;
    let text = read_text(&mut f)
        .map_err(failed)?
        .ok_or(ConfigError::TooBig)?;
    set(dir, &config_data(&text)?)
}

/// `hammer viconfig [<filesystem>]` (cli.md §14.2): the text (or the
/// default one) in a temporary file, `$EDITOR` (or `$VISUAL`, or `vi`) on
/// it, and the file installed if the editor changed its time.
pub(crate) fn viconfig(fs: Option<&Path>, too_many: bool) -> Result<(), Failure> {
    if too_many {
        return Err(failure(ConfigError::ViArgs));
    }
    let mut out = io::stdout().lock();
    viconfig_on(fs.unwrap_or(Path::new(".")), &mut out).map_err(failure)
}

/// The editor's words: `$EDITOR`, else `$VISUAL`, else `vi`, split at
/// blanks (no shell runs it).
fn editor() -> Vec<OsString> {
    let chosen = std::env::var_os("EDITOR")
        .or_else(|| std::env::var_os("VISUAL"))
        .unwrap_or_else(|| "vi".into());
    let words: Vec<OsString> = chosen
        .as_bytes()
        .split(u8::is_ascii_whitespace)
        .filter(|w| !w.is_empty())
        .map(|w| std::ffi::OsStr::from_bytes(w).to_os_string())
        .collect();
    if words.is_empty() {
        vec!["vi".into()]
    } else {
        words
    }
}

/// A file time in whole seconds since the epoch, as `st_mtime` is.
fn whole_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn viconfig_on(dir: &Path, out: &mut dyn Write) -> Result<(), ConfigError> {
    let pfs = open(dir)?;
    let text = match pfs.get_config().map_err(ConfigError::ViRead)? {
        Some(config) => config.text_bytes().to_vec(),
        None => DEFAULT_CONFIG.as_bytes().to_vec(),
    };
    drop(pfs);
    // A file of the owner's alone, removed whatever happens next.
    let tmp = tempfile::Builder::new()
        .prefix("config")
        .tempfile()
        .map_err(ConfigError::Temp)?;
    let path = tmp.path().to_path_buf();
    let mut f = tmp.as_file();
    f.write_all(&text).map_err(ConfigError::Temp)?;
    // Its time set back a second, so that an edit within the second it
    // was written still shows.
    let mtime = f
        .metadata()
        .and_then(|m| m.modified())
        .map_err(ConfigError::Temp)?;
    let back_secs = whole_secs(mtime).saturating_sub(1);
    let back = UNIX_EPOCH + Duration::from_secs(back_secs);
    f.set_times(FileTimes::new().set_accessed(back).set_modified(back))
        .map_err(ConfigError::Temp)?;
    let words = editor();
    let shown = words
        .iter()
        .map(|w| w.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    // The editor's exit status is not looked at, as the original's
    // system(3)'s is not: only the file's time tells.
    Child::new(&words[0])
        .args(&words[1..])
        .arg(&path)
        .status()
        .map_err(|source| ConfigError::Editor {
            editor: shown,
            source,
        })?;
    let after = fs::metadata(&path)
        .and_then(|m| m.modified())
        .map_err(ConfigError::StatAfter)?;
    if whole_secs(after) == back_secs {
        out.write_all(b"hammer viconfig: no changes were made\n")?;
        out.flush()?;
        return Ok(());
    }
    let failed = |source| ConfigError::ReadBack {
        path: path.clone(),
        source,
    };
    let mut edited = File::open(&path).map_err(failed)?;
    let text = read_text(&mut edited)
        .map_err(failed)?
        .ok_or(ConfigError::TooBig)?;
    set(dir, &config_data(&text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_up_to_1022_bytes_are_taken() {
        let ok = vec![b'#'; TEXT_MAX - 1];
        assert_eq!(read_text(&mut &ok[..]).unwrap(), Some(ok.clone()));
        let full = vec![b'#'; TEXT_MAX];
        assert_eq!(read_text(&mut &full[..]).unwrap(), None);
        assert_eq!(config_data(&ok).unwrap().text_bytes(), &ok[..]);
    }
}
