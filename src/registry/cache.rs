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
//! the lock pins. A build output (built wheel, Go server, web UI) has no such pin, so it is
//! taken only when a key the user trusts (`--remote-cache-trusted-key`) signed its manifest's
//! type, key and layer digests ([`super::signing`]), and then its blobs are checked against
//! those digests; a builder signs what it pushes with `--remote-cache-signing-key`, and pushes
//! no build output without one. Anything refused is warned about with the key and the reason,
//! and the caller downloads or builds instead.
//!
//! A remote cache that cannot be reached or refuses the credentials never fails a build: the
//! first such failure is warned about once for the whole run, and from then on the run goes on
//! with the local cache and the network; one request answered with an error status costs only
//! that entry. Its requests use a short stall timeout and no retry, so a slow registry costs
//! seconds, not the download deadline.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::signing::{self, PublicKey, SecretKey, SignedLayer};
use super::{Content, Registry, RegistryError, Target};
use crate::http::HttpOptions;
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
#[derive(Debug, Clone)]
pub struct RemoteCacheLocation {
    /// `host[:port]`.
    pub registry: String,
    pub repository: String,
    /// Pull only (`--remote-cache-read-only`).
    pub read_only: bool,
    pub trust: RemoteCacheTrust,
}

/// Which build outputs are pushed signed and which are taken.
#[derive(Debug, Clone, Default)]
pub struct RemoteCacheTrust {
    /// Signs the build outputs this builder pushes (`--remote-cache-signing-key`).
    pub signing_key: Option<std::sync::Arc<SecretKey>>,
    /// Build outputs are taken only when one of these signed them
    /// (`--remote-cache-trusted-key`, `--remote-cache-trusted-keys`).
    pub trusted_keys: Vec<PublicKey>,
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
            trust: RemoteCacheTrust::default(),
        })
    }
}

impl std::fmt::Display for RemoteCacheLocation {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "oci://{}/{}", self.registry, self.repository)
    }
}

/// A build output this run took from a remote cache, and who signed it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TakenEntry {
    /// The entry's tag (its key).
    pub entry: String,
    /// `NAME:BASE64` of the trusted key whose signature it carried.
    pub signer: String,
}

fn taken() -> &'static Mutex<Vec<TakenEntry>> {
    static TAKEN: OnceLock<Mutex<Vec<TakenEntry>>> = OnceLock::new();
    TAKEN.get_or_init(|| Mutex::new(Vec::new()))
}

/// The build outputs taken from remote caches so far in this run, by entry.
pub fn taken_from_remote_cache() -> Vec<TakenEntry> {
    let mut entries = taken().lock().map(|list| list.clone()).unwrap_or_default();
    entries.sort_by(|a, b| a.entry.cmp(&b.entry));
    entries
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
    /// Whether the empty config blob every entry names is in the repository. Held while it is
    /// checked and uploaded: parallel pushes of that one blob made docker-registry answer 500.
    empty_config: Mutex<bool>,
}

impl RemoteCache {
    /// The bounds this cache's reads and unpacking keep.
    pub fn limits(&self) -> &crate::limits::Limits {
        self.registry.limits()
    }

    /// A client for the remote cache at `location`, unless it was found unusable earlier in
    /// this run.
    pub fn open(location: &RemoteCacheLocation, network: &HttpOptions) -> Option<RemoteCache> {
        if is_unusable(location) {
            return None;
        }
        let location = location.clone();
        // No retries: the remote cache only saves time, so a failure is not worth waiting on.
        // The stall timeout is short, but not so short that a registry writing to a busy disk
        // (a loaded CI machine) is given up on in the middle of a push.
        let mut bounded = network.clone();
        bounded.retries = 0;
        bounded.limits.stall_timeout = network.limits.stall_timeout.min(Duration::from_secs(20));
        bounded.limits.download_deadline = network
            .limits
            .download_deadline
            .min(Duration::from_secs(600));
        match Registry::connect(&location.registry, &bounded) {
            Ok(registry) => Some(RemoteCache {
                location,
                registry,
                empty_config: Mutex::new(false),
            }),
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
            // The registry answered (an error status, or a 5xx on the one attempt): it is there,
            // and only this entry is lost.
            Err(error) if costs_only_its_entry(&error) => {
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
    pub fn artifact(&self, sha256: &Sha256, max_bytes: u64) -> Option<impl Read + use<>> {
        let repository = &self.location.repository;
        self.attempt(|| self.registry.get_blob(repository, sha256, max_bytes))
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
                None,
            )
        });
    }

