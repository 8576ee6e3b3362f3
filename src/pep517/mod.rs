//! The `build` stage: akpkg's own PEP 517 frontend.
//!
//! For each distribution to build, following PEP 517's "Build environment" and "Build backend
//! interface" sections:
//! 1. unpack the sdist (or copy the source tree) into a fresh temporary directory;
//! 2. read `[build-system]` (`requires`, `build-backend`, `backend-path`), falling back to
//!    `setuptools.build_meta:__legacy__` with `setuptools>=40.8.0`;
//! 3. take the build environment's pins from akpkg's lock, or resolve `requires` against the
//!    index ([`resolve`]);
//! 4. if a wheel built from the same source, pins, settings and interpreter is in the build
//!    cache, use it;
//! 5. install the pins into an isolated environment with akpkg's installer ([`environment`]);
//! 6. call `get_requires_for_build_wheel`: "the frontend should ... install these
//!    requirements"; a requirement the pins lack is resolved and added (or, with locked pins,
//!    reported as a stale lock);
//! 7. call `build_wheel` and store the wheel in the build cache.
//!
//! Every hook runs in a subprocess ([`hooks`]) with a scrubbed, deterministic environment.

mod environment;
mod error;
mod hints;
mod hooks;
mod pyproject;
mod resolve;
mod source;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use pep508_rs::{Requirement, VersionOrUrl};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::fetch::{FetchOptions, IndexClient};
use crate::identity::Sha256;
use crate::interpreter::Target;
use crate::tags::WheelFilename;

pub use error::BuildError;
/// The last lines of a failed build's log, shared with the other stages that run builds.
pub use pyproject::BuildSystem;
pub use resolve::{Pin, resolve};
pub use source::SourceInput;

/// Variables a build may see from akpkg's own environment; everything else is dropped.
/// Compilers, pkg-config and linkers for native code; cargo and rustup for Rust extensions
/// (and the proxy and CA settings cargo needs to download crates).
pub const PASSED_THROUGH: &[&str] = &[
    "PATH",
    "HOME",
    "TMPDIR",
    "CC",
    "CXX",
    "CPP",
    "LD",
    "AR",
    "NM",
    "RANLIB",
    "CFLAGS",
    "CXXFLAGS",
    "CPPFLAGS",
    "LDFLAGS",
    "PKG_CONFIG",
    "PKG_CONFIG_PATH",
    "PKG_CONFIG_LIBDIR",
    "PKG_CONFIG_SYSROOT_DIR",
    "MAKEFLAGS",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "RUSTFLAGS",
    "CARGO_NET_OFFLINE",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub cache: crate::cache::Cache,
    /// For the build environments' wheels and the index.
    pub fetch: FetchOptions,
    /// `--build-env KEY=VALUE`, on top of the scrubbed environment.
    pub build_env: Vec<(String, String)>,
    /// Builds at once.
    pub jobs: usize,
    /// Given to every build; wheels' timestamps come from it.
    pub source_date_epoch: u64,
}

/// One distribution to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// For messages and logs.
    pub name: String,
    pub source: SourceInput,
    /// The build environment pinned by akpkg's lock; `None` resolves it against the index.
    pub environment: Option<Vec<Pin>>,
    /// PEP 517 `config_settings`: a key given once is a string, given again a list.
    pub config_settings: BTreeMap<String, serde_json::Value>,
}

/// A wheel built (or found in the build cache).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuiltWheel {
    pub name: String,
    /// In the build cache.
    pub path: PathBuf,
    pub filename: String,
    pub sha256: Sha256,
    pub backend: String,
    /// The static and dynamic build requirements.
    pub requires: Vec<String>,
    pub environment: Vec<Pin>,
    /// `sha256:<sdist>` or `tree:<git tree id>`.
    pub source: String,
    #[serde(skip)]
    pub from_cache: bool,
    /// Taken from the remote cache into the build cache by this run.
    #[serde(skip)]
    pub from_remote_cache: bool,
    #[serde(skip)]
    pub seconds: f64,
}

/// Build every request, up to `options.jobs` at once; results in the requests' order.
pub fn build_wheels(
    requests: &[BuildRequest],
    target: &Target,
    options: &BuildOptions,
) -> Vec<Result<BuiltWheel, BuildError>> {
    build_wheels_reporting(requests, target, options, &crate::progress::Silent)
}

