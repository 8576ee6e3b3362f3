//! `akpkg layer`, and the layer options `assemble` shares.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{CliError, print};
use crate::layer::{self, Written};

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

/// What `akpkg layer` (and `assemble --layer`) says it wrote.
pub fn written_text(written: &Written) -> String {
    let mut text = format!(
        "layer {}: {} entries, {} bytes, sha256:{} (diff_id sha256:{})\n",
        written.layer.display(),
        written.entries,
        written.size,
        written.sha256,
        written.diff_id
    );
    if let Some((oci, digest)) = &written.oci {
        text.push_str(&format!(
            "OCI image layout {}: manifest {digest}\n",
            oci.display()
        ));
    }
    if let Some(sbom) = &written.sbom {
        text.push_str(&format!("SBOM {}\n", sbom.display()));
    }
    text
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
        let request = layer::ImageRequest {
            owner: self.owner()?,
            oci: self.oci.as_deref(),
            oci_base: self.oci_base.as_deref(),
        };
        Ok(layer::write_prefix(prefix, at, output, &request)?)
    }
}

pub fn run(args: LayerCommandArgs) -> Result<(), CliError> {
    let written = args.image.write(&args.prefix, &args.at, &args.output)?;
    if args.json {
        let value =
            serde_json::to_value(&written).map_err(|error| CliError::Output(error.into()))?;
        return print(&format!("{value}\n"));
    }
    print(&written_text(&written))
}
