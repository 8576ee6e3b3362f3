//! `akpkg layer`, and the layer options `assemble` shares.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;

use super::{CliError, print};
use crate::layer::{self, LayerOptions, OciImage};

#[derive(Debug, Args)]
pub struct LayerCommandArgs {
    /// The prefix to pack.
    #[arg(long, value_name = "DIR")]
    pub prefix: PathBuf,

    /// Where the prefix lives in the image.
    #[arg(long, value_name = "PATH", default_value = "/opt/authentik")]
    pub at: String,

    /// The layer file: .tar, .tar.gz or .tar.zst.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,

    #[command(flatten)]
    pub image: ImageArgs,

    /// Print what was written as one JSON object.
    #[arg(long, help_heading = "Output")]
    pub json: bool,
}

/// What `write` made.
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

impl Written {
    pub fn text(&self) -> String {
        let mut text = format!(
            "layer {}: {} entries, {} bytes, sha256:{} (diff_id sha256:{})\n",
            self.layer.display(),
            self.entries,
            self.size,
            self.sha256,
            self.diff_id
        );
        if let Some((oci, digest)) = &self.oci {
            text.push_str(&format!(
                "OCI image layout {}: manifest {digest}\n",
                oci.display()
            ));
        }
        if let Some(sbom) = &self.sbom {
            text.push_str(&format!("SBOM {}\n", sbom.display()));
        }
        text
    }
}

/// Layer options shared with `assemble`.
#[derive(Debug, Args)]
#[command(next_help_heading = "Layer and image")]
pub struct ImageArgs {
    /// Owner of every entry [default: 0:0].
    #[arg(long, value_name = "UID:GID")]
    pub owner: Option<String>,

    /// Also write an OCI image layout with this layer into DIR.
    #[arg(long, value_name = "DIR")]
    pub oci: Option<PathBuf>,

    /// Append the layer to this OCI image layout (such as `skopeo copy
    /// docker://python:3.13-slim oci:DIR` writes) instead of starting from nothing (with --oci).
    #[arg(long, value_name = "DIR", requires = "oci")]
    pub oci_base: Option<PathBuf>,
}

impl ImageArgs {
    fn owner(&self) -> Result<(u64, u64), CliError> {
        match &self.owner {
            None => Ok((0, 0)),
            Some(text) => text
                .split_once(':')
                .and_then(|(uid, gid)| Some((uid.parse().ok()?, gid.parse().ok()?)))
                .ok_or_else(|| CliError::Usage(format!("--owner {text}: expected UID:GID"))),
        }
    }

    /// Write the layer of `prefix` (and the OCI layout, if asked).
    pub fn write(&self, prefix: &Path, at: &str, output: &Path) -> Result<Written, CliError> {
        // The date the prefix was built with, unless SOURCE_DATE_EPOCH says otherwise.
        // A directory akpkg did not assemble has no manifest, and gets no labels from it; a
        // manifest that is there must be readable.
        let manifest = match crate::assemble::manifest_settings(prefix) {
            Err(crate::assemble::AssembleError::Io(error))
                if error.source.kind() == std::io::ErrorKind::NotFound =>
            {
                None
            }
            read => Some(read?),
        };
        let manifest = manifest.as_ref();
        if let Some(epoch) = manifest.and_then(|manifest| manifest.source_date_epoch) {
            crate::timestamp::default_from_inputs(epoch);
        }
        let mtime = crate::timestamp::source_date_epoch();
        let info = layer::write_layer(
            prefix,
            output,
            &LayerOptions {
                at: at.to_string(),
                owner: self.owner()?,
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
        if let Some(oci) = &self.oci {
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
            let at = format!("/{}", at.trim_matches('/'));
            let digest = layer::write_oci_layout(
                &OciImage {
                    layer: &info,
                    at: &at,
                    entrypoint: vec![format!("{at}/bin/ak")],
                    labels,
                    created: crate::timestamp::rfc3339(mtime),
                    created_by: format!("akpkg {} layer --at {at}", env!("CARGO_PKG_VERSION")),
                    base: self.oci_base.as_deref(),
                },
                oci,
            )?;
            written.oci = Some((oci.clone(), digest.to_string()));
        }
        // The prefix's SBOM, beside the layer too.
        let sbom = prefix.join(crate::assemble::SBOM);
        if sbom.is_file() {
            let beside = PathBuf::from(format!("{}.cdx.json", output.display()));
            fs_err::copy(&sbom, &beside)?;
            written.sbom = Some(beside);
        }
        Ok(written)
    }
}

pub fn run(args: LayerCommandArgs) -> Result<(), CliError> {
    let written = args.image.write(&args.prefix, &args.at, &args.output)?;
    if args.json {
        let value =
            serde_json::to_value(&written).map_err(|error| CliError::Output(error.into()))?;
        return print(&format!("{value}\n"));
    }
    print(&written.text())
}
