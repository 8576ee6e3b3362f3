//! The `fetch` stage: every artifact a plan needs reaches the content-addressed cache, verified.
//!
//! The lock's URLs are hints; the sha256 is the identity. An artifact is stored as
//! `CACHE/artifacts-v1/sha256/<hex>` only after its bytes hashed to `<hex>`, written to a temporary
//! file in the same directory and renamed into place, so no partial or wrong file ever has a
//! final name and a cache hit can be trusted by its name. Downloads run in parallel (bounded),
//! retry transient failures with exponential backoff (honouring `Retry-After`), and never retry
//! a hash mismatch into acceptance.

mod bundle;
mod download;
mod error;
mod git;
mod go_modules;
mod index;
mod npm_cache;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rayon::prelude::*;

use crate::contained::{Contained, Existing, FileMode};
use crate::identity::{FileName, GitCommit, Sha256, TreeId};
use crate::redact::redacted;
use sha2::Digest;

pub use bundle::{BUNDLE_MANIFEST, BundleGitSources, read_bundle, write_bundle};
pub use download::download_unpinned;
pub use error::FetchError;
pub use git::{
    GitCheckout, blob_id, fetch_commit, file_ids, import_archive, top_level_ids, tree_id,
    tree_id_without,
};
pub use go_modules::{
    BUNDLE_GO_PROXY, DEFAULT_GO_PROXY, GoModuleTree, Unavailable, fetch_go_modules, go_mod_hash,
    write_bundle_tree, zip_hash,
};
pub use index::{DEFAULT_INDEX, IndexClient, IndexFile};
pub use npm_cache::{BUNDLE_NPM, NpmCache, NpmTarballs, fetch_npm_tarballs, write_bundle_npm};

/// One file to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRequest {
    /// The distribution, for messages.
    pub name: String,
    pub version: String,
    pub filename: FileName,
    pub url: Option<String>,
    pub sha256: Sha256,
    pub size: Option<u64>,
}

/// The request for a jar pinned by sha256 (the web UI's generator): its file name is the
/// URL's last segment.
pub fn jar_request(jar: &crate::lock::LockedJar) -> Result<ArtifactRequest, FetchError> {
    let filename = jar
        .url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .parse()
        .map_err(|error| FetchError::Setup(format!("the generator's url {}: {error}", jar.url)))?;
    Ok(ArtifactRequest {
        name: jar.name.clone(),
        version: jar.version.clone(),
        filename,
        url: Some(jar.url.clone()),
        sha256: jar.sha256.clone(),
        size: None,
    })
}

/// `--mirror FROM=TO`: URLs that start with `from` are fetched from `to` instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub cache: crate::cache::Cache,
    /// How it talks HTTP: the run's one service, retries, trusted hosts, bounds, credentials.
    pub network: crate::http::HttpOptions,
    /// Fail, listing every missing artifact, instead of downloading.
    pub offline: bool,
    pub mirrors: Vec<Mirror>,
    /// Simple indexes (PEP 691 or PEP 503) asked for each file before the lock's URL.
    pub index_urls: Vec<String>,
    /// Directories searched by file name before the network (`--find-links`, and a bundle's
    /// `artifacts/`); their files are verified by hash like downloads.
    pub local_sources: Vec<PathBuf>,
    /// Archives of git sources, for machines that cannot clone.
    pub git_archives: Vec<GitArchive>,
    /// Tree ids pinned for commits (commit → tree).
    pub git_trees: std::collections::BTreeMap<GitCommit, TreeId>,
    /// The Go module proxies, asked in order (`--go-proxy`, else `GOPROXY`'s URLs, else
    /// proxy.golang.org): `https://`, `http://` (loopback or trusted hosts) or `file://`.
    pub go_proxies: Vec<String>,
    /// A bundle's module proxy tree, asked before the network (files still checked).
    pub go_bundle: Option<PathBuf>,
    /// A bundle's npm tarballs (`BUNDLE/npm/<sha512 hex>.tgz`), taken before the network.
    pub npm_bundle: Option<PathBuf>,
    /// The shared remote cache (`--remote-cache`), asked before downloading or building.
    pub remote_cache: Option<crate::registry::RemoteCacheLocation>,
}

