//! The `release` stage: a new release of an application from the previous one's recipe.
//!
//! `akpkg release new --from 2026.2.2 --source authentik-X.tar.gz` walks these steps and writes
//! nothing before every check has run:
//! 1. the previous recipe, its patches and its lock (a built-in release or a recipe file);
//! 2. the new source: unpacked, its git tree id, top-level entries and file listing, its
//!    version, commit and commit date;
//! 3. what the source now requires ([`requirements`]): requires-python, Node's and npm's
//!    `engines`, go.mod's `go` line, against what the previous release pinned;
//! 4. an interpreter for that Python on this machine, or how to get one;
//! 5. each patch alone against the new tree: which still apply, and what is no longer there;
//! 6. the web UI's npm overrides ([`npm`]): which are still needed, and which locked tarballs
//!    the registry lacks (with the nearest published version);
//! 7. the Go modules of go.sum that no proxy has;
//! 8. the release's own build files (Dockerfiles, Makefile) that changed since the previous
//!    release;
//! 9. the new recipe, file listing and patch directory, written beside each other
//!    ([`write`]): the previous recipe with its version, pin and dates replaced and the
//!    overrides that are no longer needed left out.
//!
//! The lock is written afterwards by the lock stage (`akpkg lock --recipe NEW --source SRC`),
//! which the CLI runs when an interpreter was found; the report says what is left to do.

mod error;
mod npm;
mod report;
mod requirements;
mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use error::ReleaseError;
pub use npm::{MissingTarball, OverrideFinding};
pub use report::Action;
pub use requirements::Requirement;

use crate::assemble::{RecipeChoice, RecipeWithoutLock};
use crate::fetch::FetchOptions;
use crate::identity::TreeId;

/// What `release new` is asked to do.
#[derive(Debug, Clone)]
pub struct NewReleaseOptions {
    /// The previous release: a built-in version or a recipe file.
    pub previous: PreviousRecipe,
    /// The new release's source: a `.tar.gz` or a directory.
    pub source: PathBuf,
    /// The new version [default: the source's pyproject.toml `version`].
    pub version: Option<String>,
    /// The release's commit [default: the archive's `git archive` comment].
    pub commit: Option<String>,
    /// The tree id to pin, from a clone one trusts [default: the source's own].
    pub tree: Option<TreeId>,
    /// The commit's date [default: the archive's entry times, which `git archive` sets to it].
    pub source_date_epoch: Option<u64>,
    /// The directory holding `lockfiles/` and `patches/` (the new files go there).
    pub output: PathBuf,
    /// For the registry and proxy checks (one HTTP service, the Go proxies, the cache).
    pub fetch: FetchOptions,
    /// Skip the npm registry and Go proxy checks (no network).
    pub offline: bool,
}

/// Where the previous recipe is.
#[derive(Debug, Clone)]
pub enum PreviousRecipe {
    BuiltIn(String),
    File(PathBuf),
}

impl PreviousRecipe {
    fn choice(&self) -> RecipeChoice<'_> {
        match self {
            PreviousRecipe::BuiltIn(version) => RecipeChoice::Release(Some(version)),
            PreviousRecipe::File(path) => RecipeChoice::File(path),
        }
    }
}

/// One patch of the previous release against the new tree.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PatchFinding {
    pub patch: String,
    /// `None` when it applies; else what no longer fits.
    pub fails: Option<String>,
}

/// A build file of the release that changed since the previous one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BuildFileChange {
    pub path: String,
    /// `changed`, `added` or `removed`.
    pub change: &'static str,
}

/// The interpreter the new lock needs.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Interpreter {
    Found { python: PathBuf, version: String },
    Missing { requires: String, how: String },
}

/// What `release new` found and wrote: the report a person acts on.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct NewRelease {
    pub name: String,
    pub previous_version: String,
    pub version: String,
    pub commit: Option<String>,
    pub tree: TreeId,
    /// The source's own tree id, when it differs from the pinned one (`--tree`).
    pub source_tree_differs: Option<String>,
    pub source_date_epoch: u64,
    pub requirements: Vec<Requirement>,
    pub interpreter: Interpreter,
    pub patches: Vec<PatchFinding>,
    pub overrides: Vec<OverrideFinding>,
    pub missing_tarballs: Vec<MissingTarball>,
    /// Go modules (`PATH@VERSION (what)`) that no proxy has.
    pub unavailable_go_modules: Vec<String>,
    pub build_files: Vec<BuildFileChange>,
    /// The files written.
    pub recipe: PathBuf,
    pub files_listing: PathBuf,
    pub patch_directory: PathBuf,
    /// Where the lock goes (written by the lock stage).
    pub lock: PathBuf,
    /// The source, unpacked, for the lock stage (kept until this value is dropped).
    #[serde(skip)]
    pub source: UnpackedSource,
}

