//! What an import leaves out of its source tree: `--exclude` and
//! `--exclude-from` patterns (gitignore's syntax, matched against the path
//! inside the tree) and, with `--one-file-system`, the contents of every
//! directory on another filesystem than the tree's root (cli.md §19).

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::BridgeError;

/// The options that choose what is left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExcludeOptions {
    /// `--exclude PATTERN`, in order.
    pub patterns: Vec<OsString>,
    /// `--exclude-from FILE`: patterns a line each (`#` comments, blank
    /// lines ignored, as in a .gitignore).
    pub from: Vec<PathBuf>,
    /// `--one-file-system`.
    pub one_file_system: bool,
}

/// The filter of one import's tree.
#[derive(Debug)]
pub struct Excludes {
    root: PathBuf,
    matcher: Option<Gitignore>,
    /// The root's device, with `--one-file-system`.
    root_dev: Option<u64>,
}

impl Excludes {
    /// The filter of the tree at `root`.
    pub fn new(root: &Path, opts: &ExcludeOptions) -> Result<Excludes, BridgeError> {
        let bad = |pattern: &str, why: String| BridgeError::BadPattern {
            pattern: pattern.to_string(),
            why,
        };
        let mut b = GitignoreBuilder::new(root);
        for p in &opts.patterns {
            let text = p
                .to_str()
                .ok_or_else(|| bad(&p.to_string_lossy(), "not valid UTF-8".to_string()))?;
            b.add_line(None, text)
                .map_err(|e| bad(text, e.to_string()))?;
        }
        for file in &opts.from {
            let text = fs::read(file).map_err(|e| BridgeError::io(file, e))?;
            let text = String::from_utf8(text).map_err(|_| BridgeError::BadPattern {
                pattern: file.display().to_string(),
                why: "the file is not valid UTF-8".to_string(),
            })?;
            for line in text.lines() {
                b.add_line(Some(file.clone()), line)
                    .map_err(|e| bad(line, e.to_string()))?;
            }
        }
        let matcher = b.build().map_err(|e| bad("", e.to_string()))?;
        let root_dev = match opts.one_file_system {
            true => Some(
                fs::metadata(root)
                    .map_err(|e| BridgeError::io(root, e))?
                    .dev(),
            ),
            false => None,
        };
        Ok(Excludes {
            root: root.to_path_buf(),
            matcher: (!matcher.is_empty()).then_some(matcher),
            root_dev,
        })
    }

    /// Nothing left out.
    pub fn none(root: &Path) -> Excludes {
        Excludes {
            root: root.to_path_buf(),
            matcher: None,
            root_dev: None,
        }
    }

    /// Whether any pattern was given.
    pub fn has_patterns(&self) -> bool {
        self.matcher.is_some()
    }

    /// Whether the entry at `path` (under the tree's root) is left out.
    pub fn excluded(&self, path: &Path, is_dir: bool) -> bool {
        let Some(m) = &self.matcher else {
            return false;
        };
        let inside = path.strip_prefix(&self.root).unwrap_or(path);
        m.matched(inside, is_dir).is_ignore()
    }

    /// Whether a directory on device `dev` is walked into.
    pub fn enters(&self, dev: u64) -> bool {
        self.root_dev.is_none_or(|root| root == dev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(patterns: &[&str]) -> Excludes {
        let opts = ExcludeOptions {
            patterns: patterns.iter().map(OsString::from).collect(),
            ..ExcludeOptions::default()
        };
        Excludes::new(Path::new("/t"), &opts).unwrap()
    }

    #[test]
    fn gitignore_patterns_match_paths_inside_the_tree() {
        let e = with(&["*.tmp", "/cache", "build/", "!keep.tmp", "**/logs/*.log"]);
        let x = |p: &str, dir| e.excluded(&Path::new("/t").join(p), dir);
        assert!(x("a.tmp", false) && x("d/e/b.tmp", false));
        assert!(!x("keep.tmp", false));
        assert!(x("cache", true) && !x("d/cache", true));
        assert!(x("d/build", true) && !x("d/build", false));
        assert!(x("srv/logs/x.log", false) && !x("srv/logs/x.txt", false));
        assert!(!x("plain", false));
    }

    #[test]
    fn hostile_patterns_get_an_answer() {
        // Empty and blank patterns match nothing; deep globs are fine.
        let e = with(&["", "   ", "**/**/**"]);
        assert!(e.excluded(Path::new("/t/a/b"), false));
        let many: Vec<String> = (0..10_000).map(|i| format!("f{i}.x")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let e = with(&refs);
        assert!(e.excluded(Path::new("/t/f9999.x"), false));
        assert!(!e.excluded(Path::new("/t/f10000.x"), false));
        let opts = ExcludeOptions {
            patterns: vec![std::os::unix::ffi::OsStringExt::from_vec(vec![b'a', 0xff])],
            ..ExcludeOptions::default()
        };
        let err = Excludes::new(Path::new("/t"), &opts).unwrap_err();
        assert!(err.to_string().contains("not valid UTF-8"), "{err}");
        let bad = ExcludeOptions {
            patterns: vec!["a{b".into()],
            ..ExcludeOptions::default()
        };
        assert!(matches!(
            Excludes::new(Path::new("/t"), &bad),
            Err(BridgeError::BadPattern { .. })
        ));
    }

    #[test]
    fn one_file_system_enters_the_roots_device_only() {
        let d = tempfile::tempdir().unwrap();
        let opts = ExcludeOptions {
            one_file_system: true,
            ..ExcludeOptions::default()
        };
        let e = Excludes::new(d.path(), &opts).unwrap();
        let dev = fs::metadata(d.path()).unwrap().dev();
        assert!(e.enters(dev) && !e.enters(dev + 1));
        assert!(Excludes::none(d.path()).enters(dev + 1));
    }
}
