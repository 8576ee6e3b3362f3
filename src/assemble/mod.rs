//! The `assemble` stage: one command from an application's source to a verified, relocatable
//! prefix.
//!
//! The steps, numbered the same in `run` (the orchestrator) and in docs/assemble.md:
//! 1. **check**: the interpreter fits akpkg's lock; each application stage (`stage`: the Go
//!    server, the web UI) finds its toolchain;
//! 2. **place**: what is at the prefix may be replaced; the stagings dead runs left beside it
//!    are removed (`staging`);
//! 3. **no-op**: stop if the prefix already is what this run would make (its manifest records
//!    the same digest of every input, and its tree the stamp taken when it was verified:
//!    `incremental`); otherwise each application stage checks what it needs (java), and stage;
//! 4. **source**: a working copy of the source, checked against the recipe's tree pin, with the
//!    recipe's patches applied (`source`);
//! 5. **fetch**: every artifact, build-environment wheel and git source of the lock, then each
//!    application stage's inputs (Go modules, npm tarballs), verified (`inputs`);
//! 6. **build**: what the lock builds, in its pinned environments (`wheels`), then each
//!    application stage (`server`, `web`), each from its build cache when it is there;
//! 7. **install**: the wheels, byte-compiled, into the staged prefix (`wheels`);
//! 8. **copy**: the application tree and `bin/ak` (`copy`), then what each application stage
//!    built (the server binary, the web UI);
//! 9. **closure**: RUNPATHs kept inside the prefix; with `--self-contained`, the interpreter and
//!    the native libraries copied in (`crate::closure`);
//! 10. **record**: the manifest, each application stage writing its section, and the SBOM
//!     (`record`, `sbom`);
//! 11. **verify**: RECORDs, imports, Django, no build path, the native closure; the verified
//!     tree stamped (`verify`, `incremental`);
//! 12. **move**: into place, atomically exchanged with an existing prefix. Any failure before
//!     leaves the old prefix untouched and removes the staging. The old prefix is removed with
//!     the staging when the caller drops the summary, after it reported the result.

mod copy;
mod error;
mod incremental;
mod inputs;
mod native;
mod recipe;
mod record;
mod run;
mod sbom;
mod server;
mod source;
mod stage;
mod staging;
mod verify;
mod web;
mod wheels;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use serde::Serialize;

use crate::fetch::FetchOptions;
use crate::install::Layout;
use crate::interpreter::Target;
use crate::lock::AkpkgLock;
use crate::pep517::BuildOptions;
use crate::tags::WheelFilename;

pub use error::AssembleError;
pub use native::{NativeAudit, audit as audit_native, not_carried as native_not_carried};
pub use recipe::{
    DEFAULT_RECIPE, LoadedRecipe, RELEASES, Recipe, RecipeChoice, RecipeFiles, RecipeWithoutLock,
    SourcePin, recipe_files,
};
pub use record::{ManifestSettings, ManifestSource, NativeSettings, manifest_settings};
pub use staging::Leftover;
pub use verify::{
    VerifiedPrefix, VerifyReport, check_server, site_packages, verify_assembled, verify_prefix,
};
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
    /// Refuse wheels whose RECORD disagrees with their contents (`--no-verify-record` off).
    pub verify_record: bool,
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
    /// `--go-api-client`.
    pub api_client: crate::server::GoApiClientChoice,
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
    /// Each build output taken from the remote cache and the trusted key that signed it. Kept
    /// beside the prefix, not in it (as Nix keeps signatures beside store paths): the prefix's
    /// bytes are the same whoever built each output.
    pub remote_cache_signers: Vec<crate::registry::TakenEntry>,
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

impl<'a> Stages<'a> {
    fn new(progress: &'a dyn Progress) -> Self {
        Stages {
            progress,
            started: Instant::now(),
            done: Vec::new(),
        }
    }

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

impl<'a> Warnings<'a> {
    fn new(progress: &'a dyn Progress) -> Self {
        Warnings {
            progress,
            list: Vec::new(),
        }
    }

    fn push(&mut self, message: String) {
        self.progress.warning(&message);
        self.list.push(message);
    }

