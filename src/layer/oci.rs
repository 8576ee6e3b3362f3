//! OCI image layouts (image-spec `image-layout.md`): `oci-layout`, `index.json` and
//! content-addressed `blobs/sha256/`, built with the oci-spec crate's types.
//!
//! Without a base, the image is the layer alone. With `--oci-base DIR` (an image layout such as
//! `skopeo copy docker://python:3.13-slim oci:DIR` writes), the layer is appended: the base's
//! layers are kept as they are, and the config's `diff_ids`, `history` and `Env` are extended,
//! with no container engine involved. JSON is written with sorted keys, so the same inputs give
//! the same digests.

use crate::oci_layout::blob_path;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, HistoryBuilder, ImageConfiguration,
    ImageConfigurationBuilder, ImageIndex, ImageIndexBuilder, ImageManifest, ImageManifestBuilder,
    MediaType, Os, RootFsBuilder, SCHEMA_VERSION,
};

use super::{Compression, LayerError, LayerInfo};
use crate::contained::{Contained, Existing, FileMode, LinkMode};
use crate::identity::Sha256;

/// What the image holds besides the layer.
#[derive(Debug, Clone)]
pub struct OciImage<'a> {
    pub layer: &'a LayerInfo,
    /// The prefix's path in the image (its `bin/` goes first on PATH).
    pub at: &'a str,
    pub entrypoint: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// RFC 3339, from SOURCE_DATE_EPOCH: the history entry's and the config's creation time.
    pub created: String,
    /// For the history entry.
    pub created_by: String,
    pub base: Option<&'a Path>,
}

fn spec_error(error: oci_spec::OciSpecError) -> LayerError {
    LayerError::Oci(error.to_string())
}

/// Canonical JSON: keys sorted at every level (the spec's maps are hash maps).
fn canonical(value: &impl serde::Serialize) -> Result<Vec<u8>, LayerError> {
    let value = serde_json::to_value(value).map_err(|error| LayerError::Oci(error.to_string()))?;
    serde_json::to_vec(&value).map_err(|error| LayerError::Oci(error.to_string()))
}

/// Store `bytes` as a blob; returns its descriptor.
fn put_blob(
    layout: &Contained,
    media_type: MediaType,
    bytes: &[u8],
) -> Result<Descriptor, LayerError> {
    let digest = Sha256::of_bytes(bytes);
    layout.write(
        &blob_path(&digest),
        bytes,
        FileMode::Regular,
        Existing::Replace,
    )?;
    descriptor(media_type, bytes.len() as u64, &digest)
}

/// The sha256 a descriptor names (see [`crate::oci_layout::sha256_of`]).
fn sha256_of(digest: &oci_spec::image::Digest, base: &Path) -> Result<Sha256, LayerError> {
    crate::oci_layout::sha256_of(digest)
        .map_err(|reason| LayerError::Oci(format!("{}: {reason}", base.display())))
}

/// Copy one of the base's blobs into the layout, re-hashing it on the way: a blob whose bytes
/// are not its digest is refused, and nothing of it is kept.
fn copy_base_blob(base: &Path, digest: &Sha256, layout: &Contained) -> Result<(), LayerError> {
    let from = base.join(blob_path(digest));
    if let Some(actual) = layout.copy_verified(&from, &blob_path(digest), digest)? {
        return Err(LayerError::Oci(format!(
            "{}: its bytes hash to sha256:{actual}, not to the digest it is named after; the base layout is corrupt or was altered",
            from.display()
        )));
    }
    Ok(())
}

fn descriptor(media_type: MediaType, size: u64, sha256: &str) -> Result<Descriptor, LayerError> {
    DescriptorBuilder::default()
        .media_type(media_type)
        .size(size)
        .digest(
            format!("sha256:{sha256}")
                .parse::<oci_spec::image::Digest>()
                .map_err(spec_error)?,
        )
        .build()
        .map_err(spec_error)
}