/// [`build_wheels`], reporting each build as it starts and ends.
pub fn build_wheels_reporting(
    requests: &[BuildRequest],
    target: &Target,
    options: &BuildOptions,
    progress: &dyn crate::progress::Progress,
) -> Vec<Result<BuiltWheel, BuildError>> {
    let index = IndexClient::new(&options.fetch);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.jobs.max(1))
        .build();
    match (index, pool) {
        (Ok(index), Ok(pool)) => pool.install(|| {
            requests
                .par_iter()
                .map(|request| {
                    progress.item_started(&request.name);
                    let built = build_wheel(request, target, options, &index);
                    progress.item_finished(&request.name);
                    built
                })
                .collect()
        }),
        (Err(error), _) => requests
            .iter()
            .map(|_| {
                Err(BuildError::Fetch(crate::fetch::FetchError::Setup(
                    error.to_string(),
                )))
            })
            .collect(),
        (_, Err(error)) => requests
            .iter()
            .map(|_| Err(BuildError::Setup(error.to_string())))
            .collect(),
    }
}

/// What `akpkg lock` records for one build: the backend and the environment that satisfies
/// both the static and the dynamic build requirements.
#[derive(Debug, Clone)]
pub struct LockedBuildEnvironment {
    pub name: String,
    pub backend: String,
    pub requires: Vec<String>,
    pub environment: Vec<Pin>,
}

/// Build directories in the temporary directory: `akpkg-build-*`, each locked by its build.
const WORK_PREFIX: &str = "akpkg-build-";
const WORK_LOCK: &str = ".akpkg-build.lock";

/// A new build directory, locked for this build; those a killed build left are removed first.
fn new_work_directory() -> Result<(tempfile::TempDir, fs_err::File), BuildError> {
    let temporary = std::env::temp_dir();
    crate::path_io::remove_abandoned(&temporary, WORK_PREFIX, WORK_LOCK);
    let work = crate::path_io::scratch_directory(WORK_PREFIX)?;
    let lock = crate::path_io::lock_exclusive(&work.path().join(WORK_LOCK), false)?;
    Ok((work, lock))
}

/// A source tree made ready: steps 1 to 3.
struct Prepared {
    /// Removed when dropped.
    work: tempfile::TempDir,
    /// Held while the build runs, so another run's sweep leaves `work` alone.
    _work_lock: fs_err::File,
    source: PathBuf,
    source_id: String,
    system: BuildSystem,
    pins: Vec<Pin>,
}

/// An environment that satisfies the backend: steps 5 and 6.
struct Settled {
    environment: environment::Environment,
    variables: Vec<(String, String)>,
    pins: Vec<Pin>,
    dynamic: Vec<Requirement>,
    log: PathBuf,
}

/// 1. a fresh copy of the source, 2. its build system, 3. the environment's pins.
fn prepare(
    request: &BuildRequest,
    target: &Target,
    index: &IndexClient,
) -> Result<Prepared, BuildError> {
    let (work, work_lock) = new_work_directory()?;
    let source = source::prepare(&request.source, work.path(), index.limits())?;
    let source_id = match &request.source {
        SourceInput::Sdist(_) => request.source.identity()?,
        SourceInput::Directory(_) => SourceInput::Directory(source.clone()).identity()?,
    };
    let system = BuildSystem::read(&source)?;
    let pins = match &request.environment {
        Some(pins) => pins.clone(),
        None => resolve(&system.requires, target, index)?,
    };
    Ok(Prepared {
        work,
        _work_lock: work_lock,
        source,
        source_id,
        system,
        pins,
    })
}

