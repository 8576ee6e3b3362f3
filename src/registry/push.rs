//! `akpkg push`: an OCI image layout (image-spec `image-layout.md`, as `akpkg layer --oci` or
//! `skopeo copy … oci:DIR` writes it) into a registry, by the distribution spec's push
//! workflow: every blob first (skipped when the registry has it, mounted from another
//! repository when the user names one), then the manifest as its exact bytes, under the tag.
//! The bytes are never rewritten, so the digest is the layout's own: the same digest `skopeo
//! copy oci:DIR docker://REF` gives for a layout whose layers are already compressed (skopeo
//! compresses uncompressed layers on the way, which changes the manifest; akpkg does not).

use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

use super::{Content, Mount, Reference, Registry, RegistryError, Target};
use crate::http::HttpOptions;
use crate::identity::Sha256;

/// What a push did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PushReport {
    pub reference: String,
    /// `sha256:…` of the manifest, the digest to pull by.
    pub digest: String,
    pub blobs: usize,
    pub uploaded: usize,
    pub mounted: usize,
    /// Blobs the registry had already.
    pub present: usize,
    pub bytes_uploaded: u64,
}

/// Push the one image manifest of the layout at `layout` to `reference`. `mount_from` names
/// repositories on the same registry that may hold the blobs already (a base image's).
pub fn push_layout(
    layout: &Path,
    reference: &Reference,
    mount_from: &[String],
    network: &HttpOptions,
) -> Result<PushReport, RegistryError> {
    let (descriptor, manifest_bytes) = read_manifest(layout)?;
    let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|error| RegistryError::layout(layout, format!("its manifest: {error}")))?;
    if let Target::Digest(pinned) = &reference.target {
        let actual = Sha256::of_bytes(&manifest_bytes);
        if &actual != pinned {
            return Err(RegistryError::layout(
                layout,
                format!(
                    "its manifest is sha256:{}, not the sha256:{} the reference names",
                    actual.as_str(),
                    pinned.as_str()
                ),
            ));
        }
    }
    let registry = Registry::connect(&reference.registry, network)?;

    let blobs: Vec<&Descriptor> = std::iter::once(manifest.config())
        .chain(manifest.layers())
        .collect();
    let mut report = PushReport {
        reference: reference.to_string(),
        digest: String::new(),
        blobs: blobs.len(),
        uploaded: 0,
        mounted: 0,
        present: 0,
        bytes_uploaded: 0,
    };
    for blob in blobs {
        push_blob(&registry, reference, layout, blob, mount_from, &mut report)?;
    }
    let media_type = descriptor.media_type().to_string();
    let digest = registry.put_manifest(
        &reference.repository,
        &reference.target,
        &media_type,
        &manifest_bytes,
    )?;
    report.digest = format!("sha256:{}", digest.as_str());
    Ok(report)
}

/// One blob: skipped if there, else mounted if a named repository has it, else uploaded.
fn push_blob(
    registry: &Registry,
    reference: &Reference,
    layout: &Path,
    blob: &Descriptor,
    mount_from: &[String],
    report: &mut PushReport,
) -> Result<(), RegistryError> {
    let digest = sha256_of(blob, layout)?;
    let path = blob_path(layout, &digest);
    let size = std::fs::metadata(&path)
        .map_err(|error| RegistryError::io("reading", &path, error))?
        .len();
    if size != blob.size() {
        return Err(RegistryError::layout(
            layout,
            format!(
                "{} has {size} bytes; the manifest says {}",
                path.display(),
                blob.size()
            ),
        ));
    }
    let repository = &reference.repository;
    if registry.has_blob(repository, &digest)? {
        tracing::debug!(digest = digest.as_str(), "the registry has it");
        report.present += 1;
        return Ok(());
    }
    // Mount from the first named repository that has the blob; if the registry then declines
    // to mount, it opens an upload, which is used.
    let mut session = None;
    if let Some(from) = first_holding(registry, mount_from, &digest)? {
        match registry.mount_blob(repository, &digest, from)? {
            Mount::Mounted => {
                report.mounted += 1;
                return Ok(());
            }
            Mount::Upload(location) => session = Some(location),
        }
    }
    // Hashed here first: a blob whose bytes are not its name is refused before the registry
    // sees any of it (and `open_regular` refuses a link or a FIFO in its place).
    let actual = Sha256::of_regular_file(&path)
        .map_err(|error| RegistryError::io("reading", &path, error))?;
    if actual != digest {
        return Err(RegistryError::layout(
            layout,
            format!(
                "{} hashes to sha256:{}, not to the digest it is named after; nothing of it \
                 was sent",
                path.display(),
                actual.as_str()
            ),
        ));
    }
    registry.upload_blob(repository, &digest, Content::File(&path), session)?;
    report.uploaded += 1;
    report.bytes_uploaded += size;
    Ok(())
}

/// The first of `repositories` that holds the blob.
fn first_holding<'r>(
    registry: &Registry,
    repositories: &'r [String],
    digest: &Sha256,
) -> Result<Option<&'r String>, RegistryError> {
    for repository in repositories {
        if registry.has_blob(repository, digest)? {
            return Ok(Some(repository));
        }
    }
    Ok(None)
}

/// The layout's one image manifest: its descriptor in `index.json` and its bytes, checked
/// against the descriptor's digest.
fn read_manifest(layout: &Path) -> Result<(Descriptor, Vec<u8>), RegistryError> {
    let index_path = layout.join("index.json");
    let index_bytes = crate::path_io::read_regular(&index_path)
        .map_err(|error| RegistryError::io("reading", &index_path, error))?;
    let index: ImageIndex = serde_json::from_slice(&index_bytes)
        .map_err(|error| RegistryError::layout(layout, format!("index.json: {error}")))?;
    let descriptor = match index.manifests().as_slice() {
        [descriptor] => descriptor.clone(),
        [] => {
            return Err(RegistryError::layout(
                layout,
                "index.json lists no manifest",
            ));
        }
        many => {
            return Err(RegistryError::layout(
                layout,
                format!(
                    "index.json lists {} manifests; akpkg pushes a layout with one image",
                    many.len()
                ),
            ));
        }
    };
    if descriptor.media_type() != &MediaType::ImageManifest {
        return Err(RegistryError::layout(
            layout,
            format!(
                "its manifest is a {}; akpkg pushes one image manifest ({})",
                descriptor.media_type(),
                MediaType::ImageManifest
            ),
        ));
    }
    let digest = sha256_of(&descriptor, layout)?;
    let bytes = crate::oci_layout::read_blob(layout, &digest)
        .map_err(|reason| RegistryError::layout(layout, reason))?;
    Ok((descriptor, bytes))
}

/// The sha256 a descriptor names (see [`crate::oci_layout::sha256_of`]).
fn sha256_of(descriptor: &Descriptor, layout: &Path) -> Result<Sha256, RegistryError> {
    crate::oci_layout::sha256_of(descriptor.digest())
        .map_err(|reason| RegistryError::layout(layout, reason))
}

fn blob_path(layout: &Path, digest: &Sha256) -> PathBuf {
    layout.join(crate::oci_layout::blob_path(digest))
}