impl FetchOptions {
    /// The run's HTTP service ([`crate::http::HttpService`]), built on first use.
    pub fn http(&self) -> Result<&crate::http::HttpService, FetchError> {
        self.network
            .service()
            .map_err(|error| FetchError::Setup(error.0))
    }

    /// The remote cache these options name, unless none is named, `--offline` is given, or it
    /// was found unusable earlier in this run.
    pub fn remote_cache(&self) -> Option<crate::registry::RemoteCache> {
        if self.offline {
            return None;
        }
        crate::registry::RemoteCache::open(self.remote_cache.as_ref()?, &self.network)
    }

    pub fn new(cache: crate::cache::Cache) -> FetchOptions {
        FetchOptions {
            cache,
            network: crate::http::HttpOptions::default(),
            offline: false,
            mirrors: Vec::new(),
            local_sources: Vec::new(),
            index_urls: Vec::new(),
            git_archives: Vec::new(),
            git_trees: std::collections::BTreeMap::new(),
            go_proxies: vec![go_modules::DEFAULT_GO_PROXY.to_string()],
            go_bundle: None,
            npm_bundle: None,
            remote_cache: None,
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
    /// Taken from the remote cache (`downloaded` is true too: it came over the network).
    pub from_remote_cache: bool,
}

/// The content-addressed store of artifacts.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    directory: PathBuf,
}

impl ArtifactCache {
    pub fn new(cache: &crate::cache::Cache) -> ArtifactCache {
        ArtifactCache {
            directory: cache.bucket(crate::cache::Bucket::Artifacts).join("sha256"),
        }
    }

    /// Where the artifact with this sha256 is (or would be) stored.
    pub fn path(&self, sha256: &Sha256) -> PathBuf {
        self.directory.join(sha256)
    }

    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// Stream `reader` into a temporary file beside the final name while hashing it, and give
    /// it its final name only if the bytes hash to `sha256`. Dropping the temporary file on any
    /// failure deletes it.
    fn store_verified(&self, reader: &mut impl Read, sha256: &Sha256) -> Result<(), StoreFailure> {
        let io = |action: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| {
                StoreFailure::Write(FetchError::Io(crate::path_io::PathIoError::new(
                    action, path, source,
                )))
            }
        };
        // Written under a temporary name through the contained edge, and renamed to the hash
        // only once the bytes are known to hash to it.
        let store = Contained::create(&self.directory)
            .map_err(|error| StoreFailure::Write(error.into()))?;
        let temporary = Temporary {
            store: &store,
            name: Contained::temporary_name(crate::cache::INCOMING_PREFIX),
        };
        let mut file = store
            .create_file(&temporary.name, FileMode::Regular, Existing::Refuse)
            .map_err(|error| StoreFailure::Write(error.into()))?;
        let mut hasher = sha2::Sha256::new();
        let mut buffer = vec![0u8; 128 * 1024];
        loop {
            let read = reader.read(&mut buffer).map_err(StoreFailure::Read)?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            file.write_all(&buffer[..read])
                .map_err(io("cannot write", &store.path(&temporary.name)))?;
        }
        drop(file);
        let actual = crate::digest::hex(&hasher.finalize());
        if actual != *sha256 {
            return Err(StoreFailure::Mismatch(actual));
        }
        store
            .rename_within(&temporary.name, Path::new(sha256.as_str()))
            .map_err(|error| StoreFailure::Write(error.into()))?;
        std::mem::forget(temporary);
        Ok(())
    }

