//! The shared remote cache: akpkg's cache entries as OCI artifacts in one repository of a
//! registry (`--remote-cache oci://HOST[:PORT]/REPOSITORY`), so that many builders share what
//! one downloaded or built.
//!
//! Each entry is an image manifest with an `artifactType`, the empty config, its files as
//! layers (`org.opencontainers.image.title` names each), and the key as the annotation
//! `dev.akpkg.key`; it is tagged with its key, so `crane ls` / `oras repo tags` list them:
//! - a verified artifact (wheel, sdist): tag `artifact-<sha256>`, one layer, the file itself;
//!   it is pulled by its blob digest, which is the sha256 the lock pins;
//! - a built wheel: tag `built-wheel-<build key>` (the key already covers the source, the
//!   pins, the backend, the settings and the interpreter), two layers: akpkg's build record and
//!   the wheel.
//!
//! Everything pulled is checked before it is used, as a download is: an artifact by the sha256
//! the lock pins; a built wheel by its blob digests, the key in the manifest, the wheel's sha256
//! in the record, and every hash of the wheel's own RECORD. A registry that lies is refused
//! with the key and both digests, and the caller downloads or builds instead.
//!
//! A remote cache that cannot be reached, refuses the credentials or answers with errors never
//! fails a build: the first such failure is warned about once for the whole run, and from then
//! on the run goes on with the local cache and the network. Its requests use a short stall
//! timeout and no retry, so a slow registry costs seconds, not the download deadline.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::{Content, Registry, RegistryError, Target};
use crate::fetch::FetchOptions;
use crate::identity::Sha256;

/// `artifactType` of a verified artifact.
pub const ARTIFACT_TYPE: &str = "application/vnd.akpkg.artifact.v1";
/// `artifactType` of a built wheel.
pub const BUILT_WHEEL_TYPE: &str = "application/vnd.akpkg.built-wheel.v1";
/// `artifactType` of a Go server build.
pub const GO_SERVER_TYPE: &str = "application/vnd.akpkg.go-server.v1";
/// `artifactType` of a web UI build.
pub const WEB_TYPE: &str = "application/vnd.akpkg.web.v1";
/// A build's record (JSON).
pub const RECORD_MEDIA_TYPE: &str = "application/vnd.akpkg.build-record.v1+json";
/// A file as it is.
pub const FILE_MEDIA_TYPE: &str = "application/octet-stream";
/// A directory, as a tar.
pub const TAR_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
const KEY_ANNOTATION: &str = "dev.akpkg.key";
const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";

/// `--remote-cache` as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCacheLocation {
    /// `host[:port]`.
    pub registry: String,
    pub repository: String,
    /// Pull only (`--remote-cache-read-only`).
    pub read_only: bool,
}

impl RemoteCacheLocation {
    /// `oci://HOST[:PORT]/REPOSITORY`.
    pub fn parse(text: &str, read_only: bool) -> Result<RemoteCacheLocation, RegistryError> {
        let invalid = |reason: &str| RegistryError::Reference {
            reference: text.to_string(),
            reason: reason.to_string(),
        };
        let rest = text
            .strip_prefix("oci://")
            .ok_or_else(|| invalid("a remote cache is oci://HOST[:PORT]/REPOSITORY"))?;
        if rest.contains(['@', '?', '#'])
            || rest
                .rsplit('/')
                .next()
                .is_some_and(|last| last.contains(':'))
        {
            return Err(invalid(
                "a remote cache names a repository, without a tag or digest: oci://HOST[:PORT]/REPOSITORY",
            ));
        }
        let reference: super::Reference = format!("{rest}:cache").parse()?;
        Ok(RemoteCacheLocation {
            registry: reference.registry,
            repository: reference.repository,
            read_only,
        })
    }
}

impl std::fmt::Display for RemoteCacheLocation {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "oci://{}/{}", self.registry, self.repository)
    }
}

