//! The settings an AWS tool would use: environment first, then the
//! profile in `~/.aws/credentials` and `~/.aws/config` (with the `s3`
//! endpoint of its `[services ...]` section), and `HAMMER_S3_ENDPOINT`
//! for a non-AWS server.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use super::client::S3Error;

/// How long a failing request is retried unless told otherwise.
const RETRY_TIMEOUT: Duration = Duration::from_secs(120);

/// What the client is built from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct S3Settings {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub region: Option<String>,
    /// A non-AWS server (path-style requests; plain HTTP allowed when the
    /// URL says so).
    pub endpoint: Option<String>,
    /// The profile the settings came from, for messages.
    pub profile: String,
    /// How long a request is retried (`HAMMER_S3_RETRY_TIMEOUT` seconds).
    pub retry_timeout: Duration,
}

/// Reads the settings from `env` (a lookup, so tests need not touch the
/// process environment) and the profile files it points at. Half a key
/// pair in the environment is refused: taking the profile's keys instead
/// would write with another identity than the one set.
pub fn settings(env: &dyn Fn(&str) -> Option<String>) -> Result<S3Settings, S3Error> {
    let var = |k: &str| env(k).filter(|v| !v.is_empty());
    let profile = var("AWS_PROFILE")
        .or_else(|| var("AWS_DEFAULT_PROFILE"))
        .unwrap_or_else(|| "default".to_string());
    let home = var("HOME").map(PathBuf::from);
    let file = |var_name: &str, name: &str| {
        var(var_name)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
    };
    let read = |p: Option<PathBuf>| p.and_then(|p| std::fs::read_to_string(p).ok());
    let creds = read(file("AWS_SHARED_CREDENTIALS_FILE", "credentials"))
        .map(|t| section(&t, &profile))
        .unwrap_or_default();
    let config_name = if profile == "default" {
        "default".to_string()
    } else {
        format!("profile {profile}")
    };
    let config_text = read(file("AWS_CONFIG_FILE", "config")).unwrap_or_default();
    let config = section(&config_text, &config_name);
    let services = config
        .get("services")
        .and_then(|name| s3_endpoint(&config_text, name));
    let from_files = |k: &str| creds.get(k).or_else(|| config.get(k)).cloned();
    // Keys from the environment come as a pair, as the AWS SDKs take them.
    let half = |set: &str, unset: &str| {
        Err(S3Error::Settings(format!(
            "{set} is set but {unset} is not: set both, or neither to use the keys of \
             profile {profile}"
        )))
    };
    let (access_key_id, secret_access_key, session_token) =
        match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => (Some(id), Some(secret), var("AWS_SESSION_TOKEN")),
            (Some(_), None) => return half("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
            (None, Some(_)) => return half("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"),
            (None, None) => (
                from_files("aws_access_key_id"),
                from_files("aws_secret_access_key"),
                from_files("aws_session_token"),
            ),
        };
    Ok(S3Settings {
        access_key_id,
        secret_access_key,
        session_token,
        region: var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .or_else(|| from_files("region")),
        endpoint: var("HAMMER_S3_ENDPOINT")
            .or_else(|| var("AWS_ENDPOINT_URL_S3"))
            .or_else(|| var("AWS_ENDPOINT_URL"))
            .or(services)
            .or_else(|| from_files("endpoint_url")),
        profile,
        retry_timeout: var("HAMMER_S3_RETRY_TIMEOUT")
            .and_then(|v| v.parse().ok())
            .map_or(RETRY_TIMEOUT, Duration::from_secs),
    })
}

/// The `endpoint_url` of the `s3 =` block in section `[services <name>]`:
/// the block's lines are indented under it.
fn s3_endpoint(text: &str, name: &str) -> Option<String> {
    let want = format!("services {name}");
    let (mut inside, mut in_s3) = (false, false);
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(head) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = head.split_whitespace().collect::<Vec<_>>().join(" ") == want;
            in_s3 = false;
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if !raw.starts_with([' ', '\t']) {
            in_s3 = inside && k == "s3" && v.is_empty();
        } else if in_s3 && k == "endpoint_url" {
            return Some(v.to_string());
        }
    }
    None
}

