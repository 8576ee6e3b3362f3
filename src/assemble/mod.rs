//! The `assemble` stage: one command from an application's source to a verified, relocatable
//! prefix.
//!
//! 1. check that the interpreter fits akpkg's lock, and find the go command the server needs;
//! 2. beside the prefix, remove the stagings that dead runs left;
//! 3. stop if the prefix already is what this run would make (its manifest records the same
//!    digest of every input, and its tree the stamp taken when it was verified: `incremental`);
//!    otherwise find the java the web UI's API client generator needs, and stage there a
//!    working copy of the source, checked against the recipe's tree pin, and the new prefix;
//! 4. apply the recipe's patches to the working copy;
//! 5. fetch every artifact, build-environment wheel, git source, Go module and npm tarball of
//!    the lock (verified);
//! 6. build what the lock builds, in its pinned environments (cached builds are reused), the
//!    recipe's Go server from the same tree with the modules go.sum pins (`server`), and its
//!    web UI with the pinned Node and npm, offline (`web`);
//! 7. install the wheels, byte-compiled, into the staged prefix;
//! 8. copy the application tree and the web UI (built, or `--web-dist`), write `bin/ak`, the
//!    manifest and the SBOM;
//! 9. verify the staged prefix (RECORDs, imports, Django), and stamp the verified tree;
//! 10. move it into place: atomically exchanged with an existing prefix. Any failure before
//!     leaves the old prefix untouched and removes the staging. The old prefix is removed with
//!     the staging when the caller drops the summary, after it reported the result.

mod error;
mod incremental;
mod native;
mod recipe;
mod sbom;
mod server;
mod verify;
mod web;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use serde::Serialize;

use crate::build::{self, BuildOptions, BuildRequest, Pin, SourceInput};
use crate::fetch::{self, FetchOptions};
use crate::identity::Sha256;
use crate::install::{self, InstallOptions, Layout, LinkMode, WheelToInstall};
use crate::lock::AkpkgLock;
use crate::tags::WheelFilename;
use crate::target::Target;

pub use error::AssembleError;
pub use native::{NativeAudit, audit as audit_native, not_carried as native_not_carried};
pub use recipe::{DEFAULT_RECIPE, LoadedRecipe, Recipe, RecipeWithoutLock, SourcePin};
pub use verify::{VerifyReport, check_server, site_packages, verify_prefix};
pub use web::WebChoice;

/// The manifest's file name inside the prefix.
pub const MANIFEST: &str = "akpkg-manifest.json";

/// The SBOM's file name inside the prefix.
pub const SBOM: &str = "sbom.cdx.json";

const AK_LAUNCHER: &str = include_str!("ak.sh");

/// Where the application's source comes from.
#[derive(Debug, Clone)]
pub enum SourceArgument {
    /// A source tree or a `.tar.gz` of one (such as the forge's release archive).
    Path(PathBuf),
    /// Nothing given: the recipe's URL.
    FromRecipe,
}

/// Everything `assemble` needs besides the recipe.
#[derive(Debug, Clone)]
pub struct AssembleOptions {
    pub prefix: PathBuf,
    pub source: SourceArgument,
    pub runtime_python: Option<PathBuf>,
    /// Whether the prefix carries its interpreter and libraries (see `closure`).
    pub closure: crate::closure::Closure,
    pub web_dist: Option<PathBuf>,
    pub allow_unverified_source: bool,
    pub compile: bool,
    pub fetch: FetchOptions,
    pub build: BuildOptions,
    /// `NAME:KEY=VALUE` config settings, resolved per distribution by the caller.
    pub config_settings: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    /// Rebuild even when the prefix is already what this assemble would make.
    pub force: bool,
    pub server: ServerChoice,
    pub web: WebChoice,
}

/// Whether and with what to build the recipe's Go server.
#[derive(Debug, Clone)]
pub struct ServerChoice {
    /// Build it when the recipe has one (`--no-server` leaves it out).
    pub build: bool,
    /// `--go`: the go command [default: `go` on PATH].
    pub go_command: Option<PathBuf>,
    /// That command, already checked (by the pre-flight), so it is not probed twice.
    pub toolchain: Option<crate::server::Toolchain>,
}

/// What the server stage put into the prefix.
#[derive(Debug, Clone, Serialize)]
pub struct ServerSummary {
    /// Relative to the prefix (`bin/authentik`).
    pub binary: String,
    pub go: String,
    /// Go modules linked into it.
    pub modules: usize,
    pub from_cache: bool,
    /// Taken from the remote cache by this run.
    pub from_remote_cache: bool,
}

/// What the web stage put into the prefix.
#[derive(Debug, Clone, Serialize)]
pub struct WebSummary {
    /// Relative to the prefix (`web/dist`).
    pub output: String,
    pub files: usize,
    /// npm packages installed for the build.
    pub packages: usize,
    pub overrides: usize,
    pub from_cache: bool,
    /// Taken from the remote cache by this run.
    pub from_remote_cache: bool,
}

/// What an assemble did.
#[derive(Debug, Clone, Serialize)]
pub struct AssembleSummary {
    pub prefix: PathBuf,
    pub installed: usize,
    pub built: usize,
    pub built_from_cache: usize,
    pub downloaded: usize,
    /// Of `downloaded`, the artifacts taken from the remote cache.
    pub downloaded_from_remote_cache: usize,
    /// Of `built_from_cache`, the wheels taken from the remote cache.
    pub built_from_remote_cache: usize,
    pub bytes: u64,
    pub stages: Vec<StageTime>,
    pub warnings: Vec<String>,
    pub verify: VerifySummary,
    /// The bytes of the prefix's regular files (0 when nothing was done).
    pub size_bytes: u64,
    /// The prefix already was what this assemble would make: nothing was done.
    pub up_to_date: bool,
    /// The Go server, when the recipe has one and it was built.
    pub server: Option<ServerSummary>,
    /// The web UI, when the recipe has one and it was built.
    pub web: Option<WebSummary>,
    /// The replaced prefix and the staging it sits in, removed when this is dropped: after
    /// the result is reported, off the critical path (or by the next run, if this one dies).
    #[serde(skip)]
    pub leftover: Option<std::sync::Arc<Leftover>>,
}