/// Remote caches found unusable in this run: warned about once, then left alone.
fn unusable() -> &'static Mutex<HashSet<String>> {
    static UNUSABLE: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    UNUSABLE.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A remote cache for one stage of a run.
pub struct RemoteCache {
    location: RemoteCacheLocation,
    registry: Registry,
}

impl RemoteCache {
    /// The remote cache `options` names, unless none is named, `--offline` is given, or it was
    /// found unusable earlier in this run.
    pub fn open(options: &FetchOptions) -> Option<RemoteCache> {
        let location = options.remote_cache.clone()?;
        if options.offline || is_unusable(&location) {
            return None;
        }
        // One retry, for a pooled connection the registry closed as it was reused (seen under
        // load); no more: the remote cache only saves time, so a failure is not worth waiting on.
        let mut bounded = options.clone();
        bounded.retries = 1;
        bounded.limits.stall_timeout = options.limits.stall_timeout.min(Duration::from_secs(5));
        bounded.limits.download_deadline = options
            .limits
            .download_deadline
            .min(Duration::from_secs(600));
        match Registry::connect(&location.registry, &bounded) {
            Ok(registry) => Some(RemoteCache { location, registry }),
            Err(error) => {
                give_up(&location, &error);
                None
            }
        }
    }

    pub fn location(&self) -> &RemoteCacheLocation {
        &self.location
    }

    /// Run a request. A registry that cannot be reached, or refuses the credentials, is
    /// unusable for the rest of the run; one request it answers with an error status costs
    /// only that entry (a warning), so the other entries are still pushed and pulled.
    fn attempt<T>(&self, request: impl FnOnce() -> Result<T, RegistryError>) -> Option<T> {
        if is_unusable(&self.location) {
            return None;
        }
        match request() {
            Ok(value) => Some(value),
            Err(error @ (RegistryError::Status { .. } | RegistryError::DigestMismatch { .. })) => {
                tracing::warn!(
                    "the remote cache {} failed one request ({error}); going on without that entry",
                    self.location
                );
                None
            }
            Err(error) => {
                give_up(&self.location, &error);
                None
            }
        }
    }

    /// The artifact `sha256` as a stream, if the remote cache has it. The caller checks the
    /// bytes against `sha256` (and calls [`RemoteCache::refused`] when they differ).
    pub fn artifact(&self, sha256: &Sha256) -> Option<impl Read + use<>> {
        let repository = &self.location.repository;
        self.attempt(|| self.registry.get_blob(repository, sha256))
            .flatten()
    }

    /// Say that what the remote cache gave for `key` was refused.
    pub fn refused(&self, key: &str, expected: &str, actual: &str) {
        tracing::warn!(
            "the remote cache {} gave other bytes for {key}: expected {expected}, got {actual}; \
             refused, so it is downloaded or built here instead",
            self.location
        );
    }

    /// Push a verified artifact the remote cache lacks.
    pub fn push_artifact(&self, sha256: &Sha256, path: &Path, filename: &str) {
        if self.location.read_only {
            return;
        }
        let key = format!("artifact-{}", sha256.as_str());
        let size = match std::fs::metadata(path) {
            Ok(metadata) => metadata.len(),
            Err(_) => return,
        };
        self.attempt(|| {
            self.push_entry(
                &key,
                ARTIFACT_TYPE,
                &[Layer {
                    media_type: FILE_MEDIA_TYPE,
                    title: filename,
                    digest: sha256.clone(),
                    size,
                    content: Content::File(path),
                }],
            )
        });
    }