    /// Remove `.incoming-*` files that an interrupted download left: those untouched for
    /// longer than a live download can go without writing (it is abandoned after the stall
    /// timeout), so a concurrent process's download is never taken from under it.
    pub fn remove_abandoned(&self, limits: &crate::limits::Limits) -> usize {
        let Ok(entries) = fs_err::read_dir(&self.directory) else {
            return 0;
        };
        let abandoned_after = limits.stall_timeout * 2 + Duration::from_secs(60);
        let mut removed = 0;
        for entry in entries.filter_map(Result::ok) {
            let is_incoming = entry
                .file_name()
                .to_string_lossy()
                .starts_with(crate::cache::INCOMING_PREFIX);
            let idle = entry
                .metadata()
                .and_then(|metadata| metadata.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok());
            if is_incoming
                && idle.is_some_and(|idle| idle > abandoned_after)
                && fs_err::remove_file(entry.path()).is_ok()
            {
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!("removed {removed} files left by interrupted downloads");
        }
        removed
    }

    /// Re-hash one stored artifact just before it is read; a file whose bytes changed since it
    /// was stored (bit rot, a hand edit) is removed and reported.
    pub fn check(&self, request: &ArtifactRequest) -> Result<PathBuf, FetchError> {
        let path = self.path(&request.sha256);
        let actual = crate::digest::sha256_hex_of_regular_file(&path)
            .map_err(FetchError::io("cannot read", &path))?;
        if actual == request.sha256 {
            return Ok(path);
        }
        fs_err::remove_file(&path).map_err(FetchError::io("cannot remove", &path))?;
        Err(FetchError::ChangedInCache {
            name: request.name.clone(),
            version: request.version.clone(),
            path,
            actual,
        })
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
                return Err(FetchError::Io(crate::path_io::PathIoError::new(
                    "cannot list",
                    self.directory.clone(),
                    source,
                )));
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
                crate::digest::sha256_hex_of_regular_file(path)
                    .map_or(true, |actual| actual != expected)
            })
            .cloned()
            .collect();
        for path in &corrupt {
            fs_err::remove_file(path).map_err(FetchError::io("cannot remove", path))?;
        }
        Ok((paths.len(), corrupt))
    }
}

/// A temporary entry of the store, removed unless it was renamed into place.
struct Temporary<'a> {
    store: &'a Contained,
    name: PathBuf,
}

impl Drop for Temporary<'_> {
    fn drop(&mut self) {
        let _ = self.store.remove_file(&self.name);
    }
}

/// Why storing an artifact failed.
enum StoreFailure {
    /// Reading the source failed (for a download: the connection broke).
    Read(std::io::Error),
    Write(FetchError),
    /// The bytes hashed to this instead.
    Mismatch(String),
}

/// Bring artifacts found by name in local directories into the cache; returns what is still
/// missing. A local file with the right name but the wrong bytes is an error, not a miss.
fn import_local<'a>(
    missing: Vec<&'a ArtifactRequest>,
    cache: &ArtifactCache,
    sources: &[PathBuf],
) -> Result<Vec<&'a ArtifactRequest>, FetchError> {
    let mut still_missing = Vec::new();
    for request in missing {
        // A `file://` URL (a local override) names the file itself.
        let named = request
            .url
            .as_deref()
            .and_then(|url| url.strip_prefix("file://"))
            .map(PathBuf::from);
        let Some(found) = named
            .into_iter()
            .chain(
                sources
                    .iter()
                    .map(|directory| directory.join(&request.filename)),
            )
            .find(|path| path.is_file())
        else {
            still_missing.push(request);
            continue;
        };
        let mut file = fs_err::File::open(&found).map_err(FetchError::io("cannot open", &found))?;
        match cache.store_verified(&mut file, &request.sha256) {
            Ok(()) => tracing::debug!(file = %found.display(), "taken from a local directory"),
            Err(StoreFailure::Read(source)) => {
                return Err(FetchError::Io(crate::path_io::PathIoError::new(
                    "cannot read",
                    found,
                    source,
                )));
            }
            Err(StoreFailure::Write(error)) => return Err(error),
            Err(StoreFailure::Mismatch(actual)) => {
                return Err(FetchError::HashMismatch {
                    name: request.name.clone(),
                    version: request.version.clone(),
                    url: found.display().to_string(),
                    expected: request.sha256.to_string(),
                    actual,
                });
            }
        }
    }
    Ok(still_missing)
}