/// A staging directory to remove, locked so that no concurrent run touches it meanwhile.
#[derive(Debug)]
pub struct Leftover {
    /// Removed (with the old prefix in it) when dropped.
    _directory: tempfile::TempDir,
    /// Released after the removal: fields drop in order.
    _lock: fs_err::File,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifySummary {
    pub distributions: usize,
    pub files: usize,
    pub modules: usize,
    pub django_apps: Option<usize>,
    /// The import check's result was carried over (see `incremental::ImportProof`).
    pub imports_proven_before: bool,
}

pub use crate::progress::{Progress, StageTime};

/// The stages' times, reported as each starts and ends.
struct Stages<'a> {
    progress: &'a dyn Progress,
    started: Instant,
    done: Vec<StageTime>,
}

impl Stages<'_> {
    fn start(&mut self, stage: &'static str, total: Option<usize>) {
        self.started = Instant::now();
        self.progress.stage_started(stage, total);
    }

    fn finish(&mut self, stage: &'static str, detail: String) {
        let time = StageTime {
            stage,
            seconds: self.started.elapsed().as_secs_f64(),
            detail,
        };
        self.progress.stage_finished(&time);
        self.done.push(time);
        self.started = Instant::now();
    }
}

/// Warnings kept for the summary and reported when they arise.
struct Warnings<'a> {
    progress: &'a dyn Progress,
    list: Vec<String>,
}

impl Warnings<'_> {
    fn push(&mut self, message: String) {
        self.progress.warning(&message);
        self.list.push(message);
    }
}

/// 1. The interpreter must be the lock's Python and accept every locked wheel.
fn check_target(lock: &AkpkgLock, target: &Target) -> Result<(), AssembleError> {
    let release = target.python_version.release();
    let version = format!(
        "{}.{}",
        release.first().copied().unwrap_or(0),
        release.get(1).copied().unwrap_or(0)
    );
    if version != lock.target.python_version {
        return Err(AssembleError::Target(format!(
            "the lock is for Python {} ({}), the interpreter is Python {version}",
            lock.target.python_version, lock.target.platform
        )));
    }
    let unfit: Vec<&str> = lock
        .runtime
        .iter()
        .filter(|file| file.filename.ends_with(".whl"))
        .filter(|file| {
            WheelFilename::from_str(&file.filename)
                .map_or(true, |wheel| target.tags.rank(&wheel).is_none())
        })
        .map(|file| file.filename.as_str())
        .collect();
    if let Some(first) = unfit.first() {
        return Err(AssembleError::Target(format!(
            "{} locked wheels do not install here, such as {first} (the lock's platform is {})",
            unfit.len(),
            lock.target.platform
        )));
    }
    Ok(())
}

/// 2. The source in `work`, checked against the recipe's pin; returns its root.
fn stage_source(
    recipe: &Recipe,
    source_files: Option<&str>,
    options: &AssembleOptions,
    work: &Path,
    warnings: &mut Warnings,
) -> Result<(PathBuf, crate::identity::TreeId), AssembleError> {
    let root = work.join("source");
    fs_err::create_dir_all(&root).map_err(AssembleError::io("cannot create", &root))?;
    let given = match &options.source {
        SourceArgument::Path(path) => path.clone(),
        SourceArgument::FromRecipe => {
            let url = recipe.source.url.as_deref().ok_or_else(|| {
                AssembleError::Recipe("the recipe has no source URL; give --source".to_string())
            })?;
            let archive = work.join("source.tar.gz");
            fetch::download_unpinned(url, &archive, &options.fetch).map_err(|error| {
                AssembleError::SourceDownload {
                    url: url.to_string(),
                    detail: error.to_string(),
                }
            })?;
            archive
        }
    };
    if given.is_dir() {
        crate::archive::copy_tree(&given, &root, &[".git"])?;
    } else {
        crate::archive::unpack_tar(&given, &root)?;
    }
    // A forge's archive wraps the tree in one directory (`authentik-version-2025.12.4/`).
    let entries: Vec<PathBuf> = fs_err::read_dir(&root)
        .map_err(AssembleError::io("cannot read", &root))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    let source = match entries.as_slice() {
        [only] if only.is_dir() && !given.is_dir() => only.clone(),
        _ => root,
    };
    let actual = fetch::tree_id(&source)?;
    if actual != recipe.source.tree {
        let difference = first_difference(&source, &recipe.source.entries, source_files)?;
        if options.allow_unverified_source {
            warnings.push(format!(
                "the source's tree is {actual}, not the recipe's {} ({difference}); built anyway (--allow-unverified-source)",
                recipe.source.tree
            ));
        } else {
            return Err(AssembleError::SourceMismatch(Box::new(
                error::SourceMismatch {
                    name: recipe.name.clone(),
                    version: recipe.version.clone(),
                    actual: actual.to_string(),
                    expected: recipe.source.tree.clone(),
                    difference,
                },
            )));
        }
    }
    Ok((source, actual))
}

/// The first file whose id differs from the release's listing, or that one side lacks; without
/// a listing, the first top-level entry that differs from the recipe's ids.
fn first_difference(
    source: &Path,
    expected: &BTreeMap<String, String>,
    listing: Option<&str>,
) -> Result<String, AssembleError> {
    let (actual, expected) = match listing {
        Some(listing) => (fetch::file_ids(source)?, parse_listing(listing)),
        None if expected.is_empty() => {
            return Ok("the recipe lists no entries to compare".to_string());
        }
        None => (fetch::top_level_ids(source)?, expected.clone()),
    };
    let names: std::collections::BTreeSet<&String> = actual.keys().chain(expected.keys()).collect();
    for name in names {
        match (actual.get(name), expected.get(name)) {
            (Some(a), Some(e)) if a == e => continue,
            (Some(_), Some(_)) => return Ok(format!("`{name}` differs")),
            (Some(_), None) => return Ok(format!("`{name}` is not in the release")),
            (None, _) => return Ok(format!("`{name}` is missing")),
        }
    }
    Ok("no entry differs (the pin is wrong)".to_string())
}

/// `git ls-tree -r` lines (`MODE blob ID<TAB>PATH`): path → `MODE blob ID`.
fn parse_listing(listing: &str) -> BTreeMap<String, String> {
    listing
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(object, path)| (path.to_string(), object.to_string()))
        .collect()
}

