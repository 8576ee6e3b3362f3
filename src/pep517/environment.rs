//! Isolated build environments, without pip: the pinned wheels installed by akpkg's own
//! installer into a fresh virtual environment for the target interpreter.
//!
//! An environment is keyed by the interpreter and the pins' hashes, created in a temporary
//! directory and renamed into `CACHE/build-envs-v1/<key>` when complete, then shared by every build
//! that needs the same pins (the four hatchling members and authentik share one). Builds only
//! read it.

use std::path::{Path, PathBuf};

use super::{BuildError, BuildOptions, Pin};
use crate::fetch::{self, ArtifactRequest};
use crate::install::{self, InstallOptions, Layout, LinkMode, WheelToInstall};
use crate::interpreter::Target;

/// A ready environment.
#[derive(Debug, Clone)]
pub struct Environment {
    pub root: PathBuf,
    pub python: PathBuf,
    pub scripts: PathBuf,
}

fn key(pins: &[Pin], target: &Target) -> String {
    let mut key = crate::digest::BuildKey::new();
    key.line("akpkg build environment 1");
    if let Some(interpreter) = &target.interpreter {
        key.line(&interpreter.executable.display().to_string());
    }
    key.line(&target.python_version.to_string());
    for pin in pins {
        key.line(&format!("{} {} {}", pin.name, pin.version, pin.sha256));
    }
    key.finish().as_str()[..32].to_string()
}

/// The environment with exactly `pins`, created if needed.
pub fn ensure(
    pins: &[Pin],
    target: &Target,
    options: &BuildOptions,
) -> Result<Environment, BuildError> {
    let interpreter = target.interpreter.as_ref().ok_or_else(|| {
        BuildError::Setup(
            "building needs a real interpreter (--python), not a described target".to_string(),
        )
    })?;
    let parent = options
        .cache
        .bucket(crate::cache::Bucket::BuildEnvironments);
    let root = parent.join(key(pins, target));
    let complete = root.join(".akpkg-complete");
    let environment = Environment {
        python: root.join(&interpreter.scheme.scripts).join("python"),
        scripts: root.join(&interpreter.scheme.scripts),
        root: root.clone(),
    };
    if complete.is_file() {
        return Ok(environment);
    }

    let requests: Vec<ArtifactRequest> = pins
        .iter()
        .map(|pin| ArtifactRequest {
            name: pin.name.to_string(),
            version: pin.version.to_string(),
            filename: pin.filename.clone(),
            url: Some(pin.url.clone()),
            sha256: pin.sha256.clone(),
            size: None,
        })
        .collect();
    let fetched = fetch::fetch_all(&requests, &options.fetch, &fetch::NoDownloadProgress)?;

    let staging = crate::cache::incoming_dir_in(&parent)
        .map_err(BuildError::io("cannot create a directory in", &parent))?;
    let staged = staging.path().join("env");
    let layout = Layout::new(target, &staged, None, None)?;
    let wheels: Vec<WheelToInstall> = fetched
        .iter()
        .map(|artifact| WheelToInstall {
            filename: Some(artifact.request.filename.to_string()),
            path: artifact.path.clone(),
            sha256: Some(artifact.request.sha256.clone()),
            requested: true,
            direct_url: None,
        })
        .collect();
    layout.create_environment()?;
    install::install_wheels(
        &layout,
        &wheels,
        &InstallOptions {
            cache: options.cache.clone(),
            // Copies: a backend that touched its own files must not reach the shared cache.
            link_mode: LinkMode::Copy,
            verify_record: true,
            compile: false,
            absolute_shebangs: false,
            shared_file_rules: Default::default(),
            limits: options.fetch.network.limits,
        },
    )?;
    let staged_complete = staged.join(".akpkg-complete");
    fs_err::write(&staged_complete, "")
        .map_err(BuildError::io("cannot write", &staged_complete))?;
    // Another build that made the same environment first has as good a one.
    crate::cache::publish_path(&staged, &root, |_| complete.is_file())
        .map_err(BuildError::io("cannot move into place", &root))?;
    Ok(environment)
}

/// `PATH` with the environment's scripts first.
pub fn path_with(scripts: &Path, inherited: Option<&str>) -> String {
    match inherited {
        Some(path) if !path.is_empty() => format!("{}:{path}", scripts.display()),
        _ => format!("{}:/usr/local/bin:/usr/bin:/bin", scripts.display()),
    }
}