    /// The entry's layers first (skipped when there), then its manifest under its tag.
    fn push_entry(
        &self,
        key: &str,
        artifact_type: &str,
        layers: &[Layer<'_>],
        signature: Option<String>,
    ) -> Result<(), RegistryError> {
        let repository = &self.location.repository;
        let empty = b"{}";
        let empty_digest = Sha256::of_bytes(empty);
        {
            let mut present = self
                .empty_config
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !*present && !self.registry.has_blob(repository, &empty_digest)? {
                self.registry.upload_blob(
                    repository,
                    &empty_digest,
                    Content::Bytes(empty),
                    None,
                )?;
            }
            *present = true;
        }
        for layer in layers {
            if !self.registry.has_blob(repository, &layer.digest)? {
                self.registry
                    .upload_blob(repository, &layer.digest, layer.content, None)?;
            }
        }
        let mut annotations = serde_json::json!({ KEY_ANNOTATION: key });
        if let Some(signature) = signature {
            annotations[signing::SIGNATURE_ANNOTATION] = signature.into();
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
            "annotations": annotations,
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

    /// Push the files of a build output under `tag` (each file's name is its title), signed
    /// with the builder's key. Nothing is pushed with `--remote-cache-read-only` or without
    /// `--remote-cache-signing-key` (no consumer could trust it).
    pub fn push_files(&self, tag: &str, artifact_type: &str, files: &[(&Path, &'static str)]) {
        if self.location.read_only {
            return;
        }
        let Some(signing_key) = &self.location.trust.signing_key else {
            warn_once(
                &self.location,
                "unsigned",
                "build outputs are not pushed to it without --remote-cache-signing-key \
                 (artifacts are)",
            );
            return;
        };
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
        let signed: Vec<SignedLayer<'_>> = layers
            .iter()
            .map(|layer| SignedLayer {
                title: layer.title,
                media_type: layer.media_type,
                size: layer.size,
                digest: &layer.digest,
            })
            .collect();
        let signature = signing_key.sign(&signing::statement(artifact_type, tag, &signed));
        self.attempt(|| self.push_entry(tag, artifact_type, &layers, Some(signature)));
    }

    /// Pull the build output tagged `tag` into `directory` (empty, made by the caller): each
    /// layer as a file named by its title, checked against its blob digest. Returns each file's
    /// media type and name; `None` when the remote cache does not have it, or gave an entry that
    /// is not of `artifact_type`, not for `tag`, not signed by a trusted key, or not the bytes
    /// its digests say.
    pub fn pull_files(
        &self,
        tag: &str,
        artifact_type: &str,
        directory: &Path,
    ) -> Option<Vec<(String, String)>> {
        if self.location.trust.trusted_keys.is_empty() {
            warn_once(
                &self.location,
                "untrusted",
                "build outputs are not taken from it without --remote-cache-trusted-key \
                 (artifacts are); they are built here",
            );
            return None;
        }
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
        let layers = manifest_layers(&manifest)?;
        let cap = self.registry.limits().download_bytes;
        if let Some(layer) = layers.iter().find(|layer| layer.size > cap) {
            tracing::warn!(
                "the remote cache {}'s entry {tag} is not used: its layer {} claims {} bytes, \
                 more than the cap for downloads of unknown size ({cap}, --max-download-size)",
                self.location,
                layer.name.as_str(),
                layer.size
            );
            return None;
        }
        let signed: Vec<SignedLayer<'_>> = layers.iter().map(PulledLayer::signed).collect();
        let signature = manifest
            .pointer(&format!("/annotations/{}", signing::SIGNATURE_ANNOTATION))
            .and_then(|value| value.as_str());
        let statement = signing::statement(artifact_type, tag, &signed);
        let signer = match signing::signer(&self.location.trust.trusted_keys, signature, &statement)
        {
            Ok(signer) => signer,
            Err(reason) => {
                tracing::warn!(
                    "the remote cache {}'s entry {tag} is not used: {reason}; it is built here",
                    self.location
                );
                return None;
            }
        };
        let mut files = Vec::new();
        for layer in &layers {
            // No more than the manifest's size is read, within the download deadline and stall
            // rule: extra bytes fail the read instead of filling the disk.
            let stream = self
                .attempt(|| {
                    self.registry
                        .get_blob(repository, &layer.digest, layer.size)
                })
                .flatten()?;
            let actual = match write_hashed(stream, &directory.join(layer.name.as_str())) {
                Ok(actual) => actual,
                Err(error) => {
                    tracing::warn!(
                        "the remote cache {}'s entry {tag} is not used: reading {}: {error}",
                        self.location,
                        layer.name.as_str()
                    );
                    return None;
                }
            };
            if actual != layer.digest {
                self.refused(
                    tag,
                    &format!("sha256:{}", layer.digest.as_str()),
                    &format!("sha256:{}", actual.as_str()),
                );
                return None;
            }
            files.push((layer.media_type.clone(), layer.name.as_str().to_string()));
        }
        tracing::info!(
            "took {tag} from the remote cache {}, signed by {}",
            self.location,
            signer.name
        );
        if let Ok(mut list) = taken().lock() {
            list.push(TakenEntry {
                entry: tag.to_string(),
                signer: signer.to_string(),
            });
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

/// A layer as a pulled manifest describes it.
struct PulledLayer {
    media_type: String,
    name: crate::identity::FileName,
    digest: Sha256,
    size: u64,
}

impl PulledLayer {
    fn signed(&self) -> SignedLayer<'_> {
        SignedLayer {
            title: self.name.as_str(),
            media_type: &self.media_type,
            size: self.size,
            digest: &self.digest,
        }
    }
}

/// The layers of a pulled manifest; `None` when one is not shaped as akpkg writes them.
fn manifest_layers(manifest: &serde_json::Value) -> Option<Vec<PulledLayer>> {
    let mut layers = Vec::new();
    for layer in manifest["layers"].as_array()? {
        layers.push(PulledLayer {
            media_type: layer["mediaType"].as_str()?.to_string(),
            name: layer["annotations"][TITLE_ANNOTATION]
                .as_str()?
                .parse()
                .ok()?,
            digest: layer["digest"]
                .as_str()?
                .strip_prefix("sha256:")?
                .parse()
                .ok()?,
            size: layer["size"].as_u64()?,
        });
    }
    Some(layers)
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
    let mut writer = crate::digest::HashingWriter::new(std::fs::File::create_new(target)?);
    std::io::copy(&mut stream, &mut writer)?;
    let (file, sha256, _) = writer.finish();
    file.sync_all()?;
    sha256
        .parse()
        .map_err(|error| std::io::Error::other(format!("{error}")))
}

/// Whether the registry answered `error` itself (an error status, a wrong digest, or a 5xx on
/// the one attempt): it is there, and only the request's entry is lost. Anything else (it
/// cannot be reached, refuses the credentials) makes the remote cache unusable.
fn costs_only_its_entry(error: &RegistryError) -> bool {
    match error {
        RegistryError::Status { .. } | RegistryError::DigestMismatch { .. } => true,
        RegistryError::GaveUp { message, .. } => message.starts_with("the registry answered"),
        _ => false,
    }
}

/// Whether `key` is new to `set` (so its warning is given now, once per run).
fn first_time(set: &Mutex<HashSet<String>>, key: String) -> bool {
    set.lock().is_ok_and(|mut set| set.insert(key))
}

/// Warn once per run and remote cache about `what` (a short name for the case).
fn warn_once(location: &RemoteCacheLocation, what: &str, message: &str) {
    static WARNED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let warned = WARNED.get_or_init(|| Mutex::new(HashSet::new()));
    if first_time(warned, format!("{what} {location}")) {
        tracing::warn!("the remote cache {location}: {message}");
    }
}

fn is_unusable(location: &RemoteCacheLocation) -> bool {
    unusable()
        .lock()
        .is_ok_and(|set| set.contains(&location.to_string()))
}

/// Mark the remote cache unusable for the rest of the run, warning the first time.
fn give_up(location: &RemoteCacheLocation, error: &RegistryError) {
    if first_time(unusable(), location.to_string()) {
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