/// Run one hook of the prepared build in `environment`.
fn call_hook(
    request: &BuildRequest,
    prepared: &Prepared,
    environment: &environment::Environment,
    variables: &[(String, String)],
    log: &Path,
    hook: &'static str,
    directory: Option<&Path>,
) -> Result<serde_json::Value, BuildError> {
    let call = hooks::HookCall {
        python: &environment.python,
        source: &prepared.source,
        backend: &prepared.system.backend,
        backend_path: &prepared.system.backend_path,
        config_settings: &request.config_settings,
        environment: variables,
        log,
    };
    match hooks::call(&call, hook, directory)? {
        hooks::HookOutcome::Returned(value) => Ok(value),
        hooks::HookOutcome::Unsupported => Err(failure(
            request,
            &prepared.system,
            hook,
            "the backend has no such hook".to_string(),
            log,
        )),
        hooks::HookOutcome::Failed { message } => {
            Err(failure(request, &prepared.system, hook, message, log))
        }
    }
}

/// 5. install the pins, 6. add what `get_requires_for_build_wheel` asks for besides.
fn settle(
    request: &BuildRequest,
    prepared: &Prepared,
    target: &Target,
    options: &BuildOptions,
    index: &IndexClient,
) -> Result<Settled, BuildError> {
    let log_directory = options.cache.bucket(crate::cache::Bucket::BuildLogs);
    fs_err::create_dir_all(&log_directory)
        .map_err(BuildError::io("cannot create", &log_directory))?;
    let log = hooks::log_path(
        &log_directory,
        &request.name,
        &crate::digest::sha256_hex(prepared.source_id.as_bytes()),
    );
    fs_err::write(
        &log,
        format!(
            "akpkg: building {} ({}) with {}\n",
            request.name, prepared.source_id, prepared.system.backend
        ),
    )
    .map_err(BuildError::io("cannot write", &log))?;
    let mut pins = prepared.pins.clone();
    let mut environment = environment::ensure(&pins, target, options)?;
    let mut variables = build_variables(&environment, target, options, &prepared.source);
    let hook = "get_requires_for_build_wheel";
    let asked = call_hook(
        request,
        prepared,
        &environment,
        &variables,
        &log,
        hook,
        None,
    )?;
    let dynamic: Vec<Requirement> = asked
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item.as_str())
        .map(|text| {
            crate::pep508::parse_requirement(text).map_err(|error| {
                let message = format!("the backend asked for `{text}`: {error}");
                failure(request, &prepared.system, hook, message, &log)
            })
        })
        .collect::<Result<_, _>>()?;
    let missing: Vec<&Requirement> = dynamic
        .iter()
        .filter(|requirement| !satisfied(requirement, &pins, target))
        .collect();
    if !missing.is_empty() {
        if request.environment.is_some() {
            return Err(BuildError::StaleEnvironment {
                name: request.name.clone(),
                missing: missing
                    .iter()
                    .map(|requirement| format!("`{requirement}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let mut all = prepared.system.requires.clone();
        all.extend(dynamic.iter().cloned());
        pins = resolve(&all, target, index)?;
        environment = environment::ensure(&pins, target, options)?;
        variables = build_variables(&environment, target, options, &prepared.source);
    }
    Ok(Settled {
        environment,
        variables,
        pins,
        dynamic,
        log,
    })
}

/// The build environment of one distribution, for akpkg's lock: steps 1 to 6, no build.
///
/// For a target that is not installed here (`--python-version … --platform …`) no backend can
/// run: the static requirements are resolved for the target's markers and tags, and what
/// `get_requires_for_build_wheel` would add is not known.
pub fn lock_build_environment(
    request: &BuildRequest,
    target: &Target,
    options: &BuildOptions,
    index: &IndexClient,
) -> Result<LockedBuildEnvironment, BuildError> {
    let prepared = prepare(request, target, index)?;
    if target.interpreter.is_none() {
        return Ok(LockedBuildEnvironment {
            name: request.name.clone(),
            backend: prepared.system.backend.clone(),
            requires: prepared
                .system
                .requires
                .iter()
                .map(ToString::to_string)
                .collect(),
            environment: prepared.pins,
        });
    }
    let settled = settle(request, &prepared, target, options, index)?;
    Ok(LockedBuildEnvironment {
        name: request.name.clone(),
        backend: prepared.system.backend.clone(),
        requires: all_requires(&prepared.system, &settled.dynamic),
        environment: settled.pins,
    })
}

/// Build one distribution (the steps in the module's documentation).
pub fn build_wheel(
    request: &BuildRequest,
    target: &Target,
    options: &BuildOptions,
    index: &IndexClient,
) -> Result<BuiltWheel, BuildError> {
    let started = Instant::now();
    let finished = |built: BuiltWheel| BuiltWheel {
        seconds: started.elapsed().as_secs_f64(),
        ..built
    };
    // 4. With locked pins the key is known before anything is unpacked or copied.
    if let Some(pins) = &request.environment
        && let Some((source_id, system)) = source::peek(&request.source)
        && let Some(built) = cached_or_remote(
            &build_key(request, &source_id, &system, pins, target, options),
            options,
        )
    {
        return Ok(finished(built));
    }
    let prepared = prepare(request, target, index)?;
    let key_of = |pins: &[Pin]| {
        build_key(
            request,
            &prepared.source_id,
            &prepared.system,
            pins,
            target,
            options,
        )
    };
    if request.environment.is_some()
        && let Some(built) = cached_or_remote(&key_of(&prepared.pins), options)
    {
        return Ok(finished(built));
    }
    let settled = settle(request, &prepared, target, options, index)?;
    let key = key_of(&settled.pins);
    if let Some(built) = cached_or_remote(&key, options) {
        return Ok(finished(built));
    }

    // 7. The wheel.
    let output = prepared.work.path().join("wheel");
    fs_err::create_dir_all(&output).map_err(BuildError::io("cannot create", &output))?;
    let hook = "build_wheel";
    let returned = call_hook(
        request,
        &prepared,
        &settled.environment,
        &settled.variables,
        &settled.log,
        hook,
        Some(&output),
    )?;
    let filename = returned.as_str().unwrap_or_default().to_string();
    let produced = output.join(&filename);
    if filename.is_empty() || WheelFilename::from_str(&filename).is_err() || !produced.is_file() {
        let message = format!("the backend returned `{returned}`, which is not a wheel it wrote");
        return Err(failure(
            request,
            &prepared.system,
            hook,
            message,
            &settled.log,
        ));
    }
    let requires = all_requires(&prepared.system, &settled.dynamic);
    let built = store(&key, &produced, &filename, options, |sha256| BuiltWheel {
        name: request.name.clone(),
        path: PathBuf::new(),
        filename: filename.clone(),
        sha256,
        backend: prepared.system.backend.clone(),
        requires,
        environment: settled.pins,
        source: prepared.source_id.clone(),
        from_cache: false,
        from_remote_cache: false,
        seconds: 0.0,
    })?;
    if let Some(remote) = options.fetch.remote_cache() {
        let directory = options.cache.bucket(crate::cache::Bucket::Built).join(&key);
        remote.push_built_wheel(&key, &directory.join(BUILD_RECORD), &built.path);
    }
    Ok(finished(built))
}

/// The static requirements, then the dynamic ones not already among them.
fn all_requires(system: &BuildSystem, dynamic: &[Requirement]) -> Vec<String> {
    let mut requires: Vec<String> = system.requires.iter().map(ToString::to_string).collect();
    for requirement in dynamic.iter().map(ToString::to_string) {
        if !requires.contains(&requirement) {
            requires.push(requirement);
        }
    }
    requires
}

/// The scrubbed environment of a build: what [`PASSED_THROUGH`] lets in, the deterministic
/// settings, then `--build-env`.
fn build_variables(
    environment: &environment::Environment,
    target: &Target,
    options: &BuildOptions,
    source: &Path,
) -> Vec<(String, String)> {
    let mut variables: BTreeMap<String, String> = PASSED_THROUGH
        .iter()
        .filter_map(|name| {
            std::env::var(name)
                .ok()
                .map(|value| (name.to_string(), value))
        })
        .collect();
    let path = environment::path_with(
        &environment.scripts,
        variables.get("PATH").map(String::as_str),
    );
    variables.insert("PATH".to_string(), path);
    for (name, value) in [
        ("SOURCE_DATE_EPOCH", options.source_date_epoch.to_string()),
        ("PYTHONHASHSEED", "0".to_string()),
        ("PYTHONNOUSERSITE", "1".to_string()),
        ("PYTHONDONTWRITEBYTECODE", "1".to_string()),
        // The log keeps the order in which the backend wrote to stdout and stderr.
        ("PYTHONUNBUFFERED", "1".to_string()),
        ("LC_ALL", "C.UTF-8".to_string()),
        ("VIRTUAL_ENV", environment.root.display().to_string()),
    ] {
        variables.insert(name.to_string(), value);
    }
    // Compilers record source paths (debug info, __FILE__); the temporary source directory
    // and the environment's path differ on every build, so they are mapped to fixed names and
    // the same inputs give the same extension modules.
    // The interpreter's own prefix too: its headers' paths (in `__FILE__` and debug
    // information) would name the build machine's interpreter; they become the path a
    // self-contained prefix's copied interpreter names instead.
    let mut maps = vec![
        (source.display().to_string(), "/usr/src/akpkg-build"),
        (
            environment.root.display().to_string(),
            "/usr/src/akpkg-build-env",
        ),
    ];
    if let Some(interpreter) = &target.interpreter
        && !crate::interpreter::is_system_prefix(&interpreter.base_prefix)
    {
        maps.push((
            interpreter.base_prefix.display().to_string(),
            crate::interpreter::PLACEHOLDER_PREFIX,
        ));
    }
    for flags in ["CFLAGS", "CXXFLAGS"] {
        let mut value = variables.get(flags).cloned().unwrap_or_default();
        for (from, to) in &maps {
            value.push_str(&format!(" -ffile-prefix-map={from}={to}"));
        }
        variables.insert(flags.to_string(), value.trim().to_string());
    }
    let mut rustflags = variables.get("RUSTFLAGS").cloned().unwrap_or_default();
    for (from, to) in &maps {
        rustflags.push_str(&format!(" --remap-path-prefix={from}={to}"));
    }
    variables.insert("RUSTFLAGS".to_string(), rustflags.trim().to_string());
    for (name, value) in &options.build_env {
        variables.insert(name.clone(), value.clone());
    }
    variables.into_iter().collect()
}

/// Whether the pins satisfy a requirement the backend asked for.
fn satisfied(requirement: &Requirement, pins: &[Pin], target: &Target) -> bool {
    if !requirement.evaluate_markers(&target.markers, &[]) {
        return true;
    }
    pins.iter().any(|pin| {
        pin.name == requirement.name
            && match &requirement.version_or_url {
                None => true,
                Some(VersionOrUrl::VersionSpecifier(specifiers)) => {
                    specifiers.contains(&pin.version)
                }
                Some(VersionOrUrl::Url(_)) => false,
            }
    })
}

/// The build cache key: everything that can change the wheel.
fn build_key(
    request: &BuildRequest,
    source_id: &str,
    system: &BuildSystem,
    pins: &[Pin],
    target: &Target,
    options: &BuildOptions,
) -> String {
    let key = serde_json::json!({
        // 3: the interpreter's prefix is mapped out of compiled paths.
        "format": 3,
        "source": source_id,
        "backend": system.backend,
        "backend-path": system.backend_path,
        "environment": pins.iter().map(|pin| format!("{} {} {}", pin.name, pin.version, pin.sha256)).collect::<Vec<_>>(),
        "config-settings": request.config_settings,
        "build-env": options.build_env,
        "source-date-epoch": options.source_date_epoch,
        "python": target.python_version.to_string(),
        "tags": target.tags.ordered().first().map(ToString::to_string),
    });
    crate::digest::BuildKey::new()
        .document(&key.to_string())
        .finish()
        .to_string()
}

const BUILD_RECORD: &str = "akpkg-build.json";

/// A wheel of the build cache, if one was stored under `key`.
fn cached(key: &str, options: &BuildOptions) -> Option<BuiltWheel> {
    let directory = options.cache.bucket(crate::cache::Bucket::Built).join(key);
    let text = fs_err::read_to_string(directory.join(BUILD_RECORD)).ok()?;
    let mut built: BuiltWheel = serde_json::from_str(&text).ok()?;
    built.path = directory.join(&built.filename);
    built.from_cache = true;
    built.path.is_file().then_some(built)
}

/// A wheel of the build cache, else one the remote cache has under `key`, checked and brought
/// into the build cache first: its blobs by digest and its key (by the remote cache), then the
/// record's sha256 of the wheel and every hash of the wheel's own RECORD.
fn cached_or_remote(key: &str, options: &BuildOptions) -> Option<BuiltWheel> {
    if let Some(built) = cached(key, options) {
        return Some(built);
    }
    let remote = options.fetch.remote_cache()?;
    let parent = options.cache.bucket(crate::cache::Bucket::Built);
    let (staging, files) = remote.pull_into(
        &parent,
        &crate::registry::built_wheel_tag(key),
        crate::registry::BUILT_WHEEL_TYPE,
    )?;
    let named = |wanted: &str| {
        files
            .iter()
            .find(|(media_type, _)| media_type == wanted)
            .map(|(_, name)| name.clone())
    };
    let record_name = named(crate::registry::RECORD_MEDIA_TYPE)?;
    let wheel_name = named(crate::registry::FILE_MEDIA_TYPE)?;
    let record: BuiltWheel = fs_err::read(staging.path().join(&record_name))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())?;
    let wheel = staging.path().join(&wheel_name);
    let actual = Sha256::of_file(&wheel).ok()?;
    let entry = format!("the built wheel {wheel_name} (key {key})");
    if record_name != BUILD_RECORD || record.filename != wheel_name || record.sha256 != actual {
        remote.refused(
            &entry,
            &format!("sha256:{}", record.sha256),
            &format!("sha256:{actual}"),
        );
        return None;
    }
    // The installer's own check (every entry against RECORD, hostile entries refused), into
    // the unpack cache the install then reuses.
    if let Err(problem) = crate::install::unpack_cached(
        &wheel,
        Some(&wheel_name),
        &actual,
        &options.cache,
        true,
        &options.fetch.network.limits,
    ) {
        remote.refused(
            &entry,
            "a wheel that matches its RECORD",
            &problem.to_string(),
        );
        return None;
    }
    crate::registry::publish(staging, &parent.join(key));
    let mut built = cached(key, options)?;
    built.from_remote_cache = true;
    Some(built)
}

/// Move a fresh wheel into `CACHE/built-v1/<key>/` with its record, atomically.
/// `record` makes the build record from the stored wheel's sha256.
fn store(
    key: &str,
    wheel: &Path,
    filename: &str,
    options: &BuildOptions,
    record: impl FnOnce(Sha256) -> BuiltWheel,
) -> Result<BuiltWheel, BuildError> {
    let parent = options.cache.bucket(crate::cache::Bucket::Built);
    let staging = crate::cache::incoming_dir_in(&parent)
        .map_err(BuildError::io("cannot create a directory in", &parent))?;
    let staged_wheel = staging.path().join(filename);
    fs_err::copy(wheel, &staged_wheel).map_err(BuildError::io("cannot copy to", &staged_wheel))?;
    let mut built = record(
        Sha256::of_file(&staged_wheel).map_err(BuildError::io("cannot read", &staged_wheel))?,
    );
    let record = serde_json::to_string_pretty(&built)
        .map_err(|error| BuildError::Setup(error.to_string()))?;
    let record_path = staging.path().join(BUILD_RECORD);
    fs_err::write(&record_path, record).map_err(BuildError::io("cannot write", &record_path))?;
    let directory = parent.join(key);
    // Another process that stored the same build first has as good a wheel.
    crate::cache::publish_dir(staging, &directory, |entry| {
        entry.join(BUILD_RECORD).is_file()
    })
    .map_err(BuildError::io("cannot move into place", &directory))?;
    built.path = directory.join(&built.filename);
    Ok(built)
}

/// A failed hook: the message, the log's last 40 lines, its path, and hints.
fn failure(
    request: &BuildRequest,
    system: &BuildSystem,
    hook: &'static str,
    message: String,
    log: &Path,
) -> BuildError {
    let (shown, tail) = crate::runner::tail(log, crate::runner::TAIL_LINES);
    let whole = fs_err::read_to_string(log).unwrap_or_default();
    let hint = hints::hints_for(&whole)
        .iter()
        .map(|hint| format!("\nhint: {hint}"))
        .collect::<String>();
    BuildError::Backend(Box::new(error::BackendFailure {
        name: request.name.clone(),
        backend: system.backend.clone(),
        hook,
        message,
        shown,
        tail,
        log: log.to_path_buf(),
        hint,
    }))
}