    /// Warnings a stage collected (the install stage has no reporter of warnings).
    fn extend(&mut self, messages: Vec<String>) {
        for message in messages {
            self.push(message);
        }
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

/// Run the whole pipeline (see the module's documentation).
pub fn assemble(
    loaded: &LoadedRecipe,
    target: &Target,
    options: &AssembleOptions,
    progress: &dyn Progress,
) -> Result<AssembleSummary, AssembleError> {
    run::run_stages(run::Run {
        loaded,
        target,
        options,
        progress,
    })
    .map_err(|error| {
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
    let mut stages = Stages::new(progress);
    if options.force {
        return Ok(None);
    }
    let run = run::Run {
        loaded,
        target,
        options,
        progress,
    };
    // A failed check is the full run's to report.
    let Ok(app_stages) = run::check_stages(run) else {
        return Ok(None);
    };
    let prefix = std::path::absolute(&options.prefix)
        .map_err(AssembleError::io("cannot resolve", &options.prefix))?;
    if !local_state(run, &prefix, &run::toolchains(&app_stages))?.1 {
        return Ok(None);
    }
    staging::remove_abandoned_beside(&prefix);
    stages.finish("check", "up to date".to_string());
    Ok(Some(AssembleSummary::up_to_date(prefix, stages.done)))
}

/// This machine's digest of the inputs, and whether the prefix already is what they make (never
/// with `--force`): the no-op check of both [`up_to_date`] and a full run.
fn local_state(
    run: run::Run<'_>,
    prefix: &Path,
    toolchains: &[(&str, &str)],
) -> Result<(Option<crate::identity::Sha256>, bool), AssembleError> {
    let run::Run {
        loaded,
        target,
        options,
        ..
    } = run;
    let local_digest = incremental::local_digest(loaded, target, options, toolchains)?;
    let record = incremental::Record::path(&options.fetch.cache, prefix);
    let unchanged = !options.force
        && local_digest
            .as_ref()
            .is_some_and(|digest| incremental::is_up_to_date(prefix, &record, digest));
    Ok((local_digest, unchanged))
}

/// Step 11: the files always; the imports unless this machine has seen them pass for the same
/// inputs and the same files (a new prefix path, a prefix removed by hand), and not --force;
/// no file naming a path of the build machine; for a self-contained prefix, no library from
/// the machine beyond the C library's family. Any failure leaves the old prefix as it was.
fn verify_staged(
    staging: &staging::Staging,
    place: &staging::Place,
    layout: &Layout,
    (loaded, target, options): (&LoadedRecipe, &Target, &AssembleOptions),
    recorded: &record::Recorded,
    (closure, native_audit): (&crate::closure::ClosureReport, &NativeAudit),
    progress: &dyn Progress,
) -> Result<VerifyReport, AssembleError> {
    let mut report = incremental::verify_staged(
        &staging.staged,
        &loaded.recipe,
        &incremental::ImportProofs {
            cache: &options.build.cache,
            input_digest: &recorded.input_digest,
            rerun: options.force,
            stand_in: Some(&layout.build_python),
        },
        progress,
    )?;
    report.failures.extend(
        crate::closure::build_paths::find(
            &staging.staged,
            &build_paths(staging.path(), &place.prefix, target, options),
        )?
        .iter()
        .map(ToString::to_string),
    );
    if closure.self_contained {
        report.failures.extend(native::not_carried(native_audit));
    }
    if !report.failures.is_empty() {
        return Err(AssembleError::VerifyFailed {
            prefix: place.prefix.clone(),
            failures: report.failures.join("\n"),
        });
    }
    Ok(report)
}

impl VerifySummary {
    fn of(report: &VerifyReport) -> VerifySummary {
        VerifySummary {
            distributions: report.distributions,
            files: report.files,
            modules: report.modules,
            django_apps: report.django_apps,
            imports_proven_before: report.imports_proven_before,
        }
    }
}

/// The verify stage's line.
fn verify_detail(report: &VerifyReport) -> String {
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
    )
}

/// `, from the build cache`, when it was.
fn build_cache_note(from_cache: bool) -> &'static str {
    if from_cache {
        ", from the build cache"
    } else {
        ""
    }
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
            remote_cache_signers: Vec::new(),
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
        path(options.fetch.cache.root(), "the cache"),
        path(options.build.cache.root(), "the cache"),
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
