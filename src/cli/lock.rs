//! `akpkg lock`: write akpkg's own lock (build environments, git trees, every artifact pinned).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use rayon::prelude::*;

use super::build::BuildArgs;
use super::fetch::{NetworkArgs, requests_of};
use super::plan::{LockArgs, SelectionArgs, TargetArgs, plan_from_args};
use super::{CacheArgs, CliError, print};
use crate::fetch::{self, IndexClient};
use crate::lock::{
    AKPKG_LOCK_VERSION, AkpkgLock, LockedBuild, LockedEnvironment, LockedFile, LockedGit,
    LockedTarget, Source, SourceLockPin,
};
use crate::pep517::{self, BuildRequest, Pin, SourceInput};
use crate::plan::{Action, BuildKind};

#[derive(Debug, Args)]
pub struct LockCommandArgs {
    #[command(flatten)]
    pub lock: LockArgs,

    #[command(flatten)]
    pub target: TargetArgs,

    #[command(flatten)]
    pub selection: SelectionArgs,

    /// Where to write akpkg's lock, such as lockfiles/authentik-2025.12.4.lock.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,

    /// The release's source tree or archive (.tar.gz): its uv.lock and pyproject.toml are
    /// used, and its git tree id is printed for the recipe.
    #[arg(long, value_name = "DIR|FILE")]
    pub source: Option<PathBuf>,

    /// A recipe whose `overrides` apply, and whose patches are checked against --source.
    #[arg(long, value_name = "FILE")]
    pub recipe: Option<PathBuf>,

    /// The go command that lists what the recipe's Go server reads [default: `go` on PATH].
    #[arg(long, value_name = "PATH")]
    pub go: Option<PathBuf>,

    #[command(flatten)]
    pub build: BuildArgs,

    #[command(flatten)]
    pub cache: CacheArgs,

    #[command(flatten)]
    pub network: NetworkArgs,
}

fn locked_file(
    name: &str,
    version: &str,
    filename: &crate::identity::FileName,
    url: &str,
    sha256: &crate::identity::Sha256,
) -> LockedFile {
    LockedFile {
        name: name.to_string(),
        version: version.to_string(),
        filename: filename.clone(),
        url: url.to_string(),
        sha256: sha256.clone(),
    }
}