fn pins_of(environment: &crate::lock::LockedEnvironment) -> Result<Vec<Pin>, AssembleError> {
    environment
        .packages
        .iter()
        .map(|package| {
            Ok(Pin {
                name: pep508_rs::PackageName::from_str(&package.name)
                    .map_err(|error| AssembleError::Recipe(format!("lock: {error}")))?,
                version: pep440_rs::Version::from_str(&package.version)
                    .map_err(|error| AssembleError::Recipe(format!("lock: {error}")))?,
                filename: package.filename.clone(),
                url: package.url.clone(),
                sha256: package.sha256.clone(),
            })
        })
        .collect()
}

/// The manifest written into the prefix.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Manifest<'a> {
    akpkg: &'static str,
    recipe: String,
    source: serde_json::Value,
    target: serde_json::Value,
    runtime_python: String,
    settings_module: Option<&'a str>,
    verify_environment: &'a BTreeMap<String, String>,
    distributions: Vec<serde_json::Value>,
    patches: Vec<serde_json::Value>,
    warnings: &'a [String],
    /// The digest of every input that determines the prefix's bytes (see `incremental`).
    input_digest: Sha256,
    /// The `SOURCE_DATE_EPOCH` it was built with, which `layer` takes too.
    source_date_epoch: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<server::ServerRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    web: Option<web::WebRecord>,
    /// What the native code needs from the machine it runs on (see `native`).
    native: serde_json::Value,
}

/// The manifest's `native`, as far as `verify` needs it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct NativeSettings {
    #[serde(default)]
    pub self_contained: bool,
}

/// What `verify` needs from a prefix's manifest.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ManifestSettings {
    pub settings_module: Option<String>,
    #[serde(default)]
    pub native: NativeSettings,
    #[serde(default)]
    pub verify_environment: BTreeMap<String, String>,
    /// The Go server's binary and its hash, when the prefix has one.
    #[serde(default)]
    pub server: Option<verify::ServerPin>,
}

/// A prefix's manifest as JSON, for labels and SBOMs.
pub fn read_manifest(prefix: &Path) -> Result<serde_json::Value, AssembleError> {
    let path = prefix.join(MANIFEST);
    let text = fs_err::read_to_string(&path).map_err(AssembleError::io("cannot read", &path))?;
    serde_json::from_str(&text)
        .map_err(|error| AssembleError::Verify(format!("{}: {error}", path.display())))
}

/// Read the settings `verify` needs from `PREFIX/akpkg-manifest.json`.
pub fn manifest_settings(prefix: &Path) -> Result<ManifestSettings, AssembleError> {
    let path = prefix.join(MANIFEST);
    let text = fs_err::read_to_string(&path).map_err(AssembleError::io("cannot read", &path))?;
    serde_json::from_str(&text)
        .map_err(|error| AssembleError::Verify(format!("{}: {error}", path.display())))
}

/// Run the whole pipeline (see the module's documentation).
pub fn assemble(
    loaded: &LoadedRecipe,
    target: &Target,
    options: &AssembleOptions,
    progress: &dyn Progress,
) -> Result<AssembleSummary, AssembleError> {
    run_stages(loaded, target, options, progress).map_err(|error| {
        // A full disk can strike in any stage; say so once, plainly, instead of as one
        // stage's I/O error among many.
        if error::is_storage_full(&error) {
            AssembleError::NoSpace {
                prefix: options.prefix.clone(),
                detail: error.to_string(),
            }
        } else {
            error
        }
    })
}

/// The no-op check alone, before any pre-flight (a prefix that is up to date needs no compiler
/// or library, and probing them would be most of the answer's time): the summary of a run that
/// finds nothing to do, or `None` when `assemble` has work to do or a problem to report (it
/// then checks again, and says why).
pub fn up_to_date(
    loaded: &LoadedRecipe,
    target: &Target,
    options: &AssembleOptions,
    progress: &dyn Progress,
) -> Result<Option<AssembleSummary>, AssembleError> {
    let mut stages = Stages {
        progress,
        started: Instant::now(),
        done: Vec::new(),
    };
    if options.force || check_target(&loaded.lock, target).is_err() {
        return Ok(None);
    }
    let Ok(server_plan) = server::plan(loaded, options) else {
        return Ok(None);
    };
    let go_version = server_plan
        .as_ref()
        .map(|plan| plan.toolchain.version.as_str());
    let prefix = std::path::absolute(&options.prefix)
        .map_err(AssembleError::io("cannot resolve", &options.prefix))?;
    if !local_state(loaded, target, options, &prefix, go_version)?.1 {
        return Ok(None);
    }
    // As a run that did work would: what an interrupted one left beside the prefix goes.
    if let (Some(parent), Some(name)) = (prefix.parent(), prefix.file_name()) {
        let staging_prefix = format!(".{}.akpkg-staging-", name.to_string_lossy());
        remove_abandoned_stagings(parent, &staging_prefix);
    }
    stages.finish("check", "up to date".to_string());
    Ok(Some(AssembleSummary::up_to_date(prefix, stages.done)))
}

/// This machine's digest of the inputs, and whether the prefix already is what they make (never
/// with `--force`): the no-op check of both [`up_to_date`] and a full run.
fn local_state(
    loaded: &LoadedRecipe,
    target: &Target,
    options: &AssembleOptions,
    prefix: &Path,
    go_version: Option<&str>,
) -> Result<(Option<crate::identity::Sha256>, bool), AssembleError> {
    let local_digest = incremental::local_digest(loaded, target, options, go_version)?;
    let record = incremental::Record::path(&options.fetch.cache_dir, prefix);
    let unchanged = !options.force
        && local_digest
            .as_ref()
            .is_some_and(|digest| incremental::is_up_to_date(prefix, &record, digest));
    Ok((local_digest, unchanged))
}

