//! Writing akpkg's lock from a plan: the fetch set and the build set pinned, each build's
//! environment resolved and checked with its backend, the Go modules and the web UI's packages.

use std::path::Path;

use rayon::prelude::*;

use crate::fetch::{ArtifactRequest, FetchOptions, GitCheckout, IndexClient};
use crate::identity::{FileName, Sha256};
use crate::interpreter::Target;
use crate::lock::{
    AKPKG_LOCK_VERSION, AkpkgLock, LockedBuild, LockedEnvironment, LockedFile, LockedGit, LockedGo,
    LockedTarget, SourceLockPin,
};
use crate::pep517::{BuildOptions, Pin};

use super::error::EnvironmentFailure;
use super::{FetchSet, PipelineError, PlannedBuild};

/// The builds and their environments, as akpkg's lock records them.
pub struct LockedBuilds {
    pub environments: Vec<LockedEnvironment>,
    pub builds: Vec<LockedBuild>,
}

/// Resolve every build's environment against the index (`options.jobs` at once) and check it
/// with the backend; every failure is listed, and nothing is returned unless all succeed.
pub fn lock_build_environments(
    builds: &[PlannedBuild],
    target: &Target,
    options: &BuildOptions,
    index: &IndexClient,
) -> Result<LockedBuilds, PipelineError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.jobs.max(1))
        .build()
        .map_err(|error| PipelineError::Threads(error.to_string()))?;
    let environments: Vec<_> = pool.install(|| {
        builds
            .par_iter()
            .map(|build| {
                tracing::info!(name = %build.request.name, "resolving the build environment");
                crate::pep517::lock_build_environment(&build.request, target, options, index)
            })
            .collect()
    });
    let mut failures = Vec::new();
    let mut locked = LockedBuilds {
        environments: Vec::new(),
        builds: Vec::new(),
    };
    for (build, environment) in builds.iter().zip(environments) {
        match environment {
            Ok(environment) => locked.add(build, environment),
            Err(error) => failures.push(EnvironmentFailure {
                name: build.request.name.clone(),
                error,
            }),
        }
    }
    if !failures.is_empty() {
        return Err(PipelineError::Environments {
            total: builds.len(),
            failures,
        });
    }
    locked.environments.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(locked)
}

impl LockedBuilds {
    /// One build, and its environment unless an identical one is recorded already (the id is
    /// the hash of the pins' hashes).
    fn add(&mut self, build: &PlannedBuild, environment: crate::pep517::LockedBuildEnvironment) {
        let packages: Vec<LockedFile> = environment
            .environment
            .iter()
            .map(|pin: &Pin| {
                locked_file(
                    pin.name.as_ref(),
                    &pin.version.to_string(),
                    &pin.filename,
                    &pin.url,
                    &pin.sha256,
                )
            })
            .collect();
        let hashes: Vec<&str> = packages
            .iter()
            .map(|package| package.sha256.as_str())
            .collect();
        let id = crate::digest::sha256_hex(hashes.join("\n").as_bytes())[..16].to_string();
        if !self.environments.iter().any(|existing| existing.id == id) {
            self.environments.push(LockedEnvironment {
                id: id.clone(),
                packages,
            });
        }
        self.builds.push(LockedBuild {
            name: build.request.name.clone(),
            version: build.version.clone(),
            kind: build.kind,
            path: build.tree_path.clone(),
            backend: environment.backend,
            requires: environment.requires,
            environment: id,
        });
    }
}

fn locked_file(
    name: &str,
    version: &str,
    filename: &FileName,
    url: &str,
    sha256: &Sha256,
) -> LockedFile {
    LockedFile {
        name: name.to_string(),
        version: version.to_string(),
        filename: filename.clone(),
        url: url.to_string(),
        sha256: sha256.clone(),
    }
}

/// Everything akpkg's lock records.
pub struct LockInputs<'a> {
    /// The lock it was made from (uv.lock, pylock.toml, …), pinned by hash.
    pub source_lock: &'a Path,
    pub target: &'a Target,
    pub fetch_set: &'a FetchSet,
    /// In the order of `fetch_set.git`.
    pub checkouts: &'a [GitCheckout],
    pub builds: LockedBuilds,
    pub go: Option<LockedGo>,
    pub web: Option<crate::lock::LockedWeb>,
}

