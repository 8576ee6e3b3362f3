//! The `fetch` stage: every artifact a plan needs reaches the content-addressed cache, verified.
//!
//! The lock's URLs are hints; the sha256 is the identity. An artifact is stored as
//! `CACHE/artifacts/sha256/<hex>` only after its bytes hashed to `<hex>`, written to a temporary
//! file in the same directory and renamed into place, so no partial or wrong file ever has a
//! final name and a cache hit can be trusted by its name. Downloads run in parallel (bounded),
//! retry transient failures with exponential backoff (honouring `Retry-After`), and never retry
//! a hash mismatch into acceptance.

mod download;
mod error;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rayon::prelude::*;

pub use error::FetchError;

/// One file to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRequest {
    /// The distribution, for messages.
    pub name: String,
    pub version: String,
    pub filename: String,
    pub url: Option<String>,
    /// Lowercase hex.
    pub sha256: String,
    pub size: Option<u64>,
}

/// `--mirror FROM=TO`: URLs that start with `from` are fetched from `to` instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub cache_dir: PathBuf,
    /// Downloads at once.
    pub concurrency: usize,
    /// Attempts after the first, for transient failures.
    pub retries: u32,
    /// The first retry's delay; each further retry doubles it (capped at 30 s).
    pub retry_delay: Duration,
    /// Fail, listing every missing artifact, instead of downloading.
    pub offline: bool,
    pub mirrors: Vec<Mirror>,
    /// Hosts that may be fetched over plain HTTP (loopback always may).
    pub insecure_hosts: Vec<String>,
    /// Per-request connect and read timeout.
    pub timeout: Duration,
}

impl FetchOptions {
    pub fn new(cache_dir: PathBuf) -> FetchOptions {
        FetchOptions {
            cache_dir,
            concurrency: 8,
            retries: 4,
            retry_delay: Duration::from_millis(500),
            offline: false,
            mirrors: Vec::new(),
            insecure_hosts: Vec::new(),
            timeout: Duration::from_secs(60),
        }
    }
}

/// A verified artifact in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedArtifact {
    pub request: ArtifactRequest,
    pub path: PathBuf,
    /// `false` for a cache hit.
    pub downloaded: bool,
}

/// The content-addressed store of artifacts.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    directory: PathBuf,
}

impl ArtifactCache {
    pub fn new(cache_dir: &Path) -> ArtifactCache {
        ArtifactCache {
            directory: cache_dir.join("artifacts").join("sha256"),
        }
    }

    /// Where the artifact with this sha256 is (or would be) stored.
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.directory.join(sha256)
    }

    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// Re-hash every stored artifact; remove and report those whose bytes do not match their
    /// name. Returns (checked, corrupt paths).
    pub fn verify(&self) -> Result<(usize, Vec<PathBuf>), FetchError> {
        let entries = match fs_err::read_dir(&self.directory) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok((0, Vec::new()));
            }
            Err(source) => {
                return Err(FetchError::Io {
                    action: "cannot list",
                    path: self.directory.clone(),
                    source,
                });
            }
        };
        let paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .is_some_and(|name| !name.to_string_lossy().starts_with('.'))
            })
            .collect();
        let corrupt: Vec<PathBuf> = paths
            .par_iter()
            .filter(|path| {
                let expected = path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default();
                download::sha256_of_file(path).map_or(true, |actual| actual != expected)
            })
            .cloned()
            .collect();
        for path in &corrupt {
            fs_err::remove_file(path).map_err(|source| FetchError::Io {
                action: "cannot remove",
                path: path.clone(),
                source,
            })?;
        }
        Ok((paths.len(), corrupt))
    }
}

/// Fetch every request into the cache (or find it there).
pub fn fetch_all(
    requests: &[ArtifactRequest],
    options: &FetchOptions,
) -> Result<Vec<FetchedArtifact>, FetchError> {
    let cache = ArtifactCache::new(&options.cache_dir);
    let missing: Vec<&ArtifactRequest> = requests
        .iter()
        .filter(|request| !cache.path(&request.sha256).is_file())
        .collect();

    // --offline: one error that lists everything missing, not just the first.
    if options.offline && !missing.is_empty() {
        return Err(FetchError::OfflineMissing {
            count: missing.len(),
            list: missing
                .iter()
                .map(|request| {
                    format!(
                        "  {} {} ({})",
                        request.name, request.version, request.filename
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
        });
    }

    if !missing.is_empty() {
        fs_err::create_dir_all(cache.directory()).map_err(|source| FetchError::Io {
            action: "cannot create",
            path: cache.directory().to_path_buf(),
            source,
        })?;
        let client = download::client(options)?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(options.concurrency.max(1))
            .build()
            .map_err(|error| FetchError::Setup(error.to_string()))?;
        pool.install(|| {
            missing
                .par_iter()
                .map(|request| download::download(&client, request, &cache, options))
                .collect::<Result<Vec<()>, FetchError>>()
        })?;
    }

    let missing_names: std::collections::HashSet<&str> = missing
        .iter()
        .map(|request| request.sha256.as_str())
        .collect();
    Ok(requests
        .iter()
        .map(|request| FetchedArtifact {
            request: request.clone(),
            path: cache.path(&request.sha256),
            downloaded: missing_names.contains(request.sha256.as_str()),
        })
        .collect())
}

/// The URL after `--mirror` rewriting (the first matching prefix wins).
pub fn mirrored(url: &str, mirrors: &[Mirror]) -> String {
    mirrors
        .iter()
        .find_map(|mirror| {
            url.strip_prefix(mirror.from.as_str())
                .map(|rest| format!("{}{rest}", mirror.to))
        })
        .unwrap_or_else(|| url.to_string())
}

/// A URL fit for messages and logs: any `user:password@` is replaced.
pub fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}{}", &rest[authority_end..]),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests;
