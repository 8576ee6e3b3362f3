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
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::contained::{Contained, Existing, FileMode};
use crate::identity::{GitCommit, TreeId};

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
    commit: GitCommit,
    tree: TreeId,
    archive: String,
}

#[derive(Deserialize)]
struct BundleManifest {
    #[serde(default)]
    git: Vec<GitEntry>,
}

/// What a bundle offers besides its `artifacts/` directory.
#[derive(Debug, Default)]
pub struct BundleGitSources {
    pub archives: Vec<GitArchive>,
    /// commit → tree id.
    pub trees: BTreeMap<GitCommit, TreeId>,
}

/// Read a bundle's manifest: its git archives and their pinned tree ids.
pub fn read_bundle(bundle: &Path) -> Result<BundleGitSources, FetchError> {
    let path = bundle.join(BUNDLE_MANIFEST);
    let text = fs_err::read_to_string(&path)
        .map_err(FetchError::io("cannot read the bundle manifest", &path))?;
    let manifest: BundleManifest = serde_json::from_str(&text).map_err(|error| {
        FetchError::Setup(format!(
            "{}: not a bundle manifest: {error}",
            path.display()
        ))
    })?;
    let mut sources = BundleGitSources::default();
    for entry in manifest.git {
        // The archive's path is derived from the commit, never taken as written.
        let archive = format!("git/{}.tar", entry.commit);
        if entry.archive != archive {
            return Err(FetchError::Setup(format!(
                "{}: git source `{}` names its archive `{}`; a bundle's archive for commit {} is `{archive}`",
                path.display(),
                entry.name,
                entry.archive.escape_debug(),
                entry.commit
            )));
        }
        sources.archives.push(GitArchive {
            key: entry.commit.to_string(),
            path: bundle.join(archive),
        });
        sources.trees.insert(entry.commit, entry.tree);
    }
    Ok(sources)
}

/// Copy every fetched artifact into `destination/artifacts`, re-hashing it on the way (a file
/// that changed in the cache is removed from it and refused, so poisoned bytes never travel
/// under a pinned hash), write each git checkout as `destination/git/<commit>.tar`, and write the
/// manifest last. Every write goes through [`Contained`].
pub fn write_bundle(
    fetched: &[FetchedArtifact],
    git_sources: &[(GitRequest, GitCheckout)],
    destination: &Path,
) -> Result<(), FetchError> {
    let root = Contained::create(destination)?;
    let manifest = Path::new(BUNDLE_MANIFEST);
    // A previous manifest no longer describes what is being written.
    root.remove_file(manifest)?;
    for artifact in fetched {
        copy_verified(&root, artifact)?;
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
        root.create_dir_all(Path::new("git"))?;
        let file = root.create_file(Path::new(&archive), FileMode::Regular, Existing::Replace)?;
        let (writer, _) = crate::archive::write_tree_tar(
            &checkout.directory,
            std::io::BufWriter::new(file),
            &crate::archive::TarOptions::default(),
        )?;
        writer.into_inner().map_err(|error| {
            FetchError::Io(crate::path_io::PathIoError::new(
                "cannot write",
                root.path(Path::new(&archive)),
                error.into_error(),
            ))
        })?;
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
    root.write(manifest, &json, FileMode::Regular, Existing::Replace)?;
    Ok(())
}

/// Copy one cached artifact into the bundle, hashing what is copied.
fn copy_verified(root: &Contained, artifact: &FetchedArtifact) -> Result<(), FetchError> {
    let relative = Path::new("artifacts").join(artifact.request.filename.as_str());
    let Some(actual) = root.copy_verified(&artifact.path, &relative, &artifact.request.sha256)?
    else {
        return Ok(());
    };
    let _ = fs_err::remove_file(&artifact.path);
    Err(FetchError::ChangedInCache {
        name: artifact.request.name.clone(),
        version: artifact.request.version.clone(),
        path: artifact.path.clone(),
        actual: actual.to_string(),
    })
}
