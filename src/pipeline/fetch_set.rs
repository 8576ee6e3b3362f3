//! The fetch set of a plan: every wheel, sdist and git source it needs (local sources need no
//! fetching), each pinned by hash or commit.

use crate::fetch::{ArtifactRequest, GitRequest, IndexClient};
use crate::identity::Sha256;
use crate::lock::Source;
use crate::plan::{Action, Plan, PlannedDistribution};

use super::PipelineError;

/// What the fetch stage brings into the cache for a plan.
#[derive(Debug, Default)]
pub struct FetchSet {
    pub artifacts: Vec<ArtifactRequest>,
    pub git: Vec<GitRequest>,
}

impl FetchSet {
    /// The fetch set of `plan`. Hash-only pins (requirements.txt `--hash` lines) need
    /// `from_index`: the index names their files, the hash still decides.
    pub fn of_plan(
        plan: &Plan,
        from_index: Option<(&IndexClient, &crate::interpreter::Target)>,
    ) -> Result<FetchSet, PipelineError> {
        let mut set = FetchSet::default();
        for distribution in &plan.distributions {
            set.add(distribution, from_index)?;
        }
        Ok(set)
    }

    /// The fetch set of akpkg's lock: every runtime artifact, build-environment wheel and git
    /// source, each file once.
    pub fn of_akpkg_lock(lock: &crate::lock::AkpkgLock) -> FetchSet {
        let mut seen = std::collections::HashSet::new();
        let artifacts = lock
            .runtime
            .iter()
            .chain(
                lock.environment
                    .iter()
                    .flat_map(|environment| &environment.packages),
            )
            .filter(|file| seen.insert(file.sha256.clone()))
            .map(|file| ArtifactRequest {
                name: file.name.clone(),
                version: file.version.clone(),
                filename: file.filename.clone(),
                url: Some(file.url.clone()),
                sha256: file.sha256.clone(),
                size: None,
            })
            .collect();
        let git = lock
            .git
            .iter()
            .map(|git| GitRequest {
                name: git.name.clone(),
                version: git.version.clone(),
                repository: git.repository.clone(),
                commit: git.commit.clone(),
            })
            .collect();
        FetchSet { artifacts, git }
    }

    fn add(
        &mut self,
        distribution: &PlannedDistribution,
        from_index: Option<(&IndexClient, &crate::interpreter::Target)>,
    ) -> Result<(), PipelineError> {
        let name = distribution.name.to_string();
        let version = distribution
            .version
            .as_ref()
            .map_or_else(String::new, ToString::to_string);
        let artifact = match &distribution.action {
            Action::Wheel { artifact, .. }
            | Action::Build {
                sdist: Some(artifact),
                ..
            } => artifact,
            Action::Build { sdist: None, .. } => {
                if let Source::Git {
                    repository, commit, ..
                } = &distribution.source
                {
                    let commit =
                        commit
                            .parse()
                            .map_err(|error: crate::identity::IdentityError| {
                                PipelineError::GitCommit {
                                    name: name.clone(),
                                    message: error.to_string(),
                                }
                            })?;
                    self.git.push(GitRequest {
                        name,
                        version,
                        repository: repository.clone(),
                        commit,
                    });
                }
                return Ok(());
            }
            Action::FromIndex { hashes } => {
                let Some(from_index) = from_index else {
                    return Err(PipelineError::NeedsIndex { name });
                };
                let pinned: Vec<Sha256> = hashes.iter().filter_map(|hash| hash.sha256()).collect();
                self.artifacts
                    .push(from_index_by_hash(name, version, &pinned, from_index)?);
                return Ok(());
            }
            Action::Nothing => return Ok(()),
        };
        let sha256 = artifact
            .hash
            .as_ref()
            .and_then(|hash| hash.sha256())
            .ok_or_else(|| PipelineError::NoSha256 {
                name: name.clone(),
                version: version.clone(),
                filename: artifact.filename.to_string(),
            })?;
        self.artifacts.push(ArtifactRequest {
            name,
            version,
            filename: artifact.filename.clone(),
            url: artifact.url.clone(),
            sha256,
            size: artifact.size,
        });
        Ok(())
    }
}

/// The file the index lists with one of `pinned`, for this target.
fn from_index_by_hash(
    name: String,
    version: String,
    pinned: &[Sha256],
    (index, target): (&IndexClient, &crate::interpreter::Target),
) -> Result<ArtifactRequest, PipelineError> {
    let sha256s: Vec<&str> = pinned.iter().map(Sha256::as_str).collect();
    let (file, _) = index.file_by_hash(&name, &version, &sha256s, &target.tags)?;
    let index_file = |what: &'static str, message: String| PipelineError::IndexFile {
        name: name.clone(),
        what,
        message,
    };
    let filename = file
        .filename
        .parse()
        .map_err(|error: crate::identity::IdentityError| {
            index_file("file name", error.to_string())
        })?;
    let sha256 =
        file.sha256.as_deref().unwrap_or_default().parse().map_err(
            |error: crate::identity::IdentityError| index_file("sha256", error.to_string()),
        )?;
    Ok(ArtifactRequest {
        name,
        version,
        filename,
        url: Some(file.url.clone()),
        sha256,
        size: None,
    })
}
