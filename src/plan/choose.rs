//! Choose, for one reached distribution, the wheel to install or the build that makes one.
//!
//! Local and git sources are always built. Index and URL sources use the best-ranked
//! compatible wheel unless the binary policy forbids it, else their sdist.

use std::path::Path;

use super::walk::Reached;
use super::{
    Action, BinaryDecision, BinaryPolicy, BuildKind, PlanError, PlannedDistribution, Role,
};
use crate::interpreter::Target;
use crate::lock::{Artifact, Lock, Package, Source};
use crate::tags::WheelFilename;

/// How many of the target's tags an error message shows.
const TAGS_IN_MESSAGES: usize = 4;

pub(super) fn choose(
    lock: &Lock,
    target: &Target,
    policy: &BinaryPolicy,
    node: &Reached,
) -> Result<PlannedDistribution, PlanError> {
    let package = &lock.packages[node.package];
    let role = if Some(node.package) == lock.project_root {
        Role::Project
    } else if matches!(package.source, Source::Editable { .. }) {
        Role::WorkspaceMember
    } else {
        Role::Dependency
    };
    let decision = policy.decide(&package.name);
    let (action, reason) = match &package.source {
        Source::Virtual { .. } => (
            Action::Nothing,
            "virtual project: only its dependencies are installed".to_string(),
        ),
        Source::Git { commit, .. } => {
            refuse_only_binary(package, &decision)?;
            let short = &commit[..commit.len().min(12)];
            (
                build(BuildKind::Git),
                format!("git source at commit {short}"),
            )
        }
        Source::Editable { path } | Source::Directory { path } => {
            refuse_only_binary(package, &decision)?;
            let kind = match role {
                Role::Project => BuildKind::Project,
                Role::WorkspaceMember => BuildKind::Workspace,
                Role::Dependency => BuildKind::Directory,
            };
            (build(kind), local_reason(role, path))
        }
        Source::Registry { .. } | Source::Url { .. } | Source::Path { .. } => {
            choose_archive(package, target, &decision)?
        }
    };
    // An override says so first: it is why this source was chosen at all.
    let reason = match &package.override_note {
        Some(note) => format!("override: {note}; {reason}"),
        None => reason,
    };
    Ok(PlannedDistribution {
        name: package.name.clone(),
        version: package.version.clone(),
        source: package.source.clone(),
        role,
        action,
        reason,
        required_by: node.parent.map(|index| lock.packages[index].name.clone()),
    })
}

fn build(kind: BuildKind) -> Action {
    Action::Build { kind, sdist: None }
}

fn local_reason(role: Role, path: &Path) -> String {
    match role {
        Role::Project => "the project itself".to_string(),
        Role::WorkspaceMember => format!("workspace member at {}", path.display()),
        Role::Dependency => format!("local source tree at {}", path.display()),
    }
}

fn refuse_only_binary(package: &Package, decision: &BinaryDecision) -> Result<(), PlanError> {
    match decision {
        BinaryDecision::OnlyBinary(origin) => Err(PlanError::OnlyBinaryButSource {
            name: package.name.to_string(),
            source_kind: package.source.kind().to_string(),
            origin: origin.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Index, URL and path sources: a wheel when allowed and one fits, else the sdist.
fn choose_archive(
    package: &Package,
    target: &Target,
    decision: &BinaryDecision,
) -> Result<(Action, String), PlanError> {
    let version = package
        .version
        .as_ref()
        .map_or_else(|| "(unversioned)".to_string(), ToString::to_string);

    // A flat requirements file names hashes, not files: the index decides at fetch time.
    if package.wheels.is_empty() && package.sdist.is_none() && !package.allowed_hashes.is_empty() {
        let count = package.allowed_hashes.len();
        return Ok((
            Action::FromIndex {
                hashes: package.allowed_hashes.clone(),
            },
            format!("the index file matching one of {count} pinned hashes"),
        ));
    }

    let best_wheel = best_wheel(package, target);
    match (decision, best_wheel) {
        (BinaryDecision::NoBinary(origin), _) => {
            let sdist = package
                .sdist
                .clone()
                .ok_or_else(|| PlanError::NoBinaryWithoutSdist {
                    name: package.name.to_string(),
                    version: version.clone(),
                    origin: origin.to_string(),
                })?;
            Ok((sdist_build(sdist), format!("no-binary: {origin}")))
        }
        (_, Some((artifact, tag, compatible))) => {
            let total = package.wheels.len();
            Ok((
                Action::Wheel { artifact, tag },
                format!("best of {compatible} compatible wheels (of {total})"),
            ))
        }
        (BinaryDecision::OnlyBinary(origin), None) => Err(PlanError::OnlyBinaryWithoutWheel {
            name: package.name.to_string(),
            version,
            origin: origin.to_string(),
            wheel_tags: wheel_tags(package),
            target_tags: target.best_tags(TAGS_IN_MESSAGES).join(", "),
        }),
        (BinaryDecision::Either, None) => match &package.sdist {
            Some(sdist) => {
                let reason = if package.wheels.is_empty() {
                    "no wheels in the lock".to_string()
                } else {
                    format!(
                        "none of its {} wheels fits this target",
                        package.wheels.len()
                    )
                };
                Ok((sdist_build(sdist.clone()), reason))
            }
            None => Err(PlanError::NoUsableArtifact {
                name: package.name.to_string(),
                version,
                wheel_tags: wheel_tags(package),
                target_tags: target.best_tags(TAGS_IN_MESSAGES).join(", "),
            }),
        },
    }
}

fn sdist_build(sdist: Artifact) -> Action {
    Action::Build {
        kind: BuildKind::Sdist,
        sdist: Some(sdist),
    }
}

/// The best-ranked compatible wheel, its best tag, and how many wheels were compatible.
fn best_wheel(package: &Package, target: &Target) -> Option<(Artifact, String, usize)> {
    let mut compatible = 0;
    let mut best: Option<(usize, &Artifact)> = None;
    for artifact in &package.wheels {
        let filename: WheelFilename = match artifact.filename.parse() {
            Ok(filename) => filename,
            Err(error) => {
                tracing::warn!(package = %package.name, %error, "skipping a wheel");
                continue;
            }
        };
        if let Some(rank) = target.tags.rank(&filename) {
            compatible += 1;
            if best.is_none_or(|(best_rank, _)| rank < best_rank) {
                best = Some((rank, artifact));
            }
        }
    }
    best.map(|(rank, artifact)| {
        let tag = target.tags.ordered()[rank].to_string();
        (artifact.clone(), tag, compatible)
    })
}

fn wheel_tags(package: &Package) -> String {
    if package.wheels.is_empty() {
        return "(the lock lists no wheels)".to_string();
    }
    package
        .wheels
        .iter()
        .map(
            |artifact| match artifact.filename.parse::<WheelFilename>() {
                Ok(filename) => filename.tag_text(),
                Err(_) => artifact.filename.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join(", ")
}