pub fn run(args: LockCommandArgs) -> Result<(), CliError> {
    let started = Instant::now();
    // A source tree (unpacked when an archive) supplies the lock and the project.
    let unpacked = tempfile::tempdir()?;
    let source = match &args.source {
        None => None,
        Some(path) if path.is_dir() => Some(path.clone()),
        Some(archive) => {
            crate::archive::unpack_tar(archive, unpacked.path())?;
            Some(
                crate::archive::single_top_level_directory(unpacked.path())?
                    .unwrap_or_else(|| unpacked.path().to_path_buf()),
            )
        }
    };
    let mut lock_args = args.lock.clone();
    if let Some(source) = &source {
        if lock_args.lock == Path::new("uv.lock") {
            lock_args.lock = source.join("uv.lock");
        }
        lock_args.project.get_or_insert_with(|| source.clone());
    }
    let recipe = match &args.recipe {
        Some(path) => Some(crate::assemble::RecipeWithoutLock::load(Some(path))?),
        None => None,
    };
    let mut selection = args.selection.clone();
    if let Some(recipe) = &recipe {
        let mut overrides = recipe.recipe.overrides.clone();
        overrides.append(&mut selection.overrides);
        selection.overrides = overrides;
    }
    let (plan, target, lock) = plan_from_args(&lock_args, &args.target, &selection, &args.cache)?;
    if target.interpreter.is_none() {
        tracing::warn!(
            "no interpreter for this target here: build environments are resolved from the static [build-system] requires only; lock again with --python on a machine that has it to check them with the backends"
        );
    }
    let project_directory = lock_args
        .project
        .clone()
        .unwrap_or_else(|| lock.directory().to_path_buf());
    let options = args.build.options(&args.network, &args.cache)?;

    // Every artifact and git source, fetched and verified.
    let index = IndexClient::new(&options.fetch)?;
    let (requests, git_requests) = requests_of(&plan, Some((&index, &target)))?;
    let fetched = fetch::fetch_all(
        &requests,
        &options.fetch,
        &super::progress::DownloadBar::new(),
    )?;
    let checkouts = fetch::fetch_git_sources(&git_requests, &options.fetch)?;
    let by_sha256: BTreeMap<&str, &Path> = fetched
        .iter()
        .map(|artifact| (artifact.request.sha256.as_str(), artifact.path.as_path()))
        .collect();

    // Each distribution to build, with its source.
    let mut builds: Vec<(BuildRequest, String, BuildKind, Option<String>)> = Vec::new();
    for distribution in &plan.distributions {
        let Action::Build { kind, sdist } = &distribution.action else {
            continue;
        };
        let name = distribution.name.to_string();
        let version = distribution
            .version
            .as_ref()
            .map_or_else(String::new, ToString::to_string);
        let mut tree_path = None;
        let source = match (&distribution.source, sdist) {
            (_, Some(sdist)) => {
                let sha256 = sdist.hash.as_ref().and_then(|hash| hash.sha256());
                let path = sha256
                    .and_then(|sha256| by_sha256.get(sha256.as_str()))
                    .ok_or_else(|| {
                        CliError::Usage(format!(
                            "`{name}`: its sdist {} was not fetched",
                            sdist.filename
                        ))
                    })?;
                SourceInput::Sdist(path.to_path_buf())
            }
            (
                Source::Git {
                    commit,
                    subdirectory,
                    ..
                },
                None,
            ) => {
                let checkout = git_requests
                    .iter()
                    .zip(&checkouts)
                    .find(|(request, _)| request.commit == *commit)
                    .map(|(_, checkout)| checkout.directory.clone())
                    .ok_or_else(|| {
                        CliError::Usage(format!("`{name}`: its git source was not fetched"))
                    })?;
                SourceInput::Directory(match subdirectory {
                    Some(subdirectory) => checkout.join(subdirectory),
                    None => checkout,
                })
            }
            (
                Source::Editable { path } | Source::Virtual { path } | Source::Directory { path },
                None,
            ) => {
                let relative = path.display().to_string();
                tree_path = Some(if relative.is_empty() {
                    ".".to_string()
                } else {
                    relative
                });
                SourceInput::Directory(project_directory.join(path))
            }
            (other, None) => {
                return Err(CliError::Usage(format!(
                    "`{name}`: akpkg cannot build from a {} source",
                    other.kind()
                )));
            }
        };
        builds.push((
            BuildRequest {
                config_settings: args.build.config_settings(&name)?,
                name,
                source,
                environment: None,
            },
            version,
            *kind,
            tree_path,
        ));
    }

    // Their environments, resolved against the index and checked with the backends.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.jobs.max(1))
        .build()
        .map_err(|error| CliError::Usage(error.to_string()))?;
    let environments: Vec<_> = pool.install(|| {
        builds
            .par_iter()
            .map(|(request, _, _, _)| {
                tracing::info!(name = %request.name, "resolving the build environment");
                pep517::lock_build_environment(request, &target, &options, &index)
            })
            .collect()
    });
    let mut failures = Vec::new();
    let mut locked_environments: Vec<LockedEnvironment> = Vec::new();
    let mut locked_builds = Vec::new();
    for ((request, version, kind, tree_path), environment) in builds.iter().zip(environments) {
        let environment = match environment {
            Ok(environment) => environment,
            Err(error) => {
                failures.push(format!("`{}`: {error}", request.name));
                continue;
            }
        };
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
        let id = crate::digest::sha256_hex(
            packages
                .iter()
                .map(|package| package.sha256.as_str())
                .collect::<Vec<_>>()
                .join("\n")
                .as_bytes(),
        )[..16]
            .to_string();
        if !locked_environments.iter().any(|existing| existing.id == id) {
            locked_environments.push(LockedEnvironment {
                id: id.clone(),
                packages,
            });
        }
        locked_builds.push(LockedBuild {
            name: request.name.clone(),
            version: version.clone(),
            kind: *kind,
            path: tree_path.clone(),
            backend: environment.backend,
            requires: environment.requires,
            environment: id,
        });
    }
    if !failures.is_empty() {
        return Err(CliError::Usage(format!(
            "{} of {} build environments could not be locked; nothing was written:\n{}",
            failures.len(),
            builds.len(),
            failures.join("\n")
        )));
    }
    locked_environments.sort_by(|a, b| a.id.cmp(&b.id));

    let source_lock_sha256 = crate::identity::Sha256::of_file(&lock_args.lock)?;
    let akpkg_lock = AkpkgLock {
        version: AKPKG_LOCK_VERSION,
        generated_by: format!("akpkg {}", env!("CARGO_PKG_VERSION")),
        source_lock: SourceLockPin {
            path: lock_args
                .lock
                .file_name()
                .map_or_else(String::new, |name| name.to_string_lossy().into_owned()),
            sha256: source_lock_sha256,
        },
        target: LockedTarget {
            python_version: format!(
                "{}.{}",
                target
                    .python_version
                    .release()
                    .first()
                    .copied()
                    .unwrap_or(3),
                target.python_version.release().get(1).copied().unwrap_or(0)
            ),
            platform: target.platform.tags().first().cloned().unwrap_or_default(),
        },
        runtime: requests
            .iter()
            .map(|request| {
                locked_file(
                    &request.name,
                    &request.version,
                    &request.filename,
                    request.url.as_deref().unwrap_or_default(),
                    &request.sha256,
                )
            })
            .collect(),
        git: git_requests
            .iter()
            .zip(&checkouts)
            .map(|(request, checkout)| LockedGit {
                name: request.name.clone(),
                version: request.version.clone(),
                repository: fetch::redacted(&request.repository),
                commit: request.commit.clone(),
                tree: checkout.tree_id.clone(),
                subdirectory: None,
            })
            .collect(),
        environment: locked_environments,
        build: locked_builds,
        go: lock_go(
            &project_directory,
            recipe
                .as_ref()
                .and_then(|recipe| recipe.recipe.server.as_ref()),
            &options.fetch,
            args.go.as_deref(),
        )?,
        web: match recipe
            .as_ref()
            .and_then(|recipe| recipe.recipe.web.as_ref())
        {
            Some(web) => Some(crate::web::lock(&project_directory, web)?),
            None => None,
        },
    };
    write_atomically(&args.output, &akpkg_lock.to_toml())?;
    let mut report = String::new();
    if let Some(source) = &source {
        report.push_str(&format!(
            "source tree {} (the recipe's [source] tree)\n",
            crate::fetch::tree_id(source)?
        ));
        // Each patch alone against the pristine tree: every one that no longer applies is
        // listed, not only the first.
        if let Some(recipe) = &recipe {
            for patch in &recipe.patches {
                match crate::patch::apply(std::slice::from_ref(patch), source, true) {
                    Ok(_) => report.push_str(&format!("patch applies: {}\n", patch.origin)),
                    Err(error) => report.push_str(&format!("patch FAILS: {error}\n")),
                }
            }
        }
    }
    print(&format!(
        "wrote {}: {} runtime artifacts, {} git sources, {} builds in {} environments{}, in {:.1}s\n",
        args.output.display(),
        akpkg_lock.runtime.len(),
        akpkg_lock.git.len(),
        akpkg_lock.build.len(),
        akpkg_lock.environment.len(),
        akpkg_lock
            .go
            .as_ref()
            .map_or_else(String::new, |go| format!(
                ", {} Go module versions (go {})",
                go.modules.len(),
                go.go
            )),
        started.elapsed().as_secs_f64()
    ))?;
    print(&report)
}