fn run_stages(
    loaded: &LoadedRecipe,
    target: &Target,
    options: &AssembleOptions,
    progress: &dyn Progress,
) -> Result<AssembleSummary, AssembleError> {
    let recipe = &loaded.recipe;
    let lock = &loaded.lock;
    let mut stages = Stages {
        progress,
        started: Instant::now(),
        done: Vec::new(),
    };
    let mut warnings = Warnings {
        progress,
        list: Vec::new(),
    };

    // 1.
    check_target(lock, target)?;
    let server_plan = server::plan(loaded, options)?;
    let go_version = server_plan
        .as_ref()
        .map(|plan| plan.toolchain.version.as_str());

    // 2. Staging goes beside the prefix, so the final move is a rename on one file system.
    let prefix = std::path::absolute(&options.prefix)
        .map_err(AssembleError::io("cannot resolve", &options.prefix))?;
    let parent = prefix.parent().ok_or_else(|| {
        AssembleError::Recipe(format!("{} has no parent directory", prefix.display()))
    })?;
    create_parent(&prefix, parent)?;
    if !options.force {
        refuse_foreign_prefix(&prefix)?;
    }
    let name = prefix
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging_prefix = format!(".{name}.akpkg-staging-");
    remove_abandoned_stagings(parent, &staging_prefix);

    // 3. Nothing to do when the prefix already is what this run would make.
    let (local_digest, unchanged) = local_state(loaded, target, options, &prefix, go_version)?;
    let record = incremental::Record::path(&options.fetch.cache_dir, &prefix);
    if unchanged {
        stages.finish("check", "up to date".to_string());
        return Ok(AssembleSummary::up_to_date(prefix, stages.done));
    }
    // After the no-op check: starting java to find it costs a fifth of a second.
    let web_plan = web::plan(loaded, options)?;

    let staging_directory = tempfile::Builder::new()
        .prefix(&staging_prefix)
        .tempdir_in(parent)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => {
                AssembleError::PrefixParentNotWritable {
                    prefix: prefix.clone(),
                    parent: parent.to_path_buf(),
                    kind: source.kind(),
                }
            }
            _ => AssembleError::Io {
                action: "cannot create a staging directory in",
                path: parent.to_path_buf(),
                source,
            },
        })?;
    // Held for the whole run: a later run removes only stagings whose lock is free (their
    // process died, even by SIGKILL).
    let staging_lock = lock_file(&staging_directory.path().join(STAGING_LOCK), false)?;
    let work = staging_directory.path().join("work");
    let staged = staging_directory.path().join("prefix");
    fs_err::create_dir_all(&work).map_err(AssembleError::io("cannot create", &work))?;
    stages.start("source", None);
    let (source, source_tree) = stage_source(
        recipe,
        loaded.source_files.as_deref(),
        options,
        &work,
        &mut warnings,
    )?;
    stages.finish("source", format!("{} {}", recipe.name, recipe.version));

    // 4.
    stages.start("patch", None);
    let applied = crate::patch::apply(&loaded.patches, &source, false)?;
    stages.finish("patch", format!("{} patches", applied.len()));

    // 5.
    stages.start("fetch", None);
    let (requests, git_requests) = fetch::lock_requests(lock);
    let mut fetch_options = options.fetch.clone();
    for git in &lock.git {
        fetch_options
            .git_trees
            .entry(git.commit.clone())
            .or_insert_with(|| git.tree.clone());
    }
    let fetched = fetch::fetch_all(
        &requests,
        &fetch_options,
        &crate::progress::Downloads(progress),
    )?;
    let checkouts = fetch::fetch_git_sources(&git_requests, &fetch_options)?;
    let (module_tree, server_from_remote_cache) = match &server_plan {
        Some(plan) => {
            let (tree, from_remote_cache) = server::fetch_modules(
                plan,
                &source,
                &source_tree,
                &applied,
                options,
                &fetch_options,
            )?;
            (Some(tree), from_remote_cache)
        }
        None => (None, false),
    };
    let web_inputs = match &web_plan {
        Some(plan) => Some(web::fetch(
            plan,
            &source,
            lock.web.as_ref(),
            recipe.source.commit.as_deref(),
            options,
            &crate::progress::Downloads(progress),
        )?),
        None => None,
    };
    let downloaded = fetched
        .iter()
        .filter(|artifact| artifact.downloaded)
        .count()
        + web_inputs
            .as_ref()
            .map_or(0, |inputs| inputs.tarballs.downloaded);
    let downloaded_from_remote_cache = fetched
        .iter()
        .filter(|artifact| artifact.from_remote_cache)
        .count();
    let bytes: u64 = fetched
        .iter()
        .filter(|artifact| artifact.downloaded)
        .filter_map(|artifact| fs_err::metadata(&artifact.path).ok().map(|m| m.len()))
        .sum();
    stages.finish(
        "fetch",
        format!(
            "{} files, {downloaded} downloaded{}{}",
            fetched.len(),
            remote_cache_note(downloaded_from_remote_cache),
            module_tree
                .as_ref()
                .map_or_else(String::new, |tree| format!(
                    "; {} Go module files, {} fetched",
                    tree.files, tree.fetched
                ))
                + &web_inputs
                    .as_ref()
                    .map_or_else(String::new, |inputs| format!(
                        "; {} npm tarballs, {} downloaded",
                        inputs.tarballs.tarballs, inputs.tarballs.downloaded
                    ))
        ),
    );

    // 6.
    // An sdist's bytes feed its build and its build-cache key: re-hash the few sdists on every
    // run, so a file that changed in the cache is caught (and removed) rather than built.
    let artifact_cache = fetch::ArtifactCache::new(&fetch_options.cache_dir);
    let checked_path = |sha256: &str| {
        fetched
            .iter()
            .find(|artifact| artifact.request.sha256 == sha256)
            .map(|artifact| artifact_cache.check(&artifact.request))
            .transpose()
    };
    let mut requests_to_build = Vec::new();
    for locked in &lock.build {
        let (_, environment) = lock.environment_of(&locked.name).ok_or_else(|| {
            AssembleError::Recipe(format!("lock: no environment for `{}`", locked.name))
        })?;
        let input = match locked.kind.as_str() {
            "sdist" => {
                let file = lock
                    .runtime
                    .iter()
                    .find(|file| {
                        file.name == locked.name
                            && file.version == locked.version
                            && !file.filename.ends_with(".whl")
                    })
                    .ok_or_else(|| {
                        AssembleError::Recipe(format!("lock: no sdist for `{}`", locked.name))
                    })?;
                SourceInput::Sdist(checked_path(&file.sha256)?.ok_or_else(|| {
                    AssembleError::Recipe(format!("`{}`: its sdist was not fetched", locked.name))
                })?)
            }
            "git" => {
                let (git, checkout) = lock
                    .git
                    .iter()
                    .zip(&checkouts)
                    .find(|(git, _)| git.name == locked.name)
                    .ok_or_else(|| {
                        AssembleError::Recipe(format!("lock: no git source for `{}`", locked.name))
                    })?;
                SourceInput::Directory(match &git.subdirectory {
                    Some(subdirectory) => checkout.directory.join(subdirectory),
                    None => checkout.directory.clone(),
                })
            }
            _ => SourceInput::Directory(source.join(locked.path.as_deref().unwrap_or("."))),
        };
        requests_to_build.push(BuildRequest {
            name: locked.name.clone(),
            source: input,
            environment: Some(pins_of(environment)?),
            config_settings: options
                .config_settings
                .get(&locked.name)
                .cloned()
                .unwrap_or_default(),
        });
    }
    stages.start("build", Some(requests_to_build.len()));
    let results =
        build::build_wheels_reporting(&requests_to_build, target, &options.build, progress);
    let mut built = Vec::new();
    let mut failures = Vec::new();
    for (request, result) in requests_to_build.iter().zip(results) {
        match result {
            Ok(wheel) => built.push(wheel),
            Err(error) => failures.push(format!("`{}`: {error}", request.name)),
        }
    }
    if !failures.is_empty() {
        return Err(AssembleError::Builds {
            count: failures.len(),
            list: failures.join("\n\n"),
        });
    }
    let from_cache = built.iter().filter(|wheel| wheel.from_cache).count();
    let built_from_remote_cache = built.iter().filter(|wheel| wheel.from_remote_cache).count();
    stages.finish(
        "build",
        format!(
            "{} wheels, {from_cache} from the build cache{}",
            built.len(),
            remote_cache_note(built_from_remote_cache)
        ),
    );

    let built_server = match (&server_plan, &module_tree) {
        (Some(plan), Some(tree)) => {
            stages.start("server", None);
            let built = server::build(
                plan,
                &source,
                &source_tree,
                &applied,
                &tree.directory,
                options,
            )?;
            stages.finish(
                "server",
                format!(
                    "{} ({}, {} Go modules{})",
                    plan.recipe.package,
                    plan.toolchain.version,
                    built.modules.len(),
                    if built.from_cache {
                        ", from the build cache"
                    } else {
                        ""
                    }
                ),
            );
            Some(built)
        }
        _ => None,
    };

    let built_web = match (&web_plan, &web_inputs) {
        (Some(plan), Some(inputs)) => {
            stages.start("web", None);
            let built = web::build(
                plan,
                inputs,
                &source,
                recipe.source.commit.as_deref(),
                options,
            )?;
            for warning in &built.warnings {
                warnings.push(warning.to_string());
            }
            stages.finish(
                "web",
                format!(
                    "{} npm packages, {} overrides{}",
                    inputs.packages.len(),
                    built.overrides.len(),
                    if built.from_cache {
                        ", from the build cache"
                    } else {
                        ""
                    }
                ),
            );
            Some(built)
        }
        _ => None,
    };

    // 7.
    stages.start("install", None);
    let layout = Layout::staged(target, &prefix, &staged, options.runtime_python.as_deref())?;
    let mut wheels: Vec<WheelToInstall> = fetched
        .iter()
        .filter(|artifact| {
            artifact.request.filename.ends_with(".whl")
                && lock
                    .runtime
                    .iter()
                    .any(|file| file.sha256 == artifact.request.sha256)
        })
        .map(|artifact| WheelToInstall {
            path: artifact.path.clone(),
            filename: Some(artifact.request.filename.to_string()),
            sha256: Some(artifact.request.sha256.clone()),
            requested: false,
            direct_url: None,
        })
        .collect();
    wheels.extend(built.iter().map(|wheel| WheelToInstall {
        path: wheel.path.clone(),
        filename: Some(wheel.filename.clone()),
        sha256: wheel.sha256.parse().ok(),
        requested: wheel.name == recipe.name,
        direct_url: None,
    }));
    let installed = install::install_wheels_reporting(
        progress,
        &layout,
        &wheels,
        &InstallOptions {
            cache_dir: options.build.cache_dir.clone(),
            link_mode: LinkMode::Copy,
            verify_record: true,
            compile: options.compile,
            absolute_shebangs: false,
        },
    )?;
    stages.finish("install", format!("{} distributions", installed.len()));

    stages.start("copy", None);
    // 8. The application tree, web assets, bin/ak.
    for relative in &recipe.copy {
        let from = source.join(relative);
        let to = staged.join(relative);
        if from.is_dir() {
            fs_err::create_dir_all(&to).map_err(AssembleError::io("cannot create", &to))?;
            crate::archive::copy_tree(&from, &to, &["__pycache__"])?;
        } else if from.is_file() {
            let staging = crate::contained::Contained::open(&staged)?;
            if let Some(parent) = Path::new(relative).parent()
                && !parent.as_os_str().is_empty()
            {
                staging.create_dir_all(parent)?;
            }
            staging.place(&from, Path::new(relative), crate::contained::LinkMode::Copy)?;
        } else {
            return Err(AssembleError::Recipe(format!(
                "the recipe copies `{relative}`, which the source does not have"
            )));
        }
    }
    let web_record = match (&options.web_dist, &web_plan, &web_inputs, &built_web) {
        (Some(web_dist), ..) => {
            let to = staged.join("web/dist");
            fs_err::create_dir_all(&to).map_err(AssembleError::io("cannot create", &to))?;
            crate::archive::copy_tree(web_dist, &to, &[])?;
            None
        }
        (None, Some(plan), Some(inputs), Some(built)) => {
            let placed = web::place(plan, built, &staged)?;
            Some(web::record(plan, inputs, built, placed))
        }
        _ => {
            warnings.push(
                "no web UI assets (web/dist): the recipe builds none or --no-web was given; give --web-dist DIR with a built web UI. The API and workers work without it".to_string(),
            );
            None
        }
    };
    let server_binary = match (&server_plan, &built_server) {
        (Some(plan), Some(built)) => Some(server::place(plan, built, &staged)?),
        _ => None,
    };
    // authentik's own `ak` console script needs lifecycle/ inside site-packages; this one
    // finds the application tree at the prefix's root.
    install::replace_installed_file(
        &layout,
        &layout.scheme.scripts.join("ak"),
        ak_launcher(recipe)?.as_bytes(),
        0o755,
    )?;

    stages.finish("copy", format!("{} paths, bin/ak", recipe.copy.len()));

    // 9. The interpreter and the native libraries: the prefix made to run elsewhere.
    stages.start("closure", None);
    let closure = crate::closure::close(
        &staged,
        &crate::closure::ClosureOptions {
            closure: options.closure,
            python: &layout.build_python,
            site_packages: &layout.scheme.purelib,
            compile: options.compile,
            cache_dir: &options.build.cache_dir,
        },
    )?;
    stages.finish("closure", closure_detail(&closure));

    // 10. What the prefix is: the manifest and the SBOM.
    stages.start("record", None);
    let native_audit = native::audit(&staged)?;
    let runtime_python = match &closure.interpreter {
        Some(interpreter) => interpreter.executable.clone(),
        None => layout.runtime_python.display().to_string(),
    };
    let manifest = Manifest {
        akpkg: env!("CARGO_PKG_VERSION"),
        // The recipe's file name only: a path would name the build machine.
        recipe: format!(
            "{} {} ({})",
            recipe.name,
            recipe.version,
            Path::new(&loaded.origin)
                .file_name()
                .map_or_else(String::new, |name| name.to_string_lossy().into_owned())
        ),
        source: serde_json::json!({
            "commit": recipe.source.commit,
            // The tree that was built; "verified" says whether it is the recipe's pin.
            "tree": source_tree,
            "recipe-tree": recipe.source.tree,
            "verified": source_tree == recipe.source.tree,
        }),
        target: serde_json::json!({
            "python-version": lock.target.python_version,
            "platform": lock.target.platform,
        }),
        runtime_python: runtime_python.clone(),
        settings_module: recipe.settings_module.as_deref(),
        verify_environment: &recipe.verify_environment,
        distributions: installed
            .iter()
            .zip(&wheels)
            .map(|(distribution, wheel)| {
                let how = built
                    .iter()
                    .find(|built| {
                        wheel
                            .sha256
                            .as_ref()
                            .is_some_and(|sha256| built.sha256 == *sha256)
                    })
                    .map_or("wheel".to_string(), |built| {
                        format!("built ({}) from {}", built.backend, built.source)
                    });
                serde_json::json!({
                    "name": distribution.name.to_string(),
                    "version": distribution.version.to_string(),
                    "wheel-sha256": wheel.sha256,
                    "obtained": how,
                })
            })
            .collect(),
        patches: applied
            .iter()
            .map(|patch| serde_json::json!({ "patch": patch.origin, "sha256": patch.sha256, "files": patch.files }))
            .collect(),
        warnings: &warnings.list,
        input_digest: incremental::input_digest(loaded, target, options, &source_tree, go_version),
        server: match (&server_plan, &built_server, server_binary) {
            (Some(plan), Some(built), Some(binary)) => Some(server::record(plan, built, binary)?),
            _ => None,
        },
        web: web_record,
        native: native_manifest(&native_audit, &closure),
        source_date_epoch: crate::timestamp::source_date_epoch(),
    };
    let staging = crate::contained::Contained::open(&staged)?;
    write_manifest(&staging, &manifest)?;
    let versions: Vec<String> = installed
        .iter()
        .map(|distribution| distribution.version.to_string())
        .collect();
    let components: Vec<sbom::SbomComponent<'_>> = installed
        .iter()
        .zip(&wheels)
        .zip(&versions)
        .map(|((distribution, wheel), version)| sbom::SbomComponent {
            name: distribution.name.as_ref(),
            version,
            wheel_sha256: wheel.sha256.as_deref().unwrap_or_default(),
        })
        .collect();
    let sbom_server = manifest.server.as_ref().map(|record| sbom::SbomServer {
        binary: &record.binary,
        sha256: record.sha256.as_str(),
        go: &record.go,
        modules: &record.modules,
    });
    let document = sbom::sbom(
        (&recipe.name, &recipe.version),
        &source_tree,
        lock,
        &components,
        sbom_server.as_ref(),
        manifest.web.as_ref(),
        &applied,
        &closure,
        &crate::timestamp::rfc3339(crate::timestamp::source_date_epoch()),
    );
    let mut sbom_text = serde_json::to_string_pretty(&document)
        .map_err(|error| AssembleError::Verify(error.to_string()))?;
    sbom_text.push('\n');
    staging.write(
        Path::new(SBOM),
        sbom_text.as_bytes(),
        crate::contained::FileMode::Regular,
        crate::contained::Existing::Replace,
    )?;
    stages.finish("record", format!("{MANIFEST}, {SBOM}"));

    stages.start("verify", None);
    // 11. The files always; the imports unless this machine has seen them pass for the same
    // inputs and the same files (a new prefix path, a prefix removed by hand), and not --force.
    let report = incremental::verify_staged(
        &staged,
        recipe,
        &incremental::ImportProofs {
            cache_dir: &options.build.cache_dir,
            input_digest: &manifest.input_digest,
            rerun: options.force,
            stand_in: Some(&layout.build_python),
        },
        progress,
    )?;
    let mut report = report;
    report.failures.extend(
        crate::closure::build_paths::find(
            &staged,
            &build_paths(staging_directory.path(), &prefix, target, options),
        )?
        .iter()
        .map(ToString::to_string),
    );
    if closure.self_contained {
        report.failures.extend(native::not_carried(&native_audit));
    }
    if !report.failures.is_empty() {
        return Err(AssembleError::VerifyFailed {
            prefix: prefix.clone(),
            failures: report.failures.join("\n"),
        });
    }
    // The tree as verified, for the next run's no-op check (kept in the cache: it is this
    // machine's, and the prefix must be the same bytes on every builder).
    let (tree_stamp, size_bytes) = incremental::stamp_and_size(&staged)?;
    stages.finish(
        "verify",
        format!(
            "{} files, {} modules{}{}",
            report.files,
            report.modules,
            report
                .django_apps
                .map_or_else(String::new, |apps| format!(", {apps} Django apps")),
            if report.imports_proven_before {
                " (imports as proven before for the same files)"
            } else {
                ""
            }
        ),
    );

    // 12. One move at a time per prefix: a concurrent assemble of the same prefix waits here,
    // then replaces this one's result as a whole.
    stages.start("move", None);
    let _move_lock = lock_directory(parent)?;
    move_into_place(&staged, &prefix)?;
    if let Some(local) = local_digest {
        incremental::Record {
            prefix: prefix.clone(),
            local_digest: local,
            input_digest: manifest.input_digest.clone(),
            tree_stamp,
        }
        .write(&record);
    }
    stages.finish("move", prefix.display().to_string());
    // The old prefix, now in the staging directory, goes when the caller drops the summary.
    let leftover = Leftover {
        _directory: staging_directory,
        _lock: staging_lock,
    };

    let web_summary = manifest
        .web
        .as_ref()
        .zip(built_web.as_ref())
        .map(|(record, built)| WebSummary {
            output: record.output.clone(),
            files: record.files,
            packages: record.packages.len(),
            overrides: record.overrides.len(),
            from_cache: built.from_cache,
            from_remote_cache: web_inputs
                .as_ref()
                .is_some_and(|inputs| inputs.from_remote_cache),
        });
    let server_summary =
        manifest
            .server
            .as_ref()
            .zip(built_server.as_ref())
            .map(|(record, built)| ServerSummary {
                binary: record.binary.clone(),
                go: record.go.clone(),
                modules: record.modules.len(),
                from_cache: built.from_cache,
                from_remote_cache: server_from_remote_cache,
            });
    Ok(AssembleSummary {
        prefix,
        installed: installed.len(),
        built: built.len(),
        built_from_cache: from_cache,
        downloaded,
        downloaded_from_remote_cache,
        built_from_remote_cache,
        bytes,
        stages: stages.done,
        warnings: warnings.list,
        verify: VerifySummary {
            distributions: report.distributions,
            files: report.files,
            modules: report.modules,
            django_apps: report.django_apps,
            imports_proven_before: report.imports_proven_before,
        },
        size_bytes,
        up_to_date: false,
        server: server_summary,
        web: web_summary,
        leftover: Some(std::sync::Arc::new(leftover)),
    })
}

