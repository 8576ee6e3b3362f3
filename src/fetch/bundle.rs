//! Air-gapped bundles: a directory another machine can fetch from with no network at all.
//!
//! ```text
//! BUNDLE/artifacts/<file name>   every wheel and sdist of the plan
//! BUNDLE/akpkg-bundle.json       each file's name, version, sha256 and size
//! ```
//!
//! `--bundle BUNDLE` makes `BUNDLE/artifacts` a local source: files are found by name and still
//! verified by hash before they enter the cache. The manifest is written last, so a bundle
//! whose copy was interrupted has none.

use std::path::Path;

use serde::Serialize;

use super::{FetchError, FetchedArtifact};

pub const BUNDLE_MANIFEST: &str = "akpkg-bundle.json";

#[derive(Serialize)]
struct ManifestEntry<'a> {
    name: &'a str,
    version: &'a str,
    filename: &'a str,
    sha256: &'a str,
    size: Option<u64>,
}

/// Copy (or hard-link) every fetched artifact into `destination/artifacts` and write the
/// manifest.
pub fn write_bundle(fetched: &[FetchedArtifact], destination: &Path) -> Result<(), FetchError> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| FetchError::Io {
            action,
            path,
            source,
        }
    };
    let artifacts = destination.join("artifacts");
    fs_err::create_dir_all(&artifacts).map_err(io("cannot create", &artifacts))?;
    let manifest_path = destination.join(BUNDLE_MANIFEST);
    // A previous manifest no longer describes what is being written.
    let _ = fs_err::remove_file(&manifest_path);
    for artifact in fetched {
        let target = artifacts.join(&artifact.request.filename);
        let _ = fs_err::remove_file(&target);
        if fs_err::hard_link(&artifact.path, &target).is_err() {
            fs_err::copy(&artifact.path, &target).map_err(io("cannot copy into", &target))?;
        }
    }
    let mut entries: Vec<ManifestEntry> = fetched
        .iter()
        .map(|artifact| ManifestEntry {
            name: &artifact.request.name,
            version: &artifact.request.version,
            filename: &artifact.request.filename,
            sha256: &artifact.request.sha256,
            size: artifact.request.size,
        })
        .collect();
    entries.sort_by(|a, b| a.filename.cmp(b.filename));
    let mut json = serde_json::to_vec_pretty(&serde_json::json!({ "files": entries }))
        .map_err(|error| FetchError::Setup(error.to_string()))?;
    json.push(b'\n');
    fs_err::write(&manifest_path, json).map_err(io("cannot write", &manifest_path))
}