/// What a fetch reports while it downloads; the CLI draws it, tests and libraries ignore it.
pub trait DownloadProgress: Sync {
    /// Downloads of `files` files, `bytes` in all (as far as the lock gives sizes), start.
    fn start(&self, _files: usize, _bytes: u64) {}
    /// More bytes arrived; negative when a failed attempt's bytes are thrown away.
    fn bytes(&self, _count: i64) {}
    /// One more file is in the cache.
    fn file_done(&self, _filename: &str) {}
    /// All downloads ended.
    fn finish(&self) {}
}

/// Reports nothing.
pub struct NoDownloadProgress;

impl DownloadProgress for NoDownloadProgress {}

/// Obtain a file under a temporary name beside `destination` (parents created), `check` it,
/// then rename it into place: a cache never holds a file that was not checked, and a failure
/// leaves nothing behind. Used by the caches checked by other hashes than sha256 (Go modules,
/// npm tarballs).
pub(crate) fn place_checked(
    destination: &Path,
    obtain: impl FnOnce(&Path) -> Result<(), FetchError>,
    check: impl FnOnce(&Path) -> Result<(), FetchError>,
) -> Result<(), FetchError> {
    let parent = destination.parent().unwrap_or(Path::new("."));
    let temporary = crate::cache::incoming_file_in(parent)
        .map_err(FetchError::io("cannot create a file in", parent))?
        .into_temp_path();
    obtain(&temporary)?;
    check(&temporary)?;
    crate::cache::publish_file(temporary, destination)
        .map_err(FetchError::io("cannot write", destination))
}

/// Fetch every request into the cache (or find it there).
pub fn fetch_all(
    requests: &[ArtifactRequest],
    options: &FetchOptions,
    progress: &dyn DownloadProgress,
) -> Result<Vec<FetchedArtifact>, FetchError> {
    let cache = ArtifactCache::new(&options.cache);
    cache.remove_abandoned(&options.network.limits);
    let missing: Vec<&ArtifactRequest> = requests
        .iter()
        .filter(|request| !cache.path(&request.sha256).is_file())
        .collect();
    let missing = import_local(missing, &cache, &options.local_sources)?;

    // --offline: one error that lists everything missing, not just the first.
    if options.offline && !missing.is_empty() {
        let lines = missing.iter().map(|request| {
            format!(
                "{} {} ({})",
                request.name, request.version, request.filename
            )
        });
        return Err(offline_missing(lines));
    }

    let mut pulled_from_remote = std::collections::HashSet::new();
    if !missing.is_empty() {
        fs_err::create_dir_all(cache.directory())
            .map_err(FetchError::io("cannot create", cache.directory()))?;
        let http = options.http()?;
        let client = http.client();
        let remote = options.remote_cache();
        progress.start(
            missing.len(),
            missing.iter().filter_map(|request| request.size).sum(),
        );
        let downloaded = http.run_downloads(|| {
            missing
                .par_iter()
                .map(|request| {
                    let pulled = remote
                        .as_ref()
                        .is_some_and(|remote| from_remote_cache(remote, request, &cache, options));
                    if !pulled {
                        download::download(client, request, &cache, options, progress)?;
                        if let Some(remote) = &remote {
                            remote.push_artifact(
                                &request.sha256,
                                &cache.path(&request.sha256),
                                &request.filename,
                            );
                        }
                    }
                    progress.file_done(&request.filename);
                    Ok(pulled.then(|| request.sha256.as_str()))
                })
                .collect::<Result<Vec<Option<&str>>, FetchError>>()
        });
        progress.finish();
        pulled_from_remote.extend(downloaded?.into_iter().flatten());
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
            from_remote_cache: pulled_from_remote.contains(request.sha256.as_str()),
        })
        .collect())
}

