//! A path as the command line gave it: its bytes reach the system calls
//! unchanged (an argument need not be UTF-8, as the original takes bytes),
//! and messages show it as `Path::display` does; and a `Place`, an
//! argument that names either a PFS or a chain in object storage.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::ops::Deref;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathArg(PathBuf);

impl PathArg {
    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

impl Deref for PathArg {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for PathArg {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

/// As `Path::display`: a byte that is not UTF-8 shows as U+FFFD.
impl fmt::Display for PathArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.display().fmt(f)
    }
}

impl From<OsString> for PathArg {
    fn from(s: OsString) -> Self {
        PathArg(s.into())
    }
}

impl From<&Path> for PathArg {
    fn from(p: &Path) -> Self {
        PathArg(p.to_path_buf())
    }
}

impl From<&str> for PathArg {
    fn from(s: &str) -> Self {
        PathArg(s.into())
    }
}

/// The scheme that makes an argument a chain in object storage
/// (chain-format.md) rather than a path or a `[user@]host:` side.
pub const CHAIN_SCHEME: &str = "s3://";

/// An argument that names a PFS (`[[user@]host:]<path>`) or, by its
/// scheme, a chain: told apart here, once, as the command line is parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    Pfs(PathArg),
    Chain(OsString),
}

impl Place {
    pub fn of(word: &OsStr) -> Place {
        if word.as_bytes().starts_with(CHAIN_SCHEME.as_bytes()) {
            Place::Chain(word.to_os_string())
        } else {
            Place::Pfs(PathArg::from(word.to_os_string()))
        }
    }

    /// The argument as it was typed.
    pub fn as_os_str(&self) -> &OsStr {
        match self {
            Place::Pfs(p) => p.as_os_str(),
            Place::Chain(url) => url,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_is_told_by_its_scheme() {
        let chain = OsStr::new("s3://b");
        assert_eq!(Place::of(chain), Place::Chain(chain.into()));
        for pfs in ["host:/pfs", "/s3://x", "s3:/x"] {
            assert_eq!(Place::of(OsStr::new(pfs)), Place::Pfs(pfs.into()), "{pfs}");
        }
    }
}
