//! The build set of a plan: each distribution to build, with its source (a fetched sdist, a
//! git checkout, or a directory of the project), as the PEP 517 stage takes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::fetch::{FetchedArtifact, GitCheckout};
use crate::lock::Source;
use crate::pep517::{BuildRequest, SourceInput};
use crate::plan::{Action, BuildKind, Plan, PlannedDistribution};

use super::{FetchSet, PipelineError};

/// One distribution to build.
#[derive(Debug)]
pub struct PlannedBuild {
    pub request: BuildRequest,
    pub version: String,
    pub kind: BuildKind,
    /// A project or workspace member's path in the source tree (`.` for the root).
    pub tree_path: Option<String>,
}

/// What the fetch stage brought, for finding each build's source.
pub struct FetchedSources<'a> {
    pub fetch_set: &'a FetchSet,
    pub artifacts: &'a [FetchedArtifact],
    /// In the order of `fetch_set.git`.
    pub checkouts: &'a [GitCheckout],
    /// The project's directory, which local sources are relative to.
    pub project_directory: &'a Path,
}

/// The build set of `plan`; `config_settings` gives each distribution's `--config-setting`s.
pub fn build_set<E>(
    plan: &Plan,
    sources: &FetchedSources<'_>,
    config_settings: impl Fn(&str) -> Result<BTreeMap<String, serde_json::Value>, E>,
) -> Result<Vec<PlannedBuild>, E>
where
    E: From<PipelineError>,
{
    let by_sha256: BTreeMap<&str, &Path> = sources
        .artifacts
        .iter()
        .map(|artifact| (artifact.request.sha256.as_str(), artifact.path.as_path()))
        .collect();
    let mut builds = Vec::new();
    for distribution in &plan.distributions {
        let Action::Build { kind, .. } = &distribution.action else {
            continue;
        };
        let name = distribution.name.to_string();
        let (source, tree_path) = source_of(distribution, &by_sha256, sources)?;
        builds.push(PlannedBuild {
            request: BuildRequest {
                config_settings: config_settings(&name)?,
                name,
                source,
                environment: None,
            },
            version: distribution
                .version
                .as_ref()
                .map_or_else(String::new, ToString::to_string),
            kind: *kind,
            tree_path,
        });
    }
    Ok(builds)
}

/// Where one distribution's source is, and its path in the tree when it is the project's.
fn source_of(
    distribution: &PlannedDistribution,
    by_sha256: &BTreeMap<&str, &Path>,
    sources: &FetchedSources<'_>,
) -> Result<(SourceInput, Option<String>), PipelineError> {
    let name = distribution.name.to_string();
    let sdist = match &distribution.action {
        Action::Build { sdist, .. } => sdist.as_ref(),
        _ => None,
    };
    if let Some(sdist) = sdist {
        let sha256 = sdist.hash.as_ref().and_then(|hash| hash.sha256());
        let path = sha256
            .and_then(|sha256| by_sha256.get(sha256.as_str()))
            .ok_or_else(|| PipelineError::SdistNotFetched {
                name,
                filename: sdist.filename.to_string(),
            })?;
        return Ok((SourceInput::Sdist(path.to_path_buf()), None));
    }
    match &distribution.source {
        Source::Git {
            commit,
            subdirectory,
            ..
        } => {
            let checkout: PathBuf = sources
                .fetch_set
                .git
                .iter()
                .zip(sources.checkouts)
                .find(|(request, _)| request.commit == *commit)
                .map(|(_, checkout)| checkout.directory.clone())
                .ok_or(PipelineError::GitNotFetched { name })?;
            let directory = match subdirectory {
                Some(subdirectory) => checkout.join(subdirectory),
                None => checkout,
            };
            Ok((SourceInput::Directory(directory), None))
        }
        Source::Editable { path } | Source::Virtual { path } | Source::Directory { path } => {
            let relative = path.display().to_string();
            let tree_path = if relative.is_empty() {
                ".".to_string()
            } else {
                relative
            };
            Ok((
                SourceInput::Directory(sources.project_directory.join(path)),
                Some(tree_path),
            ))
        }
        other => Err(PipelineError::Unbuildable {
            name,
            kind: other.kind(),
        }),
    }
}