/// ` (N from the remote cache)`, when any.
fn remote_cache_note(count: usize) -> String {
    if count == 0 {
        String::new()
    } else {
        format!(" ({count} from the remote cache)")
    }
}

impl AssembleSummary {
    /// The summary of a run that found nothing to do.
    fn up_to_date(prefix: PathBuf, stages: Vec<StageTime>) -> AssembleSummary {
        AssembleSummary {
            prefix,
            installed: 0,
            built: 0,
            built_from_cache: 0,
            downloaded: 0,
            downloaded_from_remote_cache: 0,
            built_from_remote_cache: 0,
            bytes: 0,
            stages,
            warnings: Vec::new(),
            verify: VerifySummary {
                distributions: 0,
                files: 0,
                modules: 0,
                django_apps: None,
                imports_proven_before: false,
            },
            size_bytes: 0,
            up_to_date: true,
            server: None,
            web: None,
            leftover: None,
        }
    }
}

/// The manifest's `native`: the ELF files and the Debian packages (names only: versions vary
/// between builders of the same release) a runtime image must install for them; for a
/// self-contained prefix, its interpreter and the libraries grafted into it, with the
/// packages and versions they came from.
fn native_manifest(
    audit: &NativeAudit,
    closure: &crate::closure::ClosureReport,
) -> serde_json::Value {
    let mut native = serde_json::json!({
        "elf-files": audit.elf_files,
        "debian-packages": audit.packages(),
        "unresolved": audit.unresolved.keys().collect::<Vec<_>>(),
        "self-contained": closure.self_contained,
    });
    if closure.self_contained {
        native["interpreter"] = serde_json::json!(closure.interpreter);
        native["grafted"] = serde_json::json!(closure.grafted);
    }
    native
}

