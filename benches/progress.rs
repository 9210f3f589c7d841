//! Bench of the progress line, on a terminal as a user sees
//! it: how close its ETA comes to the time really left on a steady copy
//! (mirror-copy held to `-b` so that the rate is steady), from the 20%
//! mark on, and what drawing it costs: mirror-copy with the line on a
//! terminal against the same copy with `-q`, paired rounds, median ratio.
//! Sizes: BENCH_PROGRESS_MB (default 1024) copied at BENCH_PROGRESS_RATE
//! (`-b`, default 24m); BENCH_PROGRESS_COST_MB (default 256) in
//! BENCH_PROGRESS_ROUNDS (default 5) pairs.

// The tests' seeded generator; this bench uses only part of it.
#[path = "../tests/common/rng.rs"]
#[allow(dead_code)]
mod rng;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::pty::{openpty, Winsize};

const HAMMER: &str = env!("CARGO_BIN_EXE_hammer");

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ok(args: &[&str]) {
    let out = Command::new(HAMMER)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run hammer");
    assert!(
        out.status.success(),
        "hammer {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A store whose master holds `mb` MiB of incompressible files.
fn master(dir: &Path, mb: u64) -> PathBuf {
    let tree = dir.join("tree");
    fs::create_dir_all(&tree).expect("mkdir");
    let mut rng = rng::Rng(13);
    let per_file = 64u64.min(mb);
    for i in 0..mb / per_file {
        fs::write(
            tree.join(format!("f{i}")),
            rng.bytes((per_file << 20) as usize),
        )
        .expect("write");
    }
    let root = dir.join("src");
    ok(&["store-create", root.to_str().unwrap()]);
    let m = root.join("master");
    ok(&["pfs-master", m.to_str().unwrap()]);
    ok(&["-q", "import", tree.to_str().unwrap(), m.to_str().unwrap()]);
    fs::remove_dir_all(&tree).expect("rm tree");
    m
}

/// Runs hammer with stderr on a terminal; returns what the terminal got,
/// each read stamped with its time since the start, and the time the
/// command took.
fn on_tty(args: &[&str]) -> (Vec<(Duration, Vec<u8>)>, Duration) {
    let size = Winsize {
        ws_row: 24,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = openpty(Some(&size), None).expect("openpty");
    let t0 = Instant::now();
    let mut child = Command::new(HAMMER)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(pty.slave))
        .spawn()
        .expect("spawn");
    let mut master = fs::File::from(pty.master);
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            let _ = tx.send((t0.elapsed(), buf[..n].to_vec()));
        }
    });
    let status = child.wait().expect("wait");
    let took = t0.elapsed();
    reader.join().expect("reader");
    assert!(status.success(), "hammer {args:?} failed");
    (rx.into_iter().collect(), took)
}

/// (time, percent, ETA seconds) of every drawing of the line that shows
/// an ETA.
fn eta_samples(seen: &[(Duration, Vec<u8>)]) -> Vec<(f64, f64, f64)> {
    let mut out = Vec::new();
    for (t, bytes) in seen {
        let text = String::from_utf8_lossy(bytes);
        for draw in text.split(['\r', '\n']) {
            let words: Vec<&str> = draw.split_whitespace().collect();
            let pct = words
                .iter()
                .find_map(|w| w.strip_suffix('%')?.parse::<f64>().ok());
            let eta = words
                .iter()
                .position(|w| *w == "ETA")
                .and_then(|i| words.get(i + 1))
                .and_then(|w| hms(w));
            if let (Some(p), Some(e)) = (pct, eta) {
                out.push((t.as_secs_f64(), p, e));
            }
        }
    }
    out
}

fn hms(s: &str) -> Option<f64> {
    let mut secs = 0.0;
    for part in s.split(':') {
        secs = secs * 60.0 + part.parse::<f64>().ok()?;
    }
    Some(secs)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn eta_accuracy(dir: &Path) {
    let mb = env_num("BENCH_PROGRESS_MB", 1024);
    let rate = std::env::var("BENCH_PROGRESS_RATE").unwrap_or_else(|_| "24m".into());
    let m = master(dir, mb);
    let slave = dir.join("dst");
    ok(&["store-create", slave.to_str().unwrap()]);
    let s = slave.join("slave");
    let (seen, took) = on_tty(&[
        "-y",
        "-b",
        &rate,
        "mirror-copy",
        m.to_str().unwrap(),
        s.to_str().unwrap(),
    ]);
    let end = took.as_secs_f64();
    let samples = eta_samples(&seen);
    println!(
        "ETA accuracy: mirror-copy of {mb} MiB at -b {rate}, {end:.1} s, {} drawings with an ETA",
        samples.len()
    );
    println!("  mark   at (s)   ETA shown (s)   really left (s)   error");
    let mut worst: f64 = 0.0;
    let mut next_mark = 20.0;
    for &(t, pct, eta) in &samples {
        let left = end - t;
        // From the 20% mark to 90%: nearer the end, the whole seconds the
        // line shows are a large part of what is left.
        if !(20.0..=90.0).contains(&pct) || left <= 0.0 {
            continue;
        }
        let err = (eta - left).abs() / left;
        worst = worst.max(err);
        if pct >= next_mark {
            println!(
                "  {pct:>3}%   {t:>6.1}   {eta:>13.0}   {left:>15.1}   {:>5.1}%",
                err * 100.0
            );
            next_mark = (pct / 10.0).floor() * 10.0 + 10.0;
        }
    }
    println!(
        "  worst error from 20% to 90%: {:.1}% (goal <= 25%)",
        worst * 100.0
    );
    fs::remove_dir_all(&slave).expect("rm slave store");
    fs::remove_dir_all(m.parent().unwrap()).expect("rm source store");
}

fn drawing_cost(dir: &Path) {
    let mb = env_num("BENCH_PROGRESS_COST_MB", 256);
    let rounds = env_num("BENCH_PROGRESS_ROUNDS", 5);
    let m = master(dir, mb);
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let copy = |quiet: bool| {
            let dst = dir.join(format!("dst{round}{quiet}"));
            ok(&["store-create", dst.to_str().unwrap()]);
            let s = dst.join("slave");
            let mut args = vec![
                "-y",
                "mirror-copy",
                m.to_str().unwrap(),
                s.to_str().unwrap(),
            ];
            if quiet {
                args.insert(0, "-q");
            }
            let (_, took) = on_tty(&args);
            fs::remove_dir_all(&dst).expect("rm");
            took.as_secs_f64()
        };
        // Alternate which goes first: the page cache favours the second.
        let (shown, quiet) = if round % 2 == 0 {
            let s = copy(false);
            (s, copy(true))
        } else {
            let q = copy(true);
            (copy(false), q)
        };
        ratios.push(quiet / shown);
    }
    println!(
        "Drawing cost: mirror-copy of {mb} MiB on a terminal, line shown vs -q, {rounds} pairs: \
         throughput ratio median {:.3} (goal >= 0.99)",
        median(&mut ratios)
    );
    fs::remove_dir_all(m.parent().unwrap()).expect("rm source store");
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    drawing_cost(dir.path());
    eta_accuracy(dir.path());
}