/// The base's manifest and config, with its layers' blobs copied (verified) into the layout.
/// Every file is read only if it is a regular file (not through a link, never a FIFO), and the
/// manifest and config are checked against the digests that name them, as the layers are.
fn read_base(
    base: &Path,
    layout: &Contained,
) -> Result<(ImageManifest, ImageConfiguration), LayerError> {
    let index_path = base.join("index.json");
    let index_bytes = crate::path_io::read_regular(&index_path).map_err(|error| {
        LayerError::Oci(format!(
            "{}: {}",
            index_path.display(),
            crate::path_io::Reason(&error)
        ))
    })?;
    let index: ImageIndex = serde_json::from_slice(&index_bytes)
        .map_err(|error| LayerError::Oci(format!("{}: {error}", index_path.display())))?;
    let manifest_descriptor = index.manifests().first().ok_or_else(|| {
        LayerError::Oci(format!("{}: the index lists no manifest", base.display()))
    })?;
    let manifest: ImageManifest =
        serde_json::from_slice(&base_blob(base, manifest_descriptor.digest())?).map_err(
            |error| LayerError::Oci(format!("{}: base manifest: {error}", base.display())),
        )?;
    let config: ImageConfiguration =
        serde_json::from_slice(&base_blob(base, manifest.config().digest())?).map_err(|error| {
            LayerError::Oci(format!("{}: base config: {error}", base.display()))
        })?;
    // The base's layers are kept exactly: their blobs are copied, each checked by its digest.
    for layer in manifest.layers() {
        copy_base_blob(base, &sha256_of(layer.digest(), base)?, layout)?;
    }
    Ok((manifest, config))
}

/// The base's blob `digest`, checked against it.
fn base_blob(base: &Path, digest: &oci_spec::image::Digest) -> Result<Vec<u8>, LayerError> {
    crate::oci_layout::read_blob(base, &sha256_of(digest, base)?).map_err(LayerError::Oci)
}

/// Write the image layout into `destination` (created, or emptied of an earlier layout);
/// returns the manifest's digest.
pub fn write_oci_layout(image: &OciImage<'_>, destination: &Path) -> Result<String, LayerError> {
    let layout = Contained::create(destination)?;
    layout.create_dir_all(Path::new("blobs/sha256"))?;
    // 1. The layer, linked in as a blob.
    let layer = place_layer(image, &layout)?;
    // 2. The base's layers and configuration, or an empty image's.
    let (mut layers, mut config) = match image.base {
        Some(base) => {
            let (manifest, config) = read_base(base, &layout)?;
            (manifest.layers().clone(), config)
        }
        None => (Vec::new(), empty_configuration()?),
    };
    // 3. The configuration with the prefix's environment, entrypoint, labels and history.
    let runtime = runtime_config(image, config.config().clone().unwrap_or_default())?;
    config.set_config(Some(runtime));
    config
        .rootfs_mut()
        .diff_ids_mut()
        .push(format!("sha256:{}", image.layer.diff_id));
    let mut history = config.history().clone().unwrap_or_default();
    history.push(
        HistoryBuilder::default()
            .created(image.created.clone())
            .created_by(image.created_by.clone())
            .comment("akpkg layer")
            .build()
            .map_err(spec_error)?,
    );
    config.set_history(Some(history));
    config.set_created(Some(image.created.clone()));
    // 4. The manifest and the index that names it.
    let config_descriptor = put_blob(&layout, MediaType::ImageConfig, &canonical(&config)?)?;
    layers.push(layer);
    write_index(&layout, config_descriptor, layers)
}

/// The layer file, hard-linked into the layout as its blob; its descriptor.
fn place_layer(image: &OciImage<'_>, layout: &Contained) -> Result<Descriptor, LayerError> {
    let layer_media_type = match image.layer.compression {
        Compression::None => MediaType::ImageLayer,
        Compression::Gzip => MediaType::ImageLayerGzip,
        Compression::Zstd => MediaType::ImageLayerZstd,
    };
    let layer_sha256: Sha256 = image
        .layer
        .sha256
        .parse()
        .map_err(|error: crate::identity::IdentityError| LayerError::Oci(error.to_string()))?;
    let layer_blob = blob_path(&layer_sha256);
    layout.remove_file(&layer_blob)?;
    layout.place(&image.layer.path, &layer_blob, LinkMode::Hardlink)?;
    descriptor(layer_media_type, image.layer.size, &layer_sha256)
}

/// The configuration of an image without a base: linux on this architecture, no layers yet.
fn empty_configuration() -> Result<ImageConfiguration, LayerError> {
    ImageConfigurationBuilder::default()
        .architecture(Arch::default())
        .os(Os::Linux)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(Vec::<String>::new())
                .build()
                .map_err(spec_error)?,
        )
        .build()
        .map_err(spec_error)
}

