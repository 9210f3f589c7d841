//! What a mistyped command line is told besides the usage: the command
//! word closest to an unknown one, and an option written after the
//! command word, where getopt no longer reads options (cli.md §2).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use super::getopt::takes_argument;
use super::table;

/// The implemented command word closest to `word` by edit distance, if
/// one is close enough to be what was meant: at most a third of the
/// longer word's letters differ (two at least, so short typos count).
pub fn closest_command(word: &OsStr) -> Option<&'static str> {
    let word = word.as_bytes();
    table::entries()
        .map(|e| e.word)
        .filter(|w| !w.is_empty())
        .map(|w| (distance(word, w.as_bytes()), w))
        .filter(|&(d, w)| d <= (word.len().max(w.len()) / 3).max(2))
        .min_by_key(|&(d, _)| d)
        .map(|(_, w)| w)
}

/// Levenshtein distance of two byte strings; `b` is a command word, so
/// one row of its length is all the memory it takes.
fn distance(a: &[u8], b: &[u8]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// Whether `arg` reads as hammer's options had it come before the
/// command word: `-` and option letters getopt knows, up to the first
/// that takes a value (the rest of the word is that value).
pub fn looks_like_options(arg: &OsStr) -> bool {
    let Some(letters) = arg.as_bytes().strip_prefix(b"-") else {
        return false;
    };
    if letters.is_empty() || letters == b"-" {
        return false;
    }
    for &c in letters {
        match takes_argument(char::from(c)) {
            None => return false,
            Some(true) => return true,
            Some(false) => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_finds_its_command() {
        for (typed, meant) in [
            ("mirror-raed", Some("mirror-read")),
            ("mirrorcopy", Some("mirror-copy")),
            ("pfs-stat", Some("pfs-status")),
            ("snpls", Some("snapls")),
            ("exprot", Some("export")),
            ("frobnicate", None),
            ("x", None),
        ] {
            assert_eq!(closest_command(OsStr::new(typed)), meant, "{typed}");
        }
    }

    #[test]
    fn distances() {
        assert_eq!(distance(b"", b"abc"), 3);
        assert_eq!(distance(b"kitten", b"sitting"), 3);
        assert_eq!(distance(b"same", b"same"), 0);
        assert_eq!(distance(b"ab", b"ba"), 2);
    }

    #[test]
    fn options_are_told_from_other_words() {
        for yes in ["-v", "-vvy", "-b10m", "-b", "-j-", "-z", "-2q"] {
            assert!(looks_like_options(OsStr::new(yes)), "{yes}");
        }
        for no in ["-", "--", "--help", "-vx", "-Q", "pfs", "/a/-v", "-é"] {
            assert!(!looks_like_options(OsStr::new(no)), "{no}");
        }
    }
}
