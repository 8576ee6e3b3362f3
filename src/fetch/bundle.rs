//! Air-gapped bundles: a directory another machine can fetch from with no network at all.
//!
//! ```text
//! BUNDLE/artifacts/<file name>   every wheel and sdist of the plan
//! BUNDLE/git/<commit>.tar        every git source's files (a deterministic tar)
//! BUNDLE/akpkg-bundle.json       each file's name, version, sha256 and size; each git
//!                                source's repository, commit and tree id
//! ```
//!
//! `--bundle BUNDLE` makes `BUNDLE/artifacts` a local source: files are found by name and still
//! verified by hash before they enter the cache; git archives are checked against their tree
//! ids. The manifest is written last, so a bundle whose copy was interrupted has none.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{FetchError, FetchedArtifact, GitArchive, GitCheckout, GitRequest};

pub const BUNDLE_MANIFEST: &str = "akpkg-bundle.json";

#[derive(Serialize)]
struct ManifestEntry<'a> {
    name: &'a str,
    version: &'a str,
    filename: &'a str,
    sha256: &'a str,
    size: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct GitEntry {
    name: String,
    version: String,
    repository: String,
    commit: String,
    tree: String,
    archive: String,
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    git: Vec<GitEntry>,
}

/// What a bundle offers besides its `artifacts/` directory.
#[derive(Debug, Default)]
pub struct BundleGitSources {
    pub archives: Vec<GitArchive>,
    /// commit → tree id.
    pub trees: BTreeMap<String, String>,
}

/// Read a bundle's manifest: its git archives and their pinned tree ids.
pub fn read_bundle(bundle: &Path) -> Result<BundleGitSources, FetchError> {
    let path = bundle.join(BUNDLE_MANIFEST);
    let text = fs_err::read_to_string(&path).map_err(|source| FetchError::Io {
        action: "cannot read the bundle manifest",
        path: path.clone(),
        source,
    })?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|error| {
        FetchError::Setup(format!(
            "{}: not a bundle manifest: {error}",
            path.display()
        ))
    })?;
    let mut sources = BundleGitSources::default();
    for entry in manifest.git {
        sources.archives.push(GitArchive {
            key: entry.commit.clone(),
            path: bundle.join(PathBuf::from(&entry.archive)),
        });
        sources.trees.insert(entry.commit, entry.tree);
    }
    Ok(sources)
}

/// Copy (or hard-link) every fetched artifact into `destination/artifacts`, write each git
/// checkout as `destination/git/<commit>.tar`, and write the manifest.
pub fn write_bundle(
    fetched: &[FetchedArtifact],
    git_sources: &[(GitRequest, GitCheckout)],
    destination: &Path,
) -> Result<(), FetchError> {
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
    let mut git_entries = Vec::new();
    for (request, checkout) in git_sources {
        let archive = format!("git/{}.tar", request.commit);
        let path = destination.join(&archive);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent).map_err(io("cannot create", parent))?;
        }
        let file = fs_err::File::create(&path).map_err(io("cannot create", &path))?;
        let writer =
            crate::archive::write_tree_tar(&checkout.directory, std::io::BufWriter::new(file), 0)?;
        writer
            .into_inner()
            .map_err(|error| io("cannot write", &path)(error.into_error()))?;
        git_entries.push(GitEntry {
            name: request.name.clone(),
            version: request.version.clone(),
            repository: super::redacted(&request.repository),
            commit: request.commit.clone(),
            tree: checkout.tree_id.clone(),
            archive,
        });
    }
    git_entries.sort_by(|a, b| a.commit.cmp(&b.commit));
    let mut json =
        serde_json::to_vec_pretty(&serde_json::json!({ "files": entries, "git": git_entries }))
            .map_err(|error| FetchError::Setup(error.to_string()))?;
    json.push(b'\n');
    fs_err::write(&manifest_path, json).map_err(io("cannot write", &manifest_path))
}
