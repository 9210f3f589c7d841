//! A path as the command line gave it: its bytes reach the system calls
//! unchanged (an argument need not be UTF-8, as the original takes bytes),
//! and messages show it as `Path::display` does.

use std::ffi::OsString;
use std::fmt;
use std::ops::Deref;
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
