//! The S3 servers `.ci/run` starts: the Garage cluster of
//! tests/garage/cluster.sh, named by `HAMMER_TEST_GARAGE` (its directory),
//! and s3s-fs of tests/s3s/server.sh (a server that honours conditional
//! writes, as AWS S3 does), named by `HAMMER_TEST_S3S`: hammer runs set up
//! to reach one, a fresh bucket per test, a client of the same crate for
//! looking behind hammer's back, and a Garage node stopped and started
//! again.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use hammer_mirror::chain::awsconf::S3Settings;
use hammer_mirror::chain::client::Bucket;

use super::hammer;

/// One of the servers (the name is Garage's, which came first).
pub struct Garage {
    dir: PathBuf,
    env: Vec<(String, String)>,
    /// The script that started it, under tests/.
    script: &'static str,
}

/// The server started in the directory `var` names, or a panic saying how
/// to start one.
fn server(var: &str, script: &'static str, binary: &str) -> Garage {
    let dir = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        panic!(
            "{var} is not set: start the server with `{binary}=<binary> bash tests/{script} \
             start <dir>` and export {var}=<dir> (.ci/run does both)"
        )
    });
    let text = std::fs::read_to_string(dir.join("env")).expect("the server's env file");
    let env = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Garage { dir, env, script }
}

/// The Garage cluster.
pub fn garage() -> Garage {
    server("HAMMER_TEST_GARAGE", "garage/cluster.sh", "GARAGE")
}

/// The s3s-fs server.
pub fn s3s() -> Garage {
    server("HAMMER_TEST_S3S", "s3s/server.sh", "S3S_FS")
}

static BUCKETS: AtomicU32 = AtomicU32::new(0);

/// `hammer` with none of the host's own AWS profiles and files.
pub fn hammer_without_aws() -> Command {
    let mut c = hammer();
    for k in [
        "AWS_PROFILE",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ] {
        c.env_remove(k);
    }
    c
}

impl Garage {
    pub fn var(&self, key: &str) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{key} not in the cluster's env file"))
    }

    /// `hammer` with the cluster's endpoint, key and region, and nothing
    /// of the host's own AWS settings.
    pub fn hammer(&self) -> Command {
        let mut c = hammer_without_aws();
        for k in [
            "HAMMER_S3_ENDPOINT",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
        ] {
            c.env(k, self.var(k));
        }
        c.env("HAMMER_S3_RETRY_TIMEOUT", "20");
        c
    }

    /// A new bucket the test key may use, named after `hint`.
    pub fn bucket(&self, hint: &str) -> String {
        let n = BUCKETS.fetch_add(1, Ordering::Relaxed);
        let name = format!("{hint}-{}-{n}", std::process::id());
        self.cluster(&["bucket", &name]);
        name
    }

    /// A client of the bucket, as hammer makes one.
    pub fn client(&self, bucket: &str) -> Bucket {
        let s = S3Settings {
            access_key_id: Some(self.var("AWS_ACCESS_KEY_ID")),
            secret_access_key: Some(self.var("AWS_SECRET_ACCESS_KEY")),
            region: Some(self.var("AWS_REGION")),
            endpoint: Some(self.var("HAMMER_S3_ENDPOINT")),
            retry_timeout: std::time::Duration::from_secs(20),
            ..S3Settings::default()
        };
        Bucket::open(bucket, &s).unwrap()
    }

    pub fn stop_node(&self, n: u32) {
        self.cluster(&["stop-node", &n.to_string()]);
    }

    pub fn start_node(&self, n: u32) {
        self.cluster(&["start-node", &n.to_string()]);
    }

    fn cluster(&self, args: &[&str]) {
        let script = format!("{}/tests/{}", env!("CARGO_MANIFEST_DIR"), self.script);
        let (cmd, rest) = args.split_first().unwrap();
        let out = Command::new("bash")
            .arg(script)
            .arg(cmd)
            .arg(&self.dir)
            .args(rest)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cluster.sh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