/// The build machine's paths that no file of the prefix may name: where it was staged, where
/// it is going, the caches, the source given, and the build interpreter (which `pyvenv.cfg`
/// and the manifest name when the prefix runs with it).
fn build_paths(
    staging: &Path,
    prefix: &Path,
    target: &Target,
    options: &AssembleOptions,
) -> Vec<crate::closure::build_paths::BuildPath> {
    use crate::closure::build_paths::BuildPath;
    let path = |path: &Path, what: &'static str| BuildPath {
        path: path.to_path_buf(),
        what,
        allowed_in: Vec::new(),
    };
    let mut paths = vec![
        path(staging, "the staging directory"),
        path(
            prefix,
            "the prefix's own path: the prefix must not depend on it",
        ),
        path(&options.fetch.cache_dir, "the cache"),
        path(&options.build.cache_dir, "the cache"),
    ];
    if let SourceArgument::Path(source) = &options.source
        && let Ok(source) = std::path::absolute(source)
    {
        paths.push(path(&source, "the source given"));
    }
    if let Some(interpreter) = &target.interpreter {
        let runs_with_it = options.closure == crate::closure::Closure::SystemLibraries
            && options.runtime_python.is_none();
        paths.push(BuildPath {
            path: interpreter.base_prefix.clone(),
            what: "the build interpreter",
            allowed_in: if runs_with_it {
                vec![PathBuf::from("pyvenv.cfg"), PathBuf::from(MANIFEST)]
            } else {
                Vec::new()
            },
        });
    }
    paths
}

