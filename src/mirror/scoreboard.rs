//! The `-e` scoreboard: a small text file of three status lines that
//! mirror-read rewrites as it goes (protocol.md §13), with the overlapping
//! fields of D12 separated and every rewrite atomic (D21).

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Size of the in-memory image.
const IMAGE_SIZE: usize = 1024;

/// A scoreboard line: start column and width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub col: usize,
    pub width: usize,
}

/// Line 1: `Running` / `Waiting`.
pub const STATUS: Field = Field { col: 0, width: 20 };
/// Line 2: progress.
pub const PROGRESS: Field = Field { col: 20, width: 78 };
/// Line 3: errors and the prescan summary. The original started it at
/// column 90, inside line 2 (D12).
pub const MESSAGE: Field = Field { col: 98, width: 70 };

/// Progress lines are rewritten at most this often; status and messages
/// always at once.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

pub struct Scoreboard {
    path: PathBuf,
    image: [u8; IMAGE_SIZE],
    extent: usize,
    last_progress: Option<Instant>,
}

impl Scoreboard {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Scoreboard {
            path: path.into(),
            image: [0; IMAGE_SIZE],
            extent: 0,
            last_progress: None,
        }
    }

    /// Sets a field and rewrites the file. Progress updates within a second
    /// of the last one are kept in memory only.
    pub fn update(&mut self, field: Field, text: &str) -> io::Result<()> {
        self.set(field, text);
        if field == PROGRESS {
            let now = Instant::now();
            if self
                .last_progress
                .is_some_and(|t| now.duration_since(t) < PROGRESS_INTERVAL)
            {
                return Ok(());
            }
            self.last_progress = Some(now);
        }
        self.store()
    }

    /// The original's field update: NULs before the field become spaces;
    /// the text is cut to width-2, padded to width-1, and ends in newline.
    fn set(&mut self, f: Field, text: &str) {
        for b in &mut self.image[..f.col] {
            if *b == 0 {
                *b = b' ';
            }
        }
        let t = text.as_bytes();
        let n = t.len().min(f.width - 2);
        let cell = &mut self.image[f.col..f.col + f.width];
        cell[..n].copy_from_slice(&t[..n]);
        cell[n..f.width - 1].fill(b' ');
        cell[f.width - 1] = b'\n';
        self.extent = self.extent.max(f.col + f.width);
    }

    /// The file's current content.
    pub fn contents(&self) -> &[u8] {
        &self.image[..self.extent]
    }

    fn store(&self) -> io::Result<()> {
        crate::fsio::replace_file(&self.path, self.contents(), 0o644)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn d12_lines_do_not_overlap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sb");
        let mut sb = Scoreboard::new(&path);
        sb.update(STATUS, "Running").unwrap();
        sb.update(
            PROGRESS,
            &format!("obj={:016x} tids={:016x}:{:016x} {:>11}", 1, 2, 3, 12345),
        )
        .unwrap();
        sb.update(MESSAGE, "Prescan 3 chunks, total 5 MBytes")
            .unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].trim_end(), "Running");
        assert_eq!(
            lines[1].trim_end(),
            "obj=0000000000000001 tids=0000000000000002:0000000000000003       12345"
        );
        assert_eq!(lines[2].trim_end(), "Prescan 3 chunks, total 5 MBytes");
        assert_eq!(text.len(), 168);
    }

    #[test]
    fn long_text_is_cut_and_short_padded() {
        let mut sb = Scoreboard::new("/nonexistent/unused");
        sb.set(STATUS, &"x".repeat(40));
        assert_eq!(
            &sb.contents()[..20],
            format!("{}{}\n", "x".repeat(18), " ").as_bytes()
        );
        sb.set(STATUS, "Waiting");
        assert_eq!(&sb.contents()[..20], b"Waiting            \n");
    }
}
