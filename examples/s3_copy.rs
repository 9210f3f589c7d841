//! One file to or from an S3 object through the client hammer's chains use
//! (the baseline of benches/s3_chain.sh), with hammer's S3 settings:
//! `s3_copy put <file> <bucket> <key>`, `s3_copy get <bucket> <key> <file>`.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::process::ExitCode;

use hammer_mirror::chain::awsconf;
use hammer_mirror::chain::client::{Bucket, S3Error};

/// Bytes moved to or from the file per syscall.
const FILE_BUF: usize = 1 << 20;

/// The S3 error behind a failed copy if there is one, else the file's.
fn copy_error(s3: Option<&S3Error>, file: &str, e: io::Error) -> String {
    s3.map_or_else(|| format!("{file}: {e}"), S3Error::to_string)
}

fn put(file: &str, bucket: &Bucket, key: &str) -> Result<u64, String> {
    let f = File::open(file).map_err(|e| format!("{file}: {e}"))?;
    let mut src = BufReader::with_capacity(FILE_BUF, f);
    let mut w = bucket.writer(key, Box::new(|_| Ok(())));
    io::copy(&mut src, &mut w).map_err(|e| copy_error(w.error(), file, e))?;
    w.finish().map(|done| done.size).map_err(|e| e.to_string())
}

fn get(bucket: &Bucket, key: &str, file: &str) -> Result<u64, String> {
    let f = File::create(file).map_err(|e| format!("{file}: {e}"))?;
    let mut dst = BufWriter::with_capacity(FILE_BUF, f);
    let mut r = bucket.reader(key);
    let n = io::copy(&mut r, &mut dst).map_err(|e| copy_error(r.error(), file, e))?;
    dst.flush().map_err(|e| format!("{file}: {e}"))?;
    Ok(n)
}

fn run(args: &[String]) -> Result<u64, String> {
    let settings = awsconf::settings(&|k| std::env::var(k).ok()).map_err(|e| e.to_string())?;
    let open = |name: &str| Bucket::open(name, &settings).map_err(|e| e.to_string());
    match args {
        [verb, file, bucket, key] if verb == "put" => put(file, &open(bucket)?, key),
        [verb, bucket, key, file] if verb == "get" => get(&open(bucket)?, key, file),
        _ => Err("usage: s3_copy put <file> <bucket> <key> | get <bucket> <key> <file>".into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(n) => {
            println!("{n} bytes");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("s3_copy: {e}");
            ExitCode::FAILURE
        }
    }
}
