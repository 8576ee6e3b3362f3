//! `akpkg push`: an OCI image layout into a registry.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, print};
use crate::registry::{self, Reference};

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The OCI image layout to push (`akpkg layer --oci DIR` or `assemble --oci DIR` wrote it).
    #[arg(long, value_name = "DIR")]
    pub oci: PathBuf,

    /// Where to: HOST[:PORT]/REPOSITORY[:TAG] or …@sha256:DIGEST (a `docker://` in front is
    /// accepted). The tag defaults to `latest`.
    #[arg(value_name = "REFERENCE")]
    pub reference: String,

    /// A repository on the same registry that may hold some blobs already (a base image's):
    /// they are mounted from it instead of uploaded (repeatable).
    #[arg(long, value_name = "REPOSITORY")]
    pub mount_from: Vec<String>,

    /// Allow plain HTTP to this registry host (loopback is always allowed).
    #[arg(long, value_name = "HOST")]
    pub allow_insecure_host: Vec<String>,

    /// Attempts after the first, for transient failures (connection errors, 429, 5xx).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub retries: u32,

    /// Print what was pushed as one JSON object.
    #[arg(long, help_heading = "Output")]
    pub json: bool,
}

pub fn run(args: PushArgs) -> Result<(), CliError> {
    let reference: Reference = args.reference.parse()?;
    let options = crate::http::HttpOptions {
        insecure_hosts: args.allow_insecure_host.clone(),
        retries: args.retries,
        netrc: crate::http::Netrc::from_environment(),
        limits: super::limits(),
        ..crate::http::HttpOptions::default()
    };
    let report = registry::push_layout(&args.oci, &reference, &args.mount_from, &options)?;
    if args.json {
        let value =
            serde_json::to_value(&report).map_err(|error| CliError::Output(error.into()))?;
        return print(&format!("{value}\n"));
    }
    print(&format!(
        "pushed {}: manifest {}\n  {} blobs: {} uploaded ({} bytes), {} mounted, {} already there\n",
        report.reference,
        report.digest,
        report.blobs,
        report.uploaded,
        report.bytes_uploaded,
        report.mounted,
        report.present
    ))
}
