//! `config.json` in `TETHER_HOME`: a `0700` directory, a `0600` file written by
//! temp + fsync + rename, unknown fields kept, a corrupt file reported and never
//! silently overwritten, and `config.lock` for cross-process refresh.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::ConfigError;
use super::secret::Secret;

/// The stored OAuth tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredAuth {
    /// The access token (a JWT from a tether server, opaque from some others).
    pub access_token: Secret,
    /// The refresh token, rotated on every use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret>,
    /// When the access token expires, unix milliseconds.
    pub expires_at: i64,
    /// The granted scope, sent back on refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Fields this version does not know, kept on rewrite.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The whole `config.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    /// OAuth tokens, when signed in with `tether auth login`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<StoredAuth>,
    /// The API the tokens were issued by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// The active organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<crate::OrgId>,
    /// Who signed in, when the server said (from get-session, UserInfo or the ID token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<crate::auth::session::SessionUser>,
    /// Fields this version does not know, kept on rewrite.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Reads and writes `config.json` under one state directory.
#[derive(Debug, Clone)]
pub struct ConfigStore {
    home: PathBuf,
}

/// An exclusive lock on `config.lock`, released on drop.
#[derive(Debug)]
pub struct ConfigLock {
    _file: File,
}

impl ConfigStore {
    /// A store rooted at `home` (`TETHER_HOME`).
    pub fn new(home: impl Into<PathBuf>) -> Self {
        ConfigStore { home: home.into() }
    }

    /// The state directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Path of `config.json`.
    pub fn path(&self) -> PathBuf {
        self.home.join("config.json")
    }

    /// Path of the lock file that serialises refreshes across processes.
    pub fn lock_path(&self) -> PathBuf {
        self.home.join("config.lock")
    }

    /// Reads the config; a missing file is an empty config, a corrupt one an error.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let path = self.path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(source) => {
                return Err(ConfigError::Io {
                    action: "cannot read",
                    path,
                    source,
                })
            }
        };
        serde_json::from_slice(&bytes).map_err(|e| ConfigError::Corrupt {
            path,
            cause: e.to_string(),
        })
    }

    /// Creates the state directory with mode `0700`; refuses one another user owns.
    pub fn ensure_home(&self) -> Result<(), ConfigError> {
        crate::private_file::private_dir(&self.home).map_err(|source| ConfigError::Io {
            action: "cannot use",
            path: self.home.clone(),
            source,
        })
    }

    /// Writes the config atomically: a `0600` temp file, fsync, rename, fsync of the directory.
    pub fn save(&self, config: &Config) -> Result<(), ConfigError> {
        self.ensure_home()?;
        let path = self.path();
        let error = |action: &'static str, source| ConfigError::Io {
            action,
            path: path.clone(),
            source,
        };
        let mut body = serde_json::to_vec_pretty(config)
            .map_err(|e| error("cannot encode", std::io::Error::other(e)))?;
        body.push(b'\n');
        crate::private_file::write_atomically(&path, &body).map_err(|e| error("cannot write", e))
    }

    /// Moves a corrupt `config.json` aside as `config.json.corrupt-<unix ms>` and returns the new path.
    pub fn move_aside(&self, now_ms: i64) -> Result<PathBuf, ConfigError> {
        let from = self.path();
        let to = self.home.join(format!("config.json.corrupt-{now_ms}"));
        fs::rename(&from, &to).map_err(|source| ConfigError::Io {
            action: "cannot move aside",
            path: from,
            source,
        })?;
        Ok(to)
    }

    /// Takes the exclusive cross-process lock on `config.lock`, waiting at most
    /// [`LOCK_LIMIT`] and then naming the holder.
    pub fn lock(&self) -> Result<ConfigLock, ConfigError> {
        self.lock_within(LOCK_LIMIT)
    }

    /// [`ConfigStore::lock`] with a limit of `limit`.
    pub fn lock_within(&self, limit: std::time::Duration) -> Result<ConfigLock, ConfigError> {
        self.ensure_home()?;
        let path = self.lock_path();
        let file = crate::private_file::open_lock(&path).map_err(|source| ConfigError::Io {
            action: "cannot open",
            path: path.clone(),
            source,
        })?;
        let deadline = std::time::Instant::now() + limit;
        loop {
            match fs4::fs_std::FileExt::try_lock_exclusive(&file) {
                Ok(true) => break,
                Ok(false) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                Ok(false) => {
                    let holder = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|text| text.trim().parse::<u32>().ok())
                        .map(|pid| format!("pid {pid}"))
                        .unwrap_or_else(|| "another tether process".into());
                    return Err(ConfigError::Io {
                        action: "cannot lock",
                        path,
                        source: std::io::Error::other(format!(
                            "{holder} has held it for {:.1} s; if that process is stuck, stop it",
                            limit.as_secs_f64()
                        )),
                    });
                }
                Err(source) => {
                    return Err(ConfigError::Io {
                        action: "cannot lock",
                        path,
                        source,
                    })
                }
            }
        }
        // Say who holds it, for the next process that waits too long.
        let _ = file.set_len(0);
        let _ = std::io::Write::write_all(&mut &file, std::process::id().to_string().as_bytes());
        Ok(ConfigLock { _file: file })
    }

    /// Takes the lock on a blocking thread, for async callers.
    pub async fn lock_async(&self) -> Result<ConfigLock, ConfigError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.lock())
            .await
            .map_err(|e| ConfigError::Io {
                action: "cannot lock",
                path: self.lock_path(),
                source: std::io::Error::other(e),
            })?
    }
}

