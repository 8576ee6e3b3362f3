//! Steps 6 and 7 of assemble: the wheels akpkg builds from the lock's sources (sdists, git
//! checkouts, the application's own tree), then every wheel the lock pins installed into the
//! staged prefix.

use std::path::Path;
use std::str::FromStr;

use super::inputs::Inputs;
use super::{AssembleError, AssembleOptions, LoadedRecipe};
use crate::fetch;
use crate::install::{
    self, InstallOptions, InstalledDistribution, Layout, LinkMode, WheelToInstall,
};
use crate::interpreter::Target;
use crate::lock::{AkpkgLock, BuildKind, LockedBuild};
use crate::pep517::{self, BuildRequest, BuiltWheel, Pin, SourceInput};
use crate::progress::Progress;

/// One build request per locked build, its source taken from what step 5 fetched.
pub fn build_requests(
    lock: &AkpkgLock,
    inputs: &Inputs,
    source: &Path,
    options: &AssembleOptions,
) -> Result<Vec<BuildRequest>, AssembleError> {
    lock.build
        .iter()
        .map(|locked| {
            let (_, environment) = lock.environment_of(&locked.name).ok_or_else(|| {
                AssembleError::Recipe(format!("lock: no environment for `{}`", locked.name))
            })?;
            Ok(BuildRequest {
                name: locked.name.clone(),
                source: source_of(locked, lock, inputs, source)?,
                environment: Some(pins_of(environment)?),
                config_settings: options
                    .config_settings
                    .get(&locked.name)
                    .cloned()
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Where a locked build's source is: its sdist (re-hashed: an sdist's bytes feed its build and
/// its build-cache key, so a file that changed in the cache is caught, and removed, rather
/// than built), its git checkout, or a directory of the application's tree.
fn source_of(
    locked: &LockedBuild,
    lock: &AkpkgLock,
    inputs: &Inputs,
    source: &Path,
) -> Result<SourceInput, AssembleError> {
    match locked.kind {
        BuildKind::Sdist => {
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
            let artifact_cache = fetch::ArtifactCache::new(&inputs.fetch_options.cache);
            let path = inputs
                .fetched
                .iter()
                .find(|artifact| artifact.request.sha256 == file.sha256)
                .map(|artifact| artifact_cache.check(&artifact.request))
                .transpose()?
                .ok_or_else(|| {
                    AssembleError::Recipe(format!("`{}`: its sdist was not fetched", locked.name))
                })?;
            Ok(SourceInput::Sdist(path))
        }
        BuildKind::Git => {
            let (git, checkout) = lock
                .git
                .iter()
                .zip(&inputs.checkouts)
                .find(|(git, _)| git.name == locked.name)
                .ok_or_else(|| {
                    AssembleError::Recipe(format!("lock: no git source for `{}`", locked.name))
                })?;
            Ok(SourceInput::Directory(match &git.subdirectory {
                Some(subdirectory) => checkout.directory.join(subdirectory),
                None => checkout.directory.clone(),
            }))
        }
        BuildKind::Workspace | BuildKind::Project | BuildKind::Directory => Ok(
            SourceInput::Directory(source.join(locked.path.as_deref().unwrap_or("."))),
        ),
    }
}

/// Build every request (from the build cache where it can); all failures are reported at once.
pub fn build_all(
    requests: &[BuildRequest],
    target: &Target,
    options: &AssembleOptions,
    progress: &dyn Progress,
) -> Result<Vec<BuiltWheel>, AssembleError> {
    let results = pep517::build_wheels_reporting(requests, target, &options.build, progress);
    let mut built = Vec::new();
    let mut failures = Vec::new();
    for (request, result) in requests.iter().zip(results) {
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
    Ok(built)
}

/// The build stage's line.
pub fn build_detail(built: &[BuiltWheel]) -> String {
    let from_cache = built.iter().filter(|wheel| wheel.from_cache).count();
    let from_remote_cache = built.iter().filter(|wheel| wheel.from_remote_cache).count();
    format!(
        "{} wheels, {from_cache} from the build cache{}",
        built.len(),
        super::remote_cache_note(from_remote_cache)
    )
}

/// Step 7: the lock's runtime wheels and the built ones, installed into `layout`; the wheels in
/// the order they were installed, with what each became.
pub fn install(
    loaded: &LoadedRecipe,
    inputs: &Inputs,
    built: &[BuiltWheel],
    layout: &Layout,
    options: &AssembleOptions,
    progress: &dyn Progress,
) -> Result<Installed, AssembleError> {
    let lock = &loaded.lock;
    let mut wheels: Vec<WheelToInstall> = inputs
        .fetched
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
        requested: wheel.name == loaded.recipe.name,
        direct_url: None,
    }));
    let report = install::install_wheels_reporting(
        progress,
        layout,
        &wheels,
        &InstallOptions {
            cache: options.build.cache.clone(),
            link_mode: LinkMode::Copy,
            verify_record: options.verify_record,
            compile: options.compile,
            absolute_shebangs: false,
            shared_file_rules: loaded.recipe.shared_files.clone(),
            limits: options.fetch.network.limits,
        },
    )?;
    // Paired by the wheel each distribution came from, never by position.
    let distributions = report
        .distributions
        .into_iter()
        .map(|distribution| {
            let wheel = wheels
                .iter()
                .find(|wheel| wheel.path == distribution.wheel)
                .cloned()
                .ok_or_else(|| {
                    AssembleError::Recipe(format!(
                        "{} was installed from {}, which was not asked for",
                        distribution.name,
                        distribution.wheel.display()
                    ))
                })?;
            Ok((wheel, distribution))
        })
        .collect::<Result<_, AssembleError>>()?;
    Ok(Installed {
        distributions,
        shared_files: report.shared_files,
        warnings: report.warnings,
    })
}

/// The install step's result: each distribution with the wheel it came from, the paths two
/// distributions shipped (resolved), and the warnings for the summary.
pub struct Installed {
    pub distributions: Vec<(WheelToInstall, InstalledDistribution)>,
    pub shared_files: Vec<install::SharedFile>,
    pub warnings: Vec<String>,
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