/// The `key = value` lines of INI section `[name]`.
fn section(text: &str, name: &str) -> HashMap<String, String> {
    let mut inside = false;
    let mut keys = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(head) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = head.trim() == name;
            continue;
        }
        if let (true, Some((k, v))) = (inside, line.split_once('=')) {
            keys.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> S3Settings {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        settings(&|k| vars.get(k).cloned()).unwrap()
    }

    #[test]
    fn environment_keys_win_over_the_profile() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        std::fs::write(
            &creds,
            "[default]\naws_access_key_id = FILEID\naws_secret_access_key = FILESECRET\n\
             [other]\naws_access_key_id=OTHERID\naws_secret_access_key=OTHERSECRET\n",
        )
        .unwrap();
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            "[default]\nregion = eu-1\n[profile other]\nregion = garage\n\
             endpoint_url = http://127.0.0.1:3900\n",
        )
        .unwrap();
        let c = creds.to_str().unwrap();
        let f = config.to_str().unwrap();
        let s = with(&[("AWS_SHARED_CREDENTIALS_FILE", c), ("AWS_CONFIG_FILE", f)]);
        assert_eq!(s.access_key_id.as_deref(), Some("FILEID"));
        assert_eq!(s.region.as_deref(), Some("eu-1"));
        assert_eq!(s.endpoint, None);
        let s = with(&[
            ("AWS_SHARED_CREDENTIALS_FILE", c),
            ("AWS_CONFIG_FILE", f),
            ("AWS_PROFILE", "other"),
        ]);
        assert_eq!(s.secret_access_key.as_deref(), Some("OTHERSECRET"));
        assert_eq!(s.region.as_deref(), Some("garage"));
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
        let s = with(&[
            ("AWS_SHARED_CREDENTIALS_FILE", c),
            ("AWS_ACCESS_KEY_ID", "ENVID"),
            ("AWS_SECRET_ACCESS_KEY", "ENVSECRET"),
            ("AWS_REGION", "r"),
            ("HAMMER_S3_ENDPOINT", "http://h:1"),
            ("AWS_ENDPOINT_URL", "http://ignored"),
        ]);
        assert_eq!(s.access_key_id.as_deref(), Some("ENVID"));
        assert_eq!(s.secret_access_key.as_deref(), Some("ENVSECRET"));
        assert_eq!(s.region.as_deref(), Some("r"));
        assert_eq!(s.endpoint.as_deref(), Some("http://h:1"));
    }

    #[test]
    fn half_a_key_pair_is_refused_not_completed_from_the_profile() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        std::fs::write(
            &creds,
            "[default]\naws_access_key_id = FILEID\naws_secret_access_key = FILESECRET\n",
        )
        .unwrap();
        let c = creds.to_str().unwrap().to_string();
        for (set, other) in [
            ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
            ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"),
        ] {
            let env = |k: &str| match k {
                "AWS_SHARED_CREDENTIALS_FILE" => Some(c.clone()),
                k if k == set => Some("ENV".to_string()),
                _ => None,
            };
            let e = settings(&env).unwrap_err().to_string();
            assert!(
                e.contains(&format!("{set} is set but {other} is not")),
                "{e}"
            );
        }
    }

    #[test]
    fn the_s3_endpoint_of_a_services_section_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            "[profile p]\nregion = r\nservices = local\n\n\
             [services local]\ndynamodb =\n  endpoint_url = http://127.0.0.1:8000\n\
             s3 =\n  endpoint_url = http://127.0.0.1:3900\n  addressing_style = path\n\
             [services other]\ns3 =\n  endpoint_url = http://elsewhere\n",
        )
        .unwrap();
        let f = config.to_str().unwrap();
        let s = with(&[("AWS_CONFIG_FILE", f), ("AWS_PROFILE", "p")]);
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
        let s = with(&[
            ("AWS_CONFIG_FILE", f),
            ("AWS_PROFILE", "p"),
            ("AWS_ENDPOINT_URL_S3", "http://env"),
        ]);
        assert_eq!(s.endpoint.as_deref(), Some("http://env"));
    }

    #[test]
    fn no_files_no_keys() {
        let s = with(&[("HOME", "/nonexistent")]);
        assert_eq!(s.access_key_id, None);
        assert_eq!(s.profile, "default");
    }
}