/// akpkg's lock of `inputs`.
pub fn akpkg_lock(inputs: LockInputs<'_>) -> Result<AkpkgLock, PipelineError> {
    let release = inputs.target.python_version.release();
    Ok(AkpkgLock {
        version: AKPKG_LOCK_VERSION,
        generated_by: format!("akpkg {}", env!("CARGO_PKG_VERSION")),
        source_lock: SourceLockPin {
            path: inputs
                .source_lock
                .file_name()
                .map_or_else(String::new, |name| name.to_string_lossy().into_owned()),
            sha256: Sha256::of_file(inputs.source_lock).map_err(crate::path_io::io::<
                PipelineError,
            >(
                "cannot read",
                inputs.source_lock,
            ))?,
        },
        target: LockedTarget {
            python_version: format!(
                "{}.{}",
                release.first().copied().unwrap_or(3),
                release.get(1).copied().unwrap_or(0)
            ),
            platform: inputs
                .target
                .platform
                .tags()
                .first()
                .cloned()
                .unwrap_or_default(),
        },
        runtime: inputs
            .fetch_set
            .artifacts
            .iter()
            .map(runtime_file)
            .collect(),
        git: inputs
            .fetch_set
            .git
            .iter()
            .zip(inputs.checkouts)
            .map(|(request, checkout)| LockedGit {
                name: request.name.clone(),
                version: request.version.clone(),
                repository: crate::redact::redacted(&request.repository),
                commit: request.commit.clone(),
                tree: checkout.tree_id.clone(),
                subdirectory: None,
            })
            .collect(),
        environment: inputs.builds.environments,
        build: inputs.builds.builds,
        go: inputs.go,
        web: inputs.web,
    })
}

fn runtime_file(request: &ArtifactRequest) -> LockedFile {
    locked_file(
        &request.name,
        &request.version,
        &request.filename,
        request.url.as_deref().unwrap_or_default(),
        &request.sha256,
    )
}

/// The application's Go module, pinned by its go.sum. With a recipe that builds a server, only
/// the module versions that build reads are kept: go.sum also pins older versions and modules of
/// other commands, which a proxy may no longer serve and the build never needs. A generated API
/// client's generator is downloaded with `progress` (it is tens of megabytes).
pub fn lock_go(
    project_directory: &Path,
    server: Option<&crate::server::ServerRecipe>,
    generate_api_client: bool,
    fetch_options: &FetchOptions,
    go_command: Option<&Path>,
    progress: &dyn crate::fetch::DownloadProgress,
    source_date_epoch: u64,
) -> Result<Option<LockedGo>, PipelineError> {
    let (mut go, server) = match (crate::lock::read_go_module(project_directory)?, server) {
        (Some(go), Some(server)) => (go, server),
        (go, _) => return Ok(go),
    };
    let toolchain = crate::server::find_toolchain(server, &go, go_command)?;
    // A generated API client: recorded, and generated for `go list`; the module it replaces is
    // neither fetched nor pinned, since the build reads none of it.
    go.api_client = match &server.api_client {
        Some(client) if generate_api_client => Some(client.locked(project_directory)?),
        _ => None,
    };
    if let Some(module) = go.api_client.as_ref().map(|client| client.module.clone()) {
        go.drop_module(&module);
    }
    let tree = crate::fetch::fetch_go_modules(&go, fetch_options, crate::fetch::Unavailable::Skip)?;
    let api_client = match (&server.api_client, &go.api_client) {
        (Some(recipe), Some(locked)) => {
            let generation =
                crate::server::ClientGeneration::new(recipe, locked, &fetch_options.cache)?;
            let jar = crate::fetch::jar_request(&locked.generator)?;
            crate::fetch::fetch_all(&[jar], fetch_options, progress)?;
            Some(generation)
        }
        _ => None,
    };
    let read = crate::server::modules_read_by_build(&crate::server::ServerBuild {
        source: project_directory,
        recipe: server,
        go: &go,
        module_tree: &tree.directory,
        source_key: "",
        cache: &fetch_options.cache,
        toolchain: &toolchain,
        remote_cache: None,
        api_client,
        // `go list` compiles nothing; the date the build would have.
        source_date_epoch,
    })?;
    let is_read = |module: &crate::lock::LockedGoModule, file: &str| {
        read.contains(&(
            module.path.to_string(),
            module.version.to_string(),
            file.to_string(),
        ))
    };
    for module in &mut go.modules {
        if !is_read(module, "zip") {
            module.zip = None;
        }
        if !is_read(module, "mod") {
            module.go_mod = None;
        }
    }
    go.modules
        .retain(|module| module.zip.is_some() || module.go_mod.is_some());
    if !tree.unavailable.is_empty() {
        tracing::info!(
            "go.sum pins {} files no proxy served; the build reads none of them: {}",
            tree.unavailable.len(),
            tree.unavailable.join(", ")
        );
    }
    Ok(Some(go))
}

/// Write akpkg's lock to `path`: beside the final name, then renamed, so a reader never sees
/// half a lock.
pub fn write_lock_file(path: &Path, lock: &AkpkgLock) -> Result<(), PipelineError> {
    crate::cache::publish_bytes(path, lock.to_toml().as_bytes())
        .map_err(crate::path_io::io("cannot write", path))
}