/// How long a process waits for `config.lock` (a refresh takes well under a second).
pub const LOCK_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn save_creates_private_dir_and_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = ConfigStore::new(tmp.path().join("home"));
        store.save(&Config::default()).expect("save");
        assert_eq!(mode(store.home()), 0o700);
        assert_eq!(mode(&store.path()), 0o600);
        assert!(fs::read_dir(store.home()).expect("dir").all(|e| !e
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .contains("tmp")));
    }

    #[test]
    fn unknown_fields_survive_a_rewrite() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = ConfigStore::new(tmp.path());
        fs::write(
            store.path(),
            r#"{"theme":"dark","auth":{"accessToken":"a","expiresAt":1,"device":"x"},"organizationId":"o"}"#,
        )
        .expect("write");
        let mut config = store.load().expect("load");
        config.organization_id = Some(crate::OrgId::parse("p").expect("org"));
        store.save(&config).expect("save");
        let back: Value =
            serde_json::from_slice(&fs::read(store.path()).expect("read")).expect("json");
        assert_eq!(back["theme"], "dark");
        assert_eq!(back["auth"]["device"], "x");
        assert_eq!(back["organizationId"], "p");
    }

    #[test]
    fn corrupt_file_is_reported_with_its_path_and_left_alone() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = ConfigStore::new(tmp.path());
        fs::write(store.path(), "{not json").expect("write");
        let err = store.load().expect_err("corrupt");
        let text = err.to_string();
        assert!(text.contains(&store.path().display().to_string()), "{text}");
        assert!(text.contains("corrupt"), "{text}");
        assert_eq!(fs::read_to_string(store.path()).expect("read"), "{not json");
        let aside = store.move_aside(42).expect("move aside");
        assert!(aside.ends_with("config.json.corrupt-42"));
        assert!(!store.path().exists());
    }

    #[test]
    fn missing_file_is_an_empty_config() {
        let tmp = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            ConfigStore::new(tmp.path()).load().expect("load"),
            Config::default()
        );
    }

    #[test]
    fn a_held_lock_is_waited_for_only_so_long_and_its_holder_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ConfigStore::new(dir.path().join("tether"));
        let held = store.lock().expect("first lock");
        let err = match store.lock_within(std::time::Duration::from_millis(100)) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("a held lock was taken twice"),
        };
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(held);
        store
            .lock_within(std::time::Duration::from_millis(100))
            .expect("free again");
    }
}
