//! One update, start to end, before anything running is touched: read `latest.json`
//! and check its signature, choose the archive for this target, download it and check its
//! sha256 and its manifest, then put the binaries in place by rename.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::error::ReleaseError;
use super::latest::{self, Latest};
use super::{replace, unpack};

/// Where releases come from and which key signs them.
#[derive(Debug, Clone)]
pub struct Source {
    /// The release directory: holds `latest.json`, its `.minisig` and the archives.
    pub url: String,
    /// The base64 minisign public key to trust.
    pub public_key: String,
}

/// The installed files, found from the running CLI.
#[derive(Debug, Clone)]
pub struct Installed {
    /// `bin/tether`.
    pub cli: PathBuf,
    /// `lib/tether/tether-host` (or `lib/tether-host`).
    pub host: PathBuf,
    /// Beside the host: `tether-ptyd`.
    pub ptyd: PathBuf,
}

impl Installed {
    /// The three paths, in [`tether_contract::bundle_layout::BINARIES`] order.
    pub fn paths(&self) -> [PathBuf; 3] {
        [self.cli.clone(), self.host.clone(), self.ptyd.clone()]
    }
}

/// What `latest.json` offers this build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// Nothing to do: the release is this version.
    UpToDate {
        /// The release's version.
        version: String,
    },
    /// A newer pre-release, not offered to a release install (`--version` installs it).
    PreRelease {
        /// The pre-release's version.
        version: String,
    },
    /// A release to install.
    Update {
        /// Its version.
        version: String,
        /// The archive's URL.
        url: String,
        /// The archive's sha256.
        sha256: String,
    },
}

/// Reads and checks `latest.json`, and says what it offers a build of `current` for
/// `target`; `wanted` accepts exactly that version, older ones included.
pub async fn offer(
    http: &reqwest::Client,
    source: &Source,
    target: &str,
    current: &str,
    wanted: Option<&str>,
) -> Result<Offer, ReleaseError> {
    let base = source.url.trim_end_matches('/');
    let document = get(http, &format!("{base}/latest.json")).await?;
    let signature = get(http, &format!("{base}/latest.json.minisig")).await?;
    let signature = String::from_utf8_lossy(&signature);
    let release: Latest = latest::verified(&document, &signature, &source.public_key)?;
    if let Some(wanted) = wanted {
        if release.version != wanted {
            return Err(ReleaseError::NotWanted {
                base: base.to_string(),
                offered: release.version,
                wanted: wanted.to_string(),
            });
        }
    } else {
        match latest::judge(&release.version, current)? {
            latest::Verdict::Newer => {}
            latest::Verdict::Same => {
                return Ok(Offer::UpToDate {
                    version: release.version,
                })
            }
            latest::Verdict::PreRelease => {
                return Ok(Offer::PreRelease {
                    version: release.version,
                })
            }
            latest::Verdict::Older => {
                return Err(ReleaseError::Older {
                    base: base.to_string(),
                    offered: release.version,
                    current: current.to_string(),
                })
            }
        }
    }
    let entry = release
        .targets
        .get(target)
        .ok_or_else(|| ReleaseError::NoArchive {
            version: release.version.clone(),
            target: target.to_string(),
        })?;
    let url = if entry.url.contains("://") {
        entry.url.clone()
    } else {
        format!("{base}/{}", entry.url.trim_start_matches('/'))
    };
    Ok(Offer::Update {
        version: release.version,
        url,
        sha256: entry.sha256.to_lowercase(),
    })
}

/// Downloads and checks the offered archive, then replaces `installed` (keeping `.old`).
pub async fn install(
    http: &reqwest::Client,
    installed: &Installed,
    target: &str,
    version: &str,
    url: &str,
    sha256: &str,
) -> Result<(), ReleaseError> {
    let archive = get(http, url).await?;
    let actual = unpack::hex(&Sha256::digest(&archive));
    if actual != sha256 {
        return Err(ReleaseError::Checksum {
            url: url.to_string(),
            actual,
            expected: sha256.to_string(),
        });
    }
    let new = unpack::binaries(&archive, version, target)?;
    let files: Vec<(PathBuf, Vec<u8>)> = installed
        .paths()
        .into_iter()
        .zip(new.files)
        .map(|(path, (_, bytes))| (path, bytes))
        .collect();
    replace::replace(&files)
}

/// Largest file a release server may send (a bundle is about 5 MiB).
const MAX_DOWNLOAD: u64 = 256 * 1024 * 1024;

/// GETs `url` (at most 256 MiB), failing on any status but 200.
async fn get(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, ReleaseError> {
    get_at_most(http, url, MAX_DOWNLOAD).await
}

/// GETs `url`, refusing a body over `limit` bytes whether or not the server announced its
/// length (a hostile server may stream without end).
async fn get_at_most(
    http: &reqwest::Client,
    url: &str,
    limit: u64,
) -> Result<Vec<u8>, ReleaseError> {
    let failed = |detail: String| ReleaseError::Download {
        url: url.to_string(),
        detail,
    };
    let mut response = http
        .get(url)
        .send()
        .await
        .map_err(|e| failed(crate::auth::transport::describe(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(failed(format!("the server answered {status}")));
    }
    let too_large = || ReleaseError::TooLarge {
        url: url.to_string(),
        limit_mib: limit >> 20,
    };
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| failed(e.to_string()))? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_body_without_end_is_cut_at_the_limit() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
            let _ = socket.write_all(head.as_bytes()).await;
            // 1 KiB chunks for as long as the client reads.
            let chunk = format!("400\r\n{}\r\n", "x".repeat(1024));
            while socket.write_all(chunk.as_bytes()).await.is_ok() {}
        });
        let url = format!("http://{addr}/latest.json");
        let client = reqwest::Client::new();
        let download = get_at_most(&client, &url, 64 * 1024);
        let refused = tokio::time::timeout(std::time::Duration::from_secs(10), download).await;
        assert!(
            refused
                .as_ref()
                .is_ok_and(|r| matches!(r, Err(ReleaseError::TooLarge { .. }))),
            "the download did not stop at the limit: {refused:?}"
        );
    }
}