    /// The entry's layers first (skipped when there), then its manifest under its tag.
    fn push_entry(
        &self,
        key: &str,
        artifact_type: &str,
        layers: &[Layer<'_>],
    ) -> Result<(), RegistryError> {
        let repository = &self.location.repository;
        let empty = b"{}";
        let empty_digest = Sha256::of_bytes(empty);
        if !self.registry.has_blob(repository, &empty_digest)? {
            self.registry
                .upload_blob(repository, &empty_digest, Content::Bytes(empty), None)?;
        }
        for layer in layers {
            if !self.registry.has_blob(repository, &layer.digest)? {
                self.registry
                    .upload_blob(repository, &layer.digest, layer.content, None)?;
            }
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": artifact_type,
            "config": {
                "mediaType": EMPTY_MEDIA_TYPE,
                "digest": format!("sha256:{}", empty_digest.as_str()),
                "size": empty.len(),
            },
            "layers": layers.iter().map(|layer| serde_json::json!({
                "mediaType": layer.media_type,
                "digest": format!("sha256:{}", layer.digest.as_str()),
                "size": layer.size,
                "annotations": { TITLE_ANNOTATION: layer.title },
            })).collect::<Vec<_>>(),
            "annotations": { KEY_ANNOTATION: key },
        });
        self.registry.put_manifest(
            repository,
            &Target::Tag(key.to_string()),
            "application/vnd.oci.image.manifest.v1+json",
            manifest.to_string().as_bytes(),
        )?;
        tracing::debug!(key, "pushed to the remote cache");
        Ok(())
    }

    /// Push the files of a built output under `tag` (each file's name is its title). Nothing is
    /// pushed with `--remote-cache-read-only`.
    pub fn push_files(&self, tag: &str, artifact_type: &str, files: &[(&Path, &'static str)]) {
        if self.location.read_only {
            return;
        }
        let mut described = Vec::new();
        for (path, media_type) in files {
            let (Ok(sha256), Ok(metadata), Some(name)) = (
                Sha256::of_file(path),
                std::fs::metadata(path),
                path.file_name(),
            ) else {
                return;
            };
            described.push((
                *path,
                *media_type,
                sha256,
                metadata.len(),
                name.to_string_lossy(),
            ));
        }
        let layers: Vec<Layer<'_>> = described
            .iter()
            .map(|(path, media_type, sha256, size, title)| Layer {
                media_type,
                title,
                digest: sha256.clone(),
                size: *size,
                content: Content::File(path),
            })
            .collect();
        self.attempt(|| self.push_entry(tag, artifact_type, &layers));
    }

    /// Pull the entry tagged `tag` into `directory` (empty, made by the caller): each layer as
    /// a file named by its title, checked against its blob digest. Returns each file's media
    /// type and name; `None` when the remote cache does not have it, or gave an entry that is
    /// not of `artifact_type`, not for `tag`, or not the bytes its digests say.
    pub fn pull_files(
        &self,
        tag: &str,
        artifact_type: &str,
        directory: &Path,
    ) -> Option<Vec<(String, String)>> {
        let repository = &self.location.repository;
        let manifest = self
            .attempt(|| {
                self.registry
                    .get_manifest(repository, &Target::Tag(tag.to_string()))
            })
            .flatten()?;
        let manifest: serde_json::Value = serde_json::from_slice(&manifest).ok()?;
        let annotated_key = manifest
            .pointer(&format!("/annotations/{KEY_ANNOTATION}"))
            .and_then(|value| value.as_str());
        if annotated_key != Some(tag) || manifest["artifactType"] != artifact_type {
            self.refused(
                tag,
                &format!("{artifact_type} for {tag}"),
                &format!(
                    "{} for {}",
                    manifest["artifactType"].as_str().unwrap_or("no type"),
                    annotated_key.unwrap_or("no key")
                ),
            );
            return None;
        }
        let mut files = Vec::new();
        for layer in manifest["layers"].as_array()? {
            let digest: Sha256 = layer["digest"]
                .as_str()?
                .strip_prefix("sha256:")?
                .parse()
                .ok()?;
            let title = layer["annotations"][TITLE_ANNOTATION].as_str()?;
            let name: crate::identity::FileName = title.parse().ok()?;
            let size = layer["size"].as_u64()?;
            let stream = self
                .attempt(|| self.registry.get_blob(repository, &digest))
                .flatten()?;
            // No more than the manifest's size is read: extra bytes fail the digest instead of
            // filling the disk.
            let actual = write_hashed(
                stream.take(size.saturating_add(1)),
                &directory.join(name.as_str()),
            )
            .ok()?;
            if actual != digest {
                self.refused(
                    tag,
                    &format!("sha256:{}", digest.as_str()),
                    &format!("sha256:{}", actual.as_str()),
                );
                return None;
            }
            files.push((layer["mediaType"].as_str()?.to_string(), title.to_string()));
        }
        Some(files)
    }

    /// [`RemoteCache::pull_files`] into a new temporary directory inside `bucket`, so that
    /// the caller can check the files and then [`publish`] the directory under its key.
    pub fn pull_into(
        &self,
        bucket: &Path,
        tag: &str,
        artifact_type: &str,
    ) -> Option<(tempfile::TempDir, Vec<(String, String)>)> {
        let incoming = crate::cache::incoming_dir_in(bucket).ok()?;
        let files = self.pull_files(tag, artifact_type, incoming.path())?;
        Some((incoming, files))
    }

    /// Push a built wheel (its build record and the wheel) under its build key.
    pub fn push_built_wheel(&self, key: &str, record: &Path, wheel: &Path) {
        self.push_files(
            &built_wheel_tag(key),
            BUILT_WHEEL_TYPE,
            &[(record, RECORD_MEDIA_TYPE), (wheel, FILE_MEDIA_TYPE)],
        );
    }
}

/// Rename a pulled and checked directory to `finished`, its key in the bucket; when another
/// process put the same entry there first, ours is removed (the two are the same build).
/// Best effort: an entry that cannot be published is only fetched again next time.
pub fn publish(incoming: tempfile::TempDir, finished: &Path) {
    if let Err(error) = crate::cache::publish_dir(incoming, finished, Path::is_dir) {
        tracing::debug!("cannot keep {}: {error}", finished.display());
    }
}

/// The tag of a built wheel's entry.
pub fn built_wheel_tag(key: &str) -> String {
    format!("built-wheel-{key}")
}

struct Layer<'l> {
    media_type: &'l str,
    title: &'l str,
    digest: Sha256,
    size: u64,
    content: Content<'l>,
}

/// Copy `stream` into a new file at `target`, returning the sha256 of what was written.
fn write_hashed(mut stream: impl Read, target: &Path) -> std::io::Result<Sha256> {
    use sha2::Digest;
    let mut file = std::fs::File::create_new(target)?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0; 1 << 16];
    loop {
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        std::io::Write::write_all(&mut file, &buffer[..read])?;
    }
    file.sync_all()?;
    Ok(Sha256::from_digest(&hasher.finalize().into()))
}