/// The closure stage's line: what was copied, grafted and rewritten.
fn closure_detail(closure: &crate::closure::ClosureReport) -> String {
    let rewritten = format!(
        "{} ELF files rewritten, {} RUNPATH entries outside the prefix dropped",
        closure.patched, closure.runpaths_dropped
    );
    match &closure.interpreter {
        Some(interpreter) => format!(
            "CPython {} copied in, {} libraries grafted, {rewritten}",
            interpreter.version,
            closure.grafted.len()
        ),
        None => rewritten,
    }
}

/// `bin/ak`, with the release's commit as its default `GIT_BUILD_HASH` (checked: it goes into
/// a shell script).
fn ak_launcher(recipe: &Recipe) -> Result<String, AssembleError> {
    let commit = match &recipe.source.commit {
        Some(commit) => commit
            .parse::<crate::identity::GitCommit>()
            .map_err(|error| AssembleError::Recipe(format!("[source] commit: {error}")))?
            .to_string(),
        None => String::new(),
    };
    Ok(AK_LAUNCHER.replace("@GIT_BUILD_HASH@", &commit))
}

/// Write the manifest into the staged prefix (again, once it carries the tree stamp).
fn write_manifest(
    staging: &crate::contained::Contained,
    manifest: &Manifest,
) -> Result<(), AssembleError> {
    let mut text = serde_json::to_string_pretty(manifest)
        .map_err(|error| AssembleError::Verify(error.to_string()))?;
    text.push('\n');
    staging.write(
        Path::new(MANIFEST),
        text.as_bytes(),
        crate::contained::FileMode::Regular,
        crate::contained::Existing::Replace,
    )?;
    Ok(())
}

