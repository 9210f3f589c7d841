//! Import and export against `cp -r` of the same tree in the same run:
//! prints the speed ratios. Tree size in MiB from `HAMMER_BENCH_MB`
//! (default 256; the figures in the README are for 1024); the
//! ratios are medians over `HAMMER_BENCH_ROUNDS` (default 4, half of them
//! with `cp -r` last) rounds.

// The tests' seeded generator, so the tree is the same every run; this
// bench uses only part of it.
#[path = "../tests/common/rng.rs"]
#[allow(dead_code)]
mod rng;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rng::Rng;

/// Mixed sizes: most files small, some medium, a few large; 20 files per
/// directory.
fn make_tree(root: &Path, total: u64, rng: &mut Rng) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut left = total;
    let mut block = vec![0u8; 1 << 20];
    while left > 0 {
        let size = match rng.below(100) {
            0..=69 => 1 + rng.below(16 << 10),
            70..=96 => (16 << 10) + rng.below(1 << 20),
            _ => (4 << 20) + rng.below(28 << 20),
        }
        .min(left);
        left -= size;
        let dir = root.join(format!("d{}/e{}", files.len() / 400, files.len() / 20));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join(format!("f{}.dat", files.len()));
        let mut f = fs::File::create(&p).unwrap();
        let mut n = size;
        while n > 0 {
            for b in block.iter_mut().step_by(8) {
                *b = rng.next() as u8;
            }
            let k = n.min(block.len() as u64) as usize;
            f.write_all(&block[..k]).unwrap();
            n -= k as u64;
        }
        files.push(p);
    }
    files
}

/// Times `cmd`, starting with no dirty pages: what the previous step left
/// to write back would otherwise throttle this one's writes.
fn timed(what: &str, cmd: &mut Command) -> Duration {
    assert!(Command::new("sync").status().unwrap().success());
    let t = Instant::now();
    let out = cmd.output().unwrap();
    let d = t.elapsed();
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{what:<28} {:>8.2} s", d.as_secs_f64());
    d
}

/// The median of some ratios.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[m - 1] + v[m]) / 2.0
    } else {
        v[m]
    }
}

/// One round: `cp -r`, import into a new store, export of it; returns
/// the three times and the store's master. Odd rounds run `cp -r` last:
/// on ext4 whichever creates files first after the previous round's were
/// deleted finds free inodes faster, which is no property of either side.
fn round(hammer: &str, d: &Path, tree: &Path, n: usize) -> ([Duration; 3], std::path::PathBuf) {
    let cp = || {
        timed(
            "cp -r",
            Command::new("cp")
                .arg("-r")
                .arg(tree)
                .arg(d.join(format!("cp{n}"))),
        )
    };
    let first = n.is_multiple_of(2).then(cp);
    let store = d.join(format!("store{n}"));
    let quiet = |c: &mut Command| {
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    quiet(Command::new(hammer).arg("store-create").arg(&store));
    let master = store.join("master");
    quiet(Command::new(hammer).arg("pfs-master").arg(&master));
    let import = timed(
        "import",
        Command::new(hammer).arg("import").arg(tree).arg(&master),
    );
    let out = d.join(format!("out{n}"));
    let export = timed(
        "export",
        Command::new(hammer).arg("export").arg(&master).arg(&out),
    );
    let cp = first.unwrap_or_else(cp);
    let same = Command::new("diff")
        .arg("-rq")
        .arg(tree)
        .arg(&out)
        .status()
        .unwrap();
    assert!(same.success(), "export differs from the tree");
    ([cp, import, export], master)
}

fn main() {
    let mb: u64 = std::env::var("HAMMER_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let rounds: usize = std::env::var("HAMMER_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let hammer = env!("CARGO_BIN_EXE_hammer");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tree = d.join("tree");
    let mut rng = Rng(0x5eed);
    let files = make_tree(&tree, mb << 20, &mut rng);
    println!("tree: {} MiB in {} files; {rounds} rounds", mb, files.len());

    // Each round's copies are removed before the next, as a machine that
    // runs backups reuses its page cache.
    let r = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let (mut imports, mut exports, mut import_secs) = (Vec::new(), Vec::new(), Vec::new());
    let mut last: Option<std::path::PathBuf> = None;
    for n in 0..rounds {
        let ([cp, import, export], master) = round(hammer, d, &tree, n);
        println!(
            "  round {n}: import/cp -r {:.2}, export/cp -r {:.2}",
            r(cp, import),
            r(cp, export)
        );
        imports.push(r(cp, import));
        import_secs.push(import.as_secs_f64());
        exports.push(r(cp, export));
        for p in [format!("cp{n}"), format!("out{n}")] {
            fs::remove_dir_all(d.join(p)).unwrap();
        }
        if let Some(old) = last.replace(master) {
            fs::remove_dir_all(old.parent().unwrap()).unwrap();
        }
    }
    let Some(master) = last else {
        panic!("HAMMER_BENCH_ROUNDS must be at least 1");
    };

    // 1% of the files rewritten in place, with new contents.
    let mut changed = 0;
    for (i, p) in files.iter().enumerate() {
        if i % 100 == 7 {
            let len = fs::metadata(p).unwrap().len() as usize;
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            fs::write(p, data).unwrap();
            changed += 1;
        }
    }
    std::thread::sleep(Duration::from_millis(50));
    let reimport = timed(
        &format!("re-import ({changed} changed)"),
        Command::new(hammer).arg("import").arg(&tree).arg(&master),
    );

    println!(
        "import speed / cp -r speed:      {:.2} median of {rounds} paired runs (goal >= 0.5)",
        median(imports)
    );
    println!(
        "re-import time / import time:    {:.3} against the median import (goal <= 0.1)",
        reimport.as_secs_f64() / median(import_secs)
    );
    println!(
        "export speed / cp -r speed:      {:.2} median of {rounds} paired runs (goal >= 0.5)",
        median(exports)
    );
}
