//! The `plan` stage: for one target, the exact distributions to install and, for each, the
//! artifact to use or the kind of build that makes one.
//!
//! Steps, in order:
//! 1. check the target's Python against the lock's `requires-python`;
//! 2. walk the graph from the roots, evaluating markers and extras ([`walk`]);
//! 3. refuse two versions of one name;
//! 4. choose an artifact or a build for each distribution ([`choose`]).

mod choose;
mod error;
mod render;
mod walk;

use std::collections::BTreeMap;

use pep440_rs::Version;
use pep508_rs::PackageName;

use crate::interpreter::Target;
pub use crate::lock::BuildKind;
use crate::lock::{Artifact, Hash, Lock, ProjectSettings, Source};

pub use error::PlanError;
pub use render::{render_json, render_requirements, render_table, write_json};

/// What to install for one target, sorted: the project, workspace members, then by name.
#[derive(Debug, Clone)]
pub struct Plan {
    pub distributions: Vec<PlannedDistribution>,
}

#[derive(Debug, Clone)]
pub struct PlannedDistribution {
    pub name: PackageName,
    pub version: Option<Version>,
    pub source: Source,
    pub role: Role,
    pub action: Action,
    /// Why this action, in words.
    pub reason: String,
    /// The distribution through which this one was first reached (`None` for roots); the
    /// whole chain is [`Plan::chain`].
    pub required_by: Option<PackageName>,
}

impl Plan {
    /// The chain of distributions through which `distribution` is required, from a root;
    /// empty for roots. Built on demand from parent links, so a plan stays linear in size.
    pub fn chain<'a>(
        &'a self,
        by_name: &std::collections::HashMap<&PackageName, usize>,
        distribution: &'a PlannedDistribution,
    ) -> Vec<&'a PackageName> {
        let mut chain = Vec::new();
        let mut parent = distribution.required_by.as_ref();
        while let Some(name) = parent {
            chain.push(name);
            parent = by_name
                .get(name)
                .and_then(|&index| self.distributions[index].required_by.as_ref());
            if chain.len() > self.distributions.len() {
                break;
            }
        }
        chain.reverse();
        chain
    }

    /// Each distribution's index by name, for [`Plan::chain`].
    pub fn index_by_name(&self) -> std::collections::HashMap<&PackageName, usize> {
        self.distributions
            .iter()
            .enumerate()
            .map(|(index, distribution)| (&distribution.name, index))
            .collect()
    }
}

/// How a distribution relates to the project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// The project at the workspace root (authentik itself).
    Project,
    /// Another workspace member, or an editable requirement.
    WorkspaceMember,
    Dependency,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Install this wheel.
    Wheel { artifact: Artifact, tag: String },
    /// Build a wheel from source; `sdist` is the archive for sdist builds.
    Build {
        kind: BuildKind,
        sdist: Option<Artifact>,
    },
    /// The lock names only hashes (requirements.txt): any file on the index with one of them.
    FromIndex { hashes: Vec<Hash> },
    /// A virtual project: only its dependencies are installed.
    Nothing,
}

/// Names selected for a binary policy, each with where the selection came from.
#[derive(Debug, Clone, Default)]
pub struct PackageSelection {
    /// Set when every package is selected (`:all:` or `no-binary = true`), with its origin.
    pub all: Option<String>,
    pub names: BTreeMap<PackageName, String>,
}

impl PackageSelection {
    fn origin(&self, name: &PackageName) -> Option<&str> {
        self.names
            .get(name)
            .or(self.all.as_ref())
            .map(String::as_str)
    }

    fn names_explicitly(&self, name: &PackageName) -> bool {
        self.names.contains_key(name)
    }
}

/// Whether wheels or source builds are allowed, per package.
#[derive(Debug, Clone, Default)]
pub struct BinaryPolicy {
    /// Never use a wheel: build from the sdist.
    pub no_binary: PackageSelection,
    /// Never build: use a wheel or fail.
    pub only_binary: PackageSelection,
}

impl BinaryPolicy {
    /// Start from a project's `[tool.uv]` settings.
    pub fn from_project(settings: &ProjectSettings) -> BinaryPolicy {
        let origin = |key: &str| match &settings.path {
            Some(path) => format!("[tool.uv] {key} in {}", path.display()),
            None => format!("[tool.uv] {key}"),
        };
        // `all` (no-binary, no-build) and the per-package lists, each with the key it came from.
        let selection =
            |all: bool, all_key: &str, names: &[PackageName], names_key: &str| PackageSelection {
                all: all.then(|| origin(all_key)),
                names: names
                    .iter()
                    .map(|name| (name.clone(), origin(names_key)))
                    .collect(),
            };
        BinaryPolicy {
            no_binary: selection(
                settings.no_binary,
                "no-binary",
                &settings.no_binary_packages,
                "no-binary-package",
            ),
            only_binary: selection(
                settings.no_build,
                "no-build",
                &settings.no_build_packages,
                "no-build-package",
            ),
        }
    }

    /// The policy for one package: an explicit name wins over `:all:` of the other list.
    fn decide(&self, name: &PackageName) -> BinaryDecision<'_> {
        if self.no_binary.names_explicitly(name) {
            return BinaryDecision::NoBinary(self.no_binary.origin(name).unwrap_or_default());
        }
        if self.only_binary.names_explicitly(name) {
            return BinaryDecision::OnlyBinary(self.only_binary.origin(name).unwrap_or_default());
        }
        if let Some(origin) = self.no_binary.origin(name) {
            return BinaryDecision::NoBinary(origin);
        }
        if let Some(origin) = self.only_binary.origin(name) {
            return BinaryDecision::OnlyBinary(origin);
        }
        BinaryDecision::Either
    }
}

enum BinaryDecision<'a> {
    Either,
    NoBinary(&'a str),
    OnlyBinary(&'a str),
}

/// Which dependency groups to include besides the main dependencies.
#[derive(Debug, Clone, Default)]
pub struct GroupSelection {
    pub groups: Vec<String>,
    pub all_groups: bool,
}

#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    pub groups: GroupSelection,
    pub binary: BinaryPolicy,
}

/// Make the plan for `target` from `lock`.
pub fn plan(lock: &Lock, target: &Target, options: &PlanOptions) -> Result<Plan, PlanError> {
    // 1. The lock was resolved for these Pythons only.
    if let Some(requires_python) = &lock.requires_python
        && !requires_python.contains(&target.python_version)
    {
        return Err(PlanError::PythonMismatch {
            lock: lock.path.clone(),
            requires_python: requires_python.to_string(),
            python: target.python_version.to_string(),
        });
    }

    // 2. and 3.
    let reached = walk::walk(lock, target, &options.groups)?;

    // 4.
    let mut distributions = reached
        .iter()
        .map(|node| choose::choose(lock, target, &options.binary, node))
        .collect::<Result<Vec<_>, _>>()?;
    distributions.sort_by(|a, b| (a.role, &a.name).cmp(&(b.role, &b.name)));
    Ok(Plan { distributions })
}

#[cfg(test)]
mod tests;