/// A source directory, possibly unpacked into a temporary directory owned here.
#[derive(Debug, Clone)]
pub struct UnpackedSource {
    pub root: PathBuf,
    _unpacked: Option<std::sync::Arc<tempfile::TempDir>>,
}

/// Steps 1 to 9 (see the module's documentation).
pub fn new_release(options: &NewReleaseOptions) -> Result<NewRelease, ReleaseError> {
    // 1. The previous recipe and its files.
    let previous = RecipeWithoutLock::load(options.previous.choice())?;
    let previous_files = crate::assemble::recipe_files(options.previous.choice())?;
    let previous_lock = crate::assemble::LoadedRecipe::load(options.previous.choice(), None)?.lock;

    // 2. The new source.
    let (source, facts) = unpack_source(&options.source, &options.fetch.network.limits)?;
    let version = match &options.version {
        Some(version) => version.clone(),
        None => requirements::project_version(&source.root)?,
    };
    let own_tree = crate::fetch::tree_id(&source.root)?;
    let tree = options.tree.clone().unwrap_or_else(|| own_tree.clone());
    let source_date_epoch = options
        .source_date_epoch
        .or(facts.entry_time)
        .ok_or_else(|| ReleaseError::NoDate {
            archive: options.source.clone(),
        })?;
    let commit = options.commit.clone().or(facts.commit);

    // 3. and 4. What it requires, and an interpreter for it.
    let requirements = requirements::compare(&previous.recipe, &previous_lock, &source.root)?;
    let interpreter = requirements::interpreter(&source.root, &options.fetch.cache);

    // 5. Each patch alone against the pristine tree.
    let patches = crate::patch::check_each(&previous.patches, &source.root)
        .into_iter()
        .map(|(patch, failure)| PatchFinding {
            patch,
            fails: failure.map(|error| error.to_string()),
        })
        .collect();

    // 6. and 7. The registry and the proxies.
    let (overrides, missing_tarballs) = match &previous.recipe.web {
        Some(web) if !options.offline => npm::check(web, &source.root, &options.fetch)?,
        _ => (Vec::new(), Vec::new()),
    };
    let unavailable_go_modules = match &previous.recipe.server {
        Some(server) if !options.offline => {
            let generated = server.api_client.as_ref().map(|client| &client.module);
            go_modules_no_proxy_has(&source.root, &options.fetch, generated)?
        }
        _ => Vec::new(),
    };

    // 8. The release's build files.
    let new_files = crate::fetch::file_ids(&source.root)?;
    let build_files = build_file_changes(previous_files.listing.as_deref(), &new_files);

    // 9. The new recipe, listing and patches.
    let written = write::write(&write::NewFiles {
        previous: &previous.recipe,
        previous_files: &previous_files,
        version: &version,
        commit: commit.as_deref(),
        tree: &tree,
        entries: &crate::fetch::top_level_ids(&source.root)?,
        listing: &new_files,
        source_date_epoch,
        unneeded_overrides: &overrides
            .iter()
            .filter(|finding| !finding.needed)
            .map(|finding| finding.package.clone())
            .collect::<Vec<_>>(),
        output: &options.output,
    })?;

    Ok(NewRelease {
        name: previous.recipe.name.clone(),
        previous_version: previous.recipe.version.clone(),
        version,
        commit,
        source_tree_differs: (own_tree != tree).then(|| own_tree.to_string()),
        tree,
        source_date_epoch,
        requirements,
        interpreter,
        patches,
        overrides,
        missing_tarballs,
        unavailable_go_modules,
        build_files,
        recipe: written.recipe,
        files_listing: written.listing,
        patch_directory: written.patch_directory,
        lock: written.lock,
        source,
    })
}

/// What a release archive says of itself: `git archive` stores the commit in a pax comment and
/// gives every entry the commit's time.
#[derive(Debug, Default)]
struct ArchiveFacts {
    commit: Option<String>,
    entry_time: Option<u64>,
}

fn unpack_source(
    path: &Path,
    limits: &crate::limits::Limits,
) -> Result<(UnpackedSource, ArchiveFacts), ReleaseError> {
    if path.is_dir() {
        let source = UnpackedSource {
            root: path.to_path_buf(),
            _unpacked: None,
        };
        return Ok((source, ArchiveFacts::default()));
    }
    let facts = archive_facts(path)?;
    let unpacked = tempfile::tempdir().map_err(ReleaseError::io(
        "cannot create a directory in",
        &std::env::temp_dir(),
    ))?;
    let root = crate::archive::unpack_tree(path, unpacked.path(), limits)?;
    let source = UnpackedSource {
        root,
        _unpacked: Some(std::sync::Arc::new(unpacked)),
    };
    Ok((source, facts))
}