fn is_unusable(location: &RemoteCacheLocation) -> bool {
    unusable()
        .lock()
        .is_ok_and(|set| set.contains(&location.to_string()))
}

/// Mark the remote cache unusable for the rest of the run, warning the first time.
fn give_up(location: &RemoteCacheLocation, error: &RegistryError) {
    let newly = unusable()
        .lock()
        .is_ok_and(|mut set| set.insert(location.to_string()));
    if newly {
        tracing::warn!(
            "the remote cache {location} is not usable ({error}); going on without it, with the \
             local cache and the network"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_cache_is_an_oci_repository_without_a_tag() {
        let location =
            RemoteCacheLocation::parse("oci://127.0.0.1:5000/akpkg/cache", false).unwrap();
        assert_eq!(location.registry, "127.0.0.1:5000");
        assert_eq!(location.repository, "akpkg/cache");
        assert_eq!(location.to_string(), "oci://127.0.0.1:5000/akpkg/cache");
        for text in [
            "127.0.0.1:5000/akpkg/cache",
            "oci://127.0.0.1:5000/akpkg/cache:tag",
            "oci://127.0.0.1:5000/akpkg@sha256:00",
            "oci://cache",
        ] {
            assert!(RemoteCacheLocation::parse(text, false).is_err(), "{text}");
        }
    }
}