/// Take `request`'s artifact from the remote cache, checked by its sha256 exactly as a
/// download is; `false` when the remote cache does not have it or gave other bytes (then it is
/// downloaded).
fn from_remote_cache(
    remote: &crate::registry::RemoteCache,
    request: &ArtifactRequest,
    cache: &ArtifactCache,
    options: &FetchOptions,
) -> bool {
    // No more than the lock's size (or the download cap) is read, within the deadline and the
    // stall rule: a lying registry's extra bytes fail the read instead of filling the disk.
    let limit = request
        .size
        .unwrap_or(options.network.limits.download_bytes);
    let Some(mut stream) = remote.artifact(&request.sha256, limit) else {
        return false;
    };
    match cache.store_verified(&mut stream, &request.sha256) {
        Ok(()) => true,
        Err(StoreFailure::Mismatch(actual)) => {
            remote.refused(
                &format!("{} ({})", request.filename, request.name),
                &format!("sha256:{}", request.sha256.as_str()),
                &format!("sha256:{actual}"),
            );
            false
        }
        Err(StoreFailure::Read(error)) => {
            tracing::warn!(
                "{} from the remote cache {}: {error}; downloading it instead",
                request.filename,
                remote.location()
            );
            false
        }
        Err(StoreFailure::Write(_)) => false,
    }
}

/// A git source to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRequest {
    pub name: String,
    pub version: String,
    pub repository: String,
    pub commit: GitCommit,
}

/// `--git-archive NAME=PATH`, or a bundle's archive: a commit's files without a clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitArchive {
    /// The distribution's name or the commit id it holds.
    pub key: String,
    /// A `.tar`, `.tar.gz` or directory.
    pub path: PathBuf,
}

/// Fetch every git source into the cache (or find it there), from an archive when one is given
/// and otherwise with the `git` CLI; offline, list every one that is missing.
///
/// Whatever the route, the files must hash to the commit's tree id: the one pinned in
/// `options.git_trees` (from akpkg's lock or a bundle), else, for a clone, the commit's own.
pub fn fetch_git_sources(
    requests: &[GitRequest],
    options: &FetchOptions,
) -> Result<Vec<GitCheckout>, FetchError> {
    let git_directory = options.cache.bucket(crate::cache::Bucket::Git);
    let cached = |request: &GitRequest| {
        git_directory.join(&request.commit).is_dir()
            && git_directory
                .join(format!("{}.tree", request.commit))
                .is_file()
    };
    let archive_for = |request: &GitRequest| {
        options
            .git_archives
            .iter()
            .find(|archive| {
                archive.key == *request.commit
                    || pep508_rs::PackageName::new(archive.key.clone())
                        .is_ok_and(|name| name.as_ref() == request.name)
            })
            .map(|archive| archive.path.clone())
    };
    if options.offline {
        let missing: Vec<&GitRequest> = requests
            .iter()
            .filter(|request| !cached(request) && archive_for(request).is_none())
            .collect();
        if !missing.is_empty() {
            let lines = missing.iter().map(|request| {
                format!(
                    "{} {} (git {} at {}; give it with --git-archive {}=PATH)",
                    request.name, request.version, request.repository, request.commit, request.name
                )
            });
            return Err(offline_missing(lines));
        }
    }
    requests
        .iter()
        .map(|request| {
            let pinned = options.git_trees.get(&request.commit);
            let checkout = if cached(request) {
                fetch_commit(&request.repository, &request.commit, &options.cache)?
            } else if let Some(archive) = archive_for(request) {
                git::import_archive(
                    &archive,
                    &request.commit,
                    pinned,
                    &options.cache,
                    &options.network.limits,
                )?
            } else {
                let url = mirrored(&request.repository, &options.mirrors);
                fetch_commit(&url, &request.commit, &options.cache)?
            };
            match pinned {
                Some(tree) if *tree != checkout.tree_id => Err(FetchError::Git(format!(
                    "`{}` {}: {} at {} has tree {}, but the lock pins tree {tree}",
                    request.name,
                    request.version,
                    redacted(&request.repository),
                    request.commit,
                    checkout.tree_id
                ))),
                _ => Ok(checkout),
            }
        })
        .collect()
}

/// One error listing every missing item (`--offline`), one per line.
fn offline_missing(lines: impl ExactSizeIterator<Item = String>) -> FetchError {
    FetchError::OfflineMissing {
        count: lines.len(),
        list: lines
            .map(|line| format!("  {line}"))
            .collect::<Vec<_>>()
            .join("\n"),
    }
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

#[cfg(test)]
mod tests;