fn archive_facts(path: &Path) -> Result<ArchiveFacts, ReleaseError> {
    let file = fs_err::File::open(path).map_err(ReleaseError::io("cannot read", path))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut facts = ArchiveFacts::default();
    let entries = archive
        .entries()
        .map_err(ReleaseError::io("cannot read", path))?;
    for entry in entries.take(64) {
        let mut entry = entry.map_err(ReleaseError::io("cannot read", path))?;
        if entry.header().entry_type() == tar::EntryType::XGlobalHeader {
            if let Ok(Some(extensions)) = entry.pax_extensions() {
                for extension in extensions.flatten() {
                    if extension.key() == Ok("comment") {
                        facts.commit = extension.value().ok().map(|value| value.trim().to_string());
                    }
                }
            }
            continue;
        }
        facts.entry_time = entry.header().mtime().ok().filter(|time| *time > 0);
        break;
    }
    Ok(facts)
}

/// The go.sum pins of the new source that no proxy has (fetched into the cache's proxy tree,
/// which the lock stage then reuses).
fn go_modules_no_proxy_has(
    source: &Path,
    options: &FetchOptions,
    generated: Option<&crate::identity::GoModulePath>,
) -> Result<Vec<String>, ReleaseError> {
    let Some(mut go) = crate::lock::read_go_module(source)? else {
        return Ok(Vec::new());
    };
    // The recipe generates this one from the schema: no proxy needs to have it.
    if let Some(generated) = generated {
        go.drop_module(generated);
    }
    let tree = crate::fetch::fetch_go_modules(&go, options, crate::fetch::Unavailable::Skip)?;
    Ok(modules_to_report(&tree.unavailable))
}

/// One `PATH@VERSION` per module version among the files no proxy has (listed as
/// `PATH@VERSION (its files)` and `(its go.mod)`).
fn modules_to_report(unavailable: &[String]) -> Vec<String> {
    let mut modules: Vec<String> = unavailable
        .iter()
        .map(|file| file.split(" (").next().unwrap_or(file).to_string())
        .collect();
    modules.dedup();
    modules
}

/// Dockerfiles and Makefiles whose blobs differ between the previous listing and the new tree.
fn build_file_changes(
    previous: Option<&str>,
    new: &BTreeMap<String, String>,
) -> Vec<BuildFileChange> {
    let is_build_file = |path: &str| {
        let name = path.rsplit('/').next().unwrap_or(path);
        name == "Dockerfile" || name.ends_with(".Dockerfile") || name == "Makefile"
    };
    let previous: BTreeMap<&str, &str> = previous
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(object, path)| (path, object))
        .collect();
    let mut paths: Vec<&str> = previous
        .keys()
        .copied()
        .chain(new.keys().map(String::as_str))
        .filter(|path| is_build_file(path))
        .collect();
    paths.sort_unstable();
    paths.dedup();
    paths
        .into_iter()
        .filter_map(|path| {
            let change = match (previous.get(path), new.get(path)) {
                (Some(old), Some(now)) if old == now => return None,
                (Some(_), Some(_)) => "changed",
                (None, Some(_)) => "added",
                (Some(_), None) => "removed",
                (None, None) => return None,
            };
            Some(BuildFileChange {
                path: path.to_string(),
                change,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_module_version_no_proxy_has_is_reported_once() {
        let unavailable = [
            "example.com/missing@v1.0.0 (its files)",
            "example.com/missing@v1.0.0 (its go.mod)",
            "goauthentik.io/api/v3@v3.2026020.17 (its files)",
            "goauthentik.io/api/v3@v3.2026020.17 (its go.mod)",
            "goauthentik.io/api/v3/extra@v3.0.0 (its files)",
        ]
        .map(String::from);
        // The generated module never reaches this list: it is dropped before the fetch (see
        // `LockedGo::drop_module`'s test).
        assert_eq!(
            modules_to_report(&unavailable),
            [
                "example.com/missing@v1.0.0",
                "goauthentik.io/api/v3@v3.2026020.17",
                "goauthentik.io/api/v3/extra@v3.0.0"
            ]
        );
    }

    #[test]
    fn build_files_that_moved_or_changed_are_listed() {
        let previous = "100644 blob aaa\tDockerfile\n100644 blob bbb\tMakefile\n100644 blob ccc\tREADME.md\n100644 blob ddd\tweb/Makefile\n";
        let new = BTreeMap::from([
            ("Makefile".to_string(), "100644 blob b2".to_string()),
            ("README.md".to_string(), "100644 blob c2".to_string()),
            ("web/Makefile".to_string(), "100644 blob ddd".to_string()),
            (
                "lifecycle/container/Dockerfile".to_string(),
                "100644 blob a2".to_string(),
            ),
        ]);
        let changes: Vec<(String, &str)> = build_file_changes(Some(previous), &new)
            .into_iter()
            .map(|change| (change.path, change.change))
            .collect();
        assert_eq!(
            changes,
            [
                ("Dockerfile".to_string(), "removed"),
                ("Makefile".to_string(), "changed"),
                ("lifecycle/container/Dockerfile".to_string(), "added"),
            ]
        );
    }
}
