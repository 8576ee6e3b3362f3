//! OCI image layouts (image-spec `image-layout.md`): `oci-layout`, `index.json` and
//! content-addressed `blobs/sha256/`, built with the oci-spec crate's types.
//!
//! Without a base, the image is the layer alone. With `--oci-base DIR` (an image layout such as
//! `skopeo copy docker://python:3.13-slim oci:DIR` writes), the layer is appended: the base's
//! layers are kept as they are, and the config's `diff_ids`, `history` and `Env` are extended,
//! with no container engine involved. JSON is written with sorted keys, so the same inputs give
//! the same digests.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, HistoryBuilder, ImageConfiguration,
    ImageConfigurationBuilder, ImageIndex, ImageIndexBuilder, ImageManifest, ImageManifestBuilder,
    MediaType, Os, RootFsBuilder, SCHEMA_VERSION,
};

use super::{Compression, LayerError, LayerInfo, io_error};

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
fn put_blob(blobs: &Path, media_type: MediaType, bytes: &[u8]) -> Result<Descriptor, LayerError> {
    let digest = crate::digest::sha256_hex(bytes);
    let path = blobs.join(&digest);
    fs_err::write(&path, bytes).map_err(io_error("cannot write", &path))?;
    descriptor(media_type, bytes.len() as u64, &digest)
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

/// The base's manifest and config, with its blobs copied into `blobs`.
fn read_base(base: &Path, blobs: &Path) -> Result<(ImageManifest, ImageConfiguration), LayerError> {
    let index = ImageIndex::from_file(base.join("index.json")).map_err(|error| {
        LayerError::Oci(format!("{}: {error}", base.join("index.json").display()))
    })?;
    let manifest_descriptor = index.manifests().first().ok_or_else(|| {
        LayerError::Oci(format!("{}: the index lists no manifest", base.display()))
    })?;
    let blob_path = |digest: &oci_spec::image::Digest| {
        base.join("blobs")
            .join(digest.algorithm().as_ref())
            .join(digest.digest())
    };
    let manifest = ImageManifest::from_file(blob_path(manifest_descriptor.digest()))
        .map_err(|error| LayerError::Oci(format!("{}: base manifest: {error}", base.display())))?;
    let config = ImageConfiguration::from_file(blob_path(manifest.config().digest()))
        .map_err(|error| LayerError::Oci(format!("{}: base config: {error}", base.display())))?;
    // The base's layers are kept exactly: copy (or link) their blobs.
    for layer in manifest.layers() {
        let from = blob_path(layer.digest());
        let to = blobs.join(layer.digest().digest());
        if fs_err::hard_link(&from, &to).is_err() {
            fs_err::copy(&from, &to).map_err(io_error("cannot copy", &from))?;
        }
    }
    Ok((manifest, config))
}

/// Write the image layout into `destination` (created, or emptied of an earlier layout);
/// returns the manifest's digest.
pub fn write_oci_layout(image: &OciImage<'_>, destination: &Path) -> Result<String, LayerError> {
    let blobs = destination.join("blobs/sha256");
    fs_err::create_dir_all(&blobs).map_err(io_error("cannot create", &blobs))?;

    let layer_media_type = match image.layer.compression {
        Compression::None => MediaType::ImageLayer,
        Compression::Gzip => MediaType::ImageLayerGzip,
        Compression::Zstd => MediaType::ImageLayerZstd,
    };
    let layer_blob = blobs.join(&image.layer.sha256);
    if fs_err::hard_link(&image.layer.path, &layer_blob).is_err() {
        fs_err::copy(&image.layer.path, &layer_blob)
            .map_err(io_error("cannot copy", &image.layer.path))?;
    }
    let layer = descriptor(layer_media_type, image.layer.size, &image.layer.sha256)?;

    let (base_layers, mut config) = match image.base {
        Some(base) => {
            let (manifest, config) = read_base(base, &blobs)?;
            (manifest.layers().clone(), config)
        }
        None => (
            Vec::new(),
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
                .map_err(spec_error)?,
        ),
    };

    // The prefix's bin/ first on PATH; the base's other variables kept.
    let mut runtime = config.config().clone().unwrap_or_default();
    let mut env: Vec<String> = runtime.env().clone().unwrap_or_default();
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
    let mut labels: HashMap<String, String> = runtime.labels().clone().unwrap_or_default();
    labels.extend(image.labels.clone());
    runtime = ConfigBuilder::default()
        .env(env)
        .entrypoint(image.entrypoint.clone())
        .cmd(Vec::<String>::new())
        .labels(labels)
        .build()
        .map_err(spec_error)
        .map(|mut built| {
            // Keep what the base set and akpkg does not (user, working directory, ports…).
            built.set_user(runtime.user().clone());
            built.set_working_dir(runtime.working_dir().clone());
            built.set_exposed_ports(runtime.exposed_ports().clone());
            built.set_volumes(runtime.volumes().clone());
            built.set_stop_signal(runtime.stop_signal().clone());
            built
        })?;
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

    let config_descriptor = put_blob(&blobs, MediaType::ImageConfig, &canonical(&config)?)?;
    let mut layers = base_layers;
    layers.push(layer);
    let manifest = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .config(config_descriptor)
        .layers(layers)
        .build()
        .map_err(spec_error)?;
    let manifest_bytes = canonical(&manifest)?;
    let mut manifest_descriptor = put_blob(&blobs, MediaType::ImageManifest, &manifest_bytes)?;
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
    let index_path = destination.join("index.json");
    fs_err::write(&index_path, canonical(&index)?)
        .map_err(io_error("cannot write", &index_path))?;
    let layout_path = destination.join("oci-layout");
    fs_err::write(&layout_path, b"{\"imageLayoutVersion\":\"1.0.0\"}")
        .map_err(io_error("cannot write", &layout_path))?;
    Ok(format!(
        "sha256:{}",
        crate::digest::sha256_hex(&manifest_bytes)
    ))
}