/// The base's runtime configuration with the prefix's `bin/` first on PATH (the base's other
/// variables kept), the entrypoint, and the labels added to the base's.
fn runtime_config(
    image: &OciImage<'_>,
    base: oci_spec::image::Config,
) -> Result<oci_spec::image::Config, LayerError> {
    let mut env: Vec<String> = base.env().clone().unwrap_or_default();
    let bin = format!("{}/bin", image.at.trim_end_matches('/'));
    match env
        .iter_mut()
        .find(|variable| variable.starts_with("PATH="))
    {
        Some(path) => *path = format!("PATH={bin}:{}", &path["PATH=".len()..]),
        None => env.push(format!(
            "PATH={bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        )),
    }
    let mut labels: HashMap<String, String> = base.labels().clone().unwrap_or_default();
    labels.extend(image.labels.clone());
    ConfigBuilder::default()
        .env(env)
        .entrypoint(image.entrypoint.clone())
        .cmd(Vec::<String>::new())
        .labels(labels)
        .build()
        .map_err(spec_error)
        .map(|mut built| {
            // Keep what the base set and akpkg does not (user, working directory, ports…).
            built.set_user(base.user().clone());
            built.set_working_dir(base.working_dir().clone());
            built.set_exposed_ports(base.exposed_ports().clone());
            built.set_volumes(base.volumes().clone());
            built.set_stop_signal(base.stop_signal().clone());
            built
        })
}

/// The image manifest of `config` and `layers`, the index naming it `latest`, and
/// `oci-layout`; the manifest's digest.
fn write_index(
    layout: &Contained,
    config: Descriptor,
    layers: Vec<Descriptor>,
) -> Result<String, LayerError> {
    let manifest = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(layers)
        .build()
        .map_err(spec_error)?;
    let manifest_bytes = canonical(&manifest)?;
    let mut manifest_descriptor = put_blob(layout, MediaType::ImageManifest, &manifest_bytes)?;
    let mut annotations = HashMap::new();
    annotations.insert(
        "org.opencontainers.image.ref.name".to_string(),
        "latest".to_string(),
    );
    manifest_descriptor.set_annotations(Some(annotations));
    let index = ImageIndexBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![manifest_descriptor])
        .build()
        .map_err(spec_error)?;
    layout.write(
        Path::new("index.json"),
        &canonical(&index)?,
        FileMode::Regular,
        Existing::Replace,
    )?;
    layout.write(
        Path::new("oci-layout"),
        b"{\"imageLayoutVersion\":\"1.0.0\"}",
        FileMode::Regular,
        Existing::Replace,
    )?;
    Ok(format!(
        "sha256:{}",
        crate::digest::sha256_hex(&manifest_bytes)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image<'a>(layer: &'a LayerInfo, base: Option<&'a Path>) -> OciImage<'a> {
        OciImage {
            layer,
            at: "/opt/app",
            entrypoint: vec!["/opt/app/bin/app".to_string()],
            labels: BTreeMap::new(),
            created: "1980-01-01T00:00:00Z".to_string(),
            created_by: "test".to_string(),
            base,
        }
    }

    #[test]
    fn a_base_blob_whose_bytes_are_not_its_digest_is_refused() {
        let directory = tempfile::tempdir().unwrap();
        let prefix = directory.path().join("prefix");
        fs_err::create_dir_all(prefix.join("bin")).unwrap();
        fs_err::write(prefix.join("bin/app"), "#!/bin/sh\n").unwrap();
        let options = super::super::LayerOptions {
            at: "/opt/app".to_string(),
            owner: (0, 0),
            mtime: 0,
        };
        let layer =
            super::super::write_layer(&prefix, &directory.path().join("layer.tar"), &options)
                .unwrap();
        let base = directory.path().join("base");
        write_oci_layout(&image(&layer, None), &base).unwrap();
        // A layout on top of the base works while the base is intact.
        write_oci_layout(&image(&layer, Some(&base)), &directory.path().join("good")).unwrap();

        fs_err::write(base.join("blobs/sha256").join(&layer.sha256), b"poisoned").unwrap();
        let error = write_oci_layout(&image(&layer, Some(&base)), &directory.path().join("bad"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("not to the digest it is named after"),
            "{error}"
        );
    }
}