const STAGING_LOCK: &str = ".akpkg-staging.lock";

/// An exclusively locked file (flock), released when the returned handle is dropped or the
/// process dies. `wait` blocks until the lock is free; otherwise a held lock is an error.
fn lock_file(path: &Path, wait: bool) -> Result<fs_err::File, AssembleError> {
    let file = fs_err::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(AssembleError::io("cannot open the lock file", path))?;
    let operation = if wait {
        rustix::fs::FlockOperation::LockExclusive
    } else {
        rustix::fs::FlockOperation::NonBlockingLockExclusive
    };
    rustix::fs::flock(file.file(), operation).map_err(|error| AssembleError::Io {
        action: "cannot lock",
        path: path.to_path_buf(),
        source: error.into(),
    })?;
    Ok(file)
}

/// Create the prefix's missing parent directories, as uv, pip and cargo do.
fn create_parent(prefix: &Path, parent: &Path) -> Result<(), AssembleError> {
    fs_err::create_dir_all(parent).map_err(|source| match source.kind() {
        std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => {
            AssembleError::PrefixParentNotWritable {
                prefix: prefix.to_path_buf(),
                parent: parent.to_path_buf(),
                kind: source.kind(),
            }
        }
        _ => AssembleError::Io {
            action: "cannot create",
            path: parent.to_path_buf(),
            source,
        },
    })
}

/// Never destroy what akpkg did not make: what is at the prefix may be replaced only when it
/// is nothing, an empty directory, or a prefix with akpkg's manifest.
fn refuse_foreign_prefix(prefix: &Path) -> Result<(), AssembleError> {
    let refuse = |what: String| AssembleError::PrefixNotOurs {
        prefix: prefix.to_path_buf(),
        what,
        manifest: MANIFEST,
    };
    let metadata = match fs_err::symlink_metadata(prefix) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(AssembleError::io("cannot read", prefix)(error)),
    };
    if metadata.is_symlink() {
        return Err(refuse("a symbolic link".to_string()));
    }
    if !metadata.is_dir() {
        return Err(refuse("a file".to_string()));
    }
    if prefix.join(MANIFEST).is_file() {
        return Ok(());
    }
    let mut names: Vec<String> = fs_err::read_dir(prefix)
        .map_err(AssembleError::io("cannot read", prefix))?
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    names.sort();
    let count = names.len();
    let shown = names.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    let more = if count > 3 { ", …" } else { "" };
    let noun = if count == 1 { "entry" } else { "entries" };
    Err(refuse(format!(
        "a directory holding {count} {noun} ({shown}{more})"
    )))
}

/// The parent directory itself, locked (flock on a directory works on Linux): leaves no file.
fn lock_directory(directory: &Path) -> Result<fs_err::File, AssembleError> {
    let handle =
        fs_err::File::open(directory).map_err(AssembleError::io("cannot open", directory))?;
    rustix::fs::flock(handle.file(), rustix::fs::FlockOperation::LockExclusive).map_err(
        |error| AssembleError::Io {
            action: "cannot lock",
            path: directory.to_path_buf(),
            source: error.into(),
        },
    )?;
    Ok(handle)
}

/// Remove staging directories of earlier runs that died (their lock is free), so a killed
/// assemble leaves nothing behind once the next one starts. Stagings of live runs are kept.
fn remove_abandoned_stagings(parent: &Path, staging_prefix: &str) {
    let Ok(entries) = fs_err::read_dir(parent) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let is_staging = entry
            .file_name()
            .to_string_lossy()
            .starts_with(staging_prefix);
        if !is_staging || !path.is_dir() {
            continue;
        }
        let lock = path.join(STAGING_LOCK);
        // A staging without its lock file died before taking it; one whose lock can be taken
        // belongs to no live process.
        let abandoned = if lock.exists() {
            lock_file(&lock, false).is_ok()
        } else {
            // Its run may be about to take the lock: only an old one is abandoned.
            fs_err::metadata(&path)
                .and_then(|metadata| metadata.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(60))
        };
        if abandoned {
            tracing::info!(path = %path.display(), "removing an abandoned staging directory");
            let _ = fs_err::remove_dir_all(&path);
        }
    }
}

/// Put `staged` at `prefix`: a plain rename when there is none yet; otherwise an atomic
/// exchange (renameat2 RENAME_EXCHANGE), so `prefix` is never missing, then the old one, now at
/// `staged`, is removed with the staging directory.
fn move_into_place(staged: &Path, prefix: &Path) -> Result<(), AssembleError> {
    if fs_err::symlink_metadata(prefix).is_err() {
        return fs_err::rename(staged, prefix)
            .map_err(AssembleError::io("cannot move the prefix to", prefix));
    }
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        staged,
        rustix::fs::CWD,
        prefix,
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .map_err(|error| AssembleError::Io {
        action: "cannot exchange the new prefix with",
        path: prefix.to_path_buf(),
        source: error.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe_with_commit(commit: &str) -> Recipe {
        toml::from_str(&format!(
            "name = \"x\"\nversion = \"1\"\nlock = \"x.lock\"\n[source]\ntree = \"{}\"\ncommit = \"{commit}\"\n",
            "ab".repeat(20)
        ))
        .unwrap()
    }

    #[test]
    fn bin_ak_names_the_release_commit_and_refuses_anything_else() {
        let commit = "19ad8d3ae3f266ec1096bc4461fdf6bcda1aa079";
        let launcher = ak_launcher(&recipe_with_commit(commit)).unwrap();
        assert!(launcher.contains(&format!("GIT_BUILD_HASH=\"{commit}\"")));
        assert!(!launcher.contains("@GIT_BUILD_HASH@"));
        let error = ak_launcher(&recipe_with_commit("$(rm -rf /)")).unwrap_err();
        insta::assert_snapshot!(error.to_string(), @"recipe: [source] commit: `$(rm -rf /)` is not a git commit id (40 lowercase hexadecimal digits)");
    }
}