/// The application's Go module, pinned by its go.sum. With a recipe that builds a server, only
/// the module versions that build reads are kept: go.sum also pins older versions and modules of
/// other commands, which a proxy may no longer serve and the build never needs.
fn lock_go(
    project_directory: &Path,
    server: Option<&crate::server::ServerRecipe>,
    fetch_options: &fetch::FetchOptions,
    go_command: Option<&Path>,
) -> Result<Option<crate::lock::LockedGo>, CliError> {
    let (mut go, server) = match (crate::lock::read_go_module(project_directory)?, server) {
        (Some(go), Some(server)) => (go, server),
        (go, _) => return Ok(go),
    };
    let toolchain = crate::server::find_toolchain(server, &go, go_command)?;
    let tree = fetch::fetch_go_modules(&go, fetch_options, fetch::Unavailable::Skip)?;
    let read = crate::server::modules_read_by_build(&crate::server::ServerBuild {
        source: project_directory,
        recipe: server,
        go: &go,
        module_tree: &tree.directory,
        source_key: "",
        cache_dir: &fetch_options.cache_dir,
        toolchain: &toolchain,
        remote_cache: None,
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

/// Write beside the final name, then rename: a reader never sees half a lock.
fn write_atomically(path: &Path, text: &str) -> Result<(), CliError> {
    let directory = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs_err::create_dir_all(directory)?;
    let mut temporary = tempfile::Builder::new()
        .prefix(".akpkg-lock-")
        .tempfile_in(directory)?;
    std::io::Write::write_all(&mut temporary, text.as_bytes())?;
    temporary
        .persist(path)
        .map_err(|error| CliError::Output(error.error))?;
    Ok(())
}
