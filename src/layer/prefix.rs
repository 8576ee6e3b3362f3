//! A prefix akpkg assembled, written as a layer (and an OCI image): its manifest gives the
//! layer's date and the image's labels, and its SBOM goes beside the layer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{LayerError, LayerOptions, OciImage};

/// How the image is made, besides the layer.
pub struct ImageRequest<'a> {
    /// Owner of every entry.
    pub owner: (u64, u64),
    /// Also write an OCI image layout with the layer into this directory.
    pub oci: Option<&'a Path>,
    /// The OCI image layout the layer is appended to.
    pub oci_base: Option<&'a Path>,
}

/// What [`write_prefix`] made.
#[derive(Debug, serde::Serialize)]
pub struct Written {
    pub layer: PathBuf,
    pub entries: u64,
    pub size: u64,
    pub sha256: String,
    pub diff_id: String,
    /// The OCI image layout and its manifest's digest.
    pub oci: Option<(PathBuf, String)>,
    /// The SBOM copied beside the layer.
    pub sbom: Option<PathBuf>,
}

/// Write the layer of `prefix`, placed at `at`, into `output` (and the OCI layout, if asked).
/// The date is the prefix's build date unless SOURCE_DATE_EPOCH says otherwise. A directory
/// akpkg did not assemble has no manifest and gets no labels from it; a manifest that is there
/// must be readable.
pub fn write_prefix(
    prefix: &Path,
    at: &str,
    output: &Path,
    request: &ImageRequest<'_>,
) -> Result<Written, LayerError> {
    let manifest = match crate::assemble::manifest_settings(prefix) {
        Err(crate::assemble::AssembleError::Io(error))
            if error.source.kind() == std::io::ErrorKind::NotFound =>
        {
            None
        }
        read => Some(read.map_err(|error| LayerError::Manifest(Box::new(error)))?),
    };
    let manifest = manifest.as_ref();
    let mtime = crate::timestamp::source_date_epoch(
        manifest.and_then(|manifest| manifest.source_date_epoch),
    );
    let info = super::write_layer(
        prefix,
        output,
        &LayerOptions {
            at: at.to_string(),
            owner: request.owner,
            mtime,
        },
    )?;
    let mut written = Written {
        layer: output.to_path_buf(),
        entries: info.entries as u64,
        size: info.size,
        sha256: info.sha256.to_string(),
        diff_id: info.diff_id.to_string(),
        oci: None,
        sbom: None,
    };
    if let Some(oci) = request.oci {
        let at = format!("/{}", at.trim_matches('/'));
        let digest = super::write_oci_layout(
            &OciImage {
                layer: &info,
                at: &at,
                entrypoint: vec![format!("{at}/bin/ak")],
                labels: image_labels(manifest),
                created: crate::timestamp::rfc3339(mtime),
                created_by: format!("akpkg {} layer --at {at}", env!("CARGO_PKG_VERSION")),
                base: request.oci_base,
            },
            oci,
        )?;
        written.oci = Some((oci.to_path_buf(), digest.to_string()));
    }
    // The prefix's SBOM, beside the layer too.
    let sbom = prefix.join(crate::assemble::SBOM);
    if sbom.is_file() {
        let beside = PathBuf::from(format!("{}.cdx.json", output.display()));
        fs_err::copy(&sbom, &beside)
            .map_err(crate::path_io::io::<LayerError>("cannot copy", &sbom))?;
        written.sbom = Some(beside);
    }
    Ok(written)
}

/// The image's labels: akpkg's version, and from the prefix's manifest the recipe, the source's
/// commit and tree, and the Debian packages its native code needs.
fn image_labels(manifest: Option<&crate::assemble::ManifestSettings>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert(
        "dev.akpkg.version".to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    );
    let source = manifest.and_then(|manifest| manifest.source.as_ref());
    for (value, label) in [
        (
            manifest.and_then(|manifest| manifest.recipe.clone()),
            "org.opencontainers.image.title",
        ),
        (
            source.and_then(|source| source.commit.clone()),
            "org.opencontainers.image.revision",
        ),
        (
            source.map(|source| source.tree.clone()),
            "dev.akpkg.source-tree",
        ),
    ] {
        if let Some(value) = value {
            labels.insert(label.to_string(), value);
        }
    }
    // What a base image must install for the prefix's native code (`akpkg verify`).
    if let Some(manifest) = manifest {
        labels.insert(
            "dev.akpkg.debian-packages".to_string(),
            manifest.native.debian_packages.join(" "),
        );
    }
    labels
}
