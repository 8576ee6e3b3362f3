//! Resolving build requirements against an index, with PubGrub.
//!
//! Build requirements are not in uv.lock, so akpkg chooses them: the newest versions that
//! satisfy the specifiers and their own dependencies and markers for the target, as wheels
//! only (a build environment is installed by akpkg's installer, which installs wheels). The
//! result is pinned by artifact hash and recorded in akpkg's lock, so later builds use exactly
//! the same environment.
//!
//! Versions are compared with PEP 440's rules by turning each specifier set into the ranges of
//! the *available* versions it contains: between two neighbouring candidates there is nothing
//! to choose, so a range bounded by real candidates is exact, and no operator needs translating.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{ExtraName, PackageName, Requirement, VersionOrUrl};
use pubgrub::{
    DefaultStringReporter, Dependencies, DependencyConstraints, DependencyProvider,
    PackageResolutionStatistics, PubGrubError, Ranges, Reporter,
};

use super::BuildError;
use crate::fetch::{IndexClient, IndexFile};
use crate::interpreter::Target;
use crate::tags::WheelFilename;

/// One chosen wheel of a build environment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Pin {
    pub name: PackageName,
    pub version: Version,
    pub filename: crate::identity::FileName,
    pub url: String,
    pub sha256: crate::identity::Sha256,
}

/// A node of the resolution: the requirements themselves, a distribution, or a distribution
/// with one extra (which depends on the same version of the distribution).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Node {
    Root,
    Distribution(PackageName, Option<ExtraName>),
}

impl fmt::Display for Node {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Root => write!(formatter, "the build requirements"),
            Node::Distribution(name, None) => write!(formatter, "{name}"),
            Node::Distribution(name, Some(extra)) => write!(formatter, "{name}[{extra}]"),
        }
    }
}

/// A usable version: its best wheel for the target.
#[derive(Debug, Clone)]
struct Candidate {
    version: Version,
    file: IndexFile,
}

struct Provider<'a> {
    index: &'a IndexClient,
    target: &'a Target,
    root: Vec<Requirement>,
    /// Per distribution, usable versions in ascending order.
    candidates: Mutex<HashMap<PackageName, Arc<Vec<Candidate>>>>,
    /// The first index or metadata failure; PubGrub only sees "unavailable".
    failure: Mutex<Option<String>>,
}

/// Resolve `requirements` for `target` into pinned wheels, sorted by name.
pub fn resolve(
    requirements: &[Requirement],
    target: &Target,
    index: &IndexClient,
) -> Result<Vec<Pin>, BuildError> {
    let provider = Provider {
        index,
        target,
        root: requirements.to_vec(),
        candidates: Mutex::new(HashMap::new()),
        failure: Mutex::new(None),
    };
    let asked = requirements
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let solution = match pubgrub::resolve(&provider, Node::Root, Version::new([0])) {
        Ok(solution) => solution,
        Err(PubGrubError::NoSolution(mut tree)) => {
            tree.collapse_no_versions();
            let mut message = DefaultStringReporter::report(&tree);
            if let Some(failure) = provider.failure.lock().ok().and_then(|f| f.clone()) {
                message.push_str(&format!("\n(first failure: {failure})"));
            }
            return Err(BuildError::Resolve { asked, message });
        }
        Err(error) => {
            return Err(BuildError::Resolve {
                asked,
                message: error.to_string(),
            });
        }
    };
    let mut pins = Vec::new();
    for (node, version) in solution {
        let Node::Distribution(name, None) = node else {
            continue;
        };
        let candidates = provider.candidates_of(&name)?;
        let candidate = candidates
            .iter()
            .find(|candidate| candidate.version == version)
            .ok_or_else(|| BuildError::Resolve {
                asked: asked.clone(),
                message: format!("{name} {version} was chosen but has no wheel"),
            })?;
        let invalid = |message: String| BuildError::Resolve {
            asked: asked.clone(),
            message,
        };
        let filename =
            candidate.file.filename.parse().map_err(|error| {
                invalid(format!("the index's file for {name} {version}: {error}"))
            })?;
        let sha256 = candidate
            .file
            .sha256
            .as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(|error| {
                invalid(format!("the index's sha256 for {name} {version}: {error}"))
            })?;
        pins.push(Pin {
            name,
            version,
            filename,
            url: candidate.file.url.clone(),
            sha256,
        });
    }
    pins.sort();
    Ok(pins)
}

impl Provider<'_> {
    fn note_failure(&self, message: String) {
        if let Ok(mut failure) = self.failure.lock() {
            failure.get_or_insert(message);
        }
    }

    /// The versions of `name` that have a wheel for the target, a sha256, a Requires-Python
    /// that admits the target, and are not yanked; pre-releases only when nothing else exists.
    fn candidates_of(&self, name: &PackageName) -> Result<Arc<Vec<Candidate>>, BuildError> {
        if let Some(found) = self
            .candidates
            .lock()
            .ok()
            .and_then(|candidates| candidates.get(name).cloned())
        {
            return Ok(found);
        }
        let files = self.index.files(name.as_ref())?;
        let mut best: HashMap<Version, (usize, IndexFile)> = HashMap::new();
        for file in files {
            if file.yanked || file.sha256.is_none() {
                continue;
            }
            let Ok(wheel) = WheelFilename::from_str(&file.filename) else {
                continue;
            };
            let Some(rank) = self.target.tags.rank(&wheel) else {
                continue;
            };
            if let Some(requires_python) = &file.requires_python {
                let admits = VersionSpecifiers::from_str(requires_python)
                    .is_ok_and(|specifiers| specifiers.contains(&self.target.python_version));
                if !admits {
                    continue;
                }
            }
            match best.get(&wheel.version) {
                Some((existing, _)) if *existing <= rank => {}
                _ => {
                    best.insert(wheel.version.clone(), (rank, file));
                }
            }
        }
        let mut candidates: Vec<Candidate> = best
            .into_iter()
            .map(|(version, (_, file))| Candidate { version, file })
            .collect();
        if candidates
            .iter()
            .any(|candidate| !candidate.version.any_prerelease())
        {
            candidates.retain(|candidate| !candidate.version.any_prerelease());
        }
        candidates.sort_by(|a, b| a.version.cmp(&b.version));
        let candidates = Arc::new(candidates);
        if let Ok(mut cache) = self.candidates.lock() {
            cache.insert(name.clone(), Arc::clone(&candidates));
        }
        Ok(candidates)
    }

    /// The candidates of `name` that `specifiers` admit, as ranges bounded by candidates.
    fn ranges(
        &self,
        name: &PackageName,
        specifiers: Option<&VersionSpecifiers>,
    ) -> Ranges<Version> {
        let Some(specifiers) = specifiers.filter(|specifiers| !specifiers.is_empty()) else {
            return Ranges::full();
        };
        let candidates = match self.candidates_of(name) {
            Ok(candidates) => candidates,
            Err(error) => {
                self.note_failure(error.to_string());
                return Ranges::empty();
            }
        };
        let mut ranges = Ranges::empty();
        let mut run: Option<(&Version, &Version)> = None;
        for candidate in candidates.iter() {
            if specifiers.contains(&candidate.version) {
                run = Some(match run {
                    Some((start, _)) => (start, &candidate.version),
                    None => (&candidate.version, &candidate.version),
                });
            } else if let Some((start, end)) = run.take() {
                ranges = ranges.union(&Ranges::from_range_bounds(start.clone()..=end.clone()));
            }
        }
        if let Some((start, end)) = run {
            ranges = ranges.union(&Ranges::from_range_bounds(start.clone()..=end.clone()));
        }
        ranges
    }

    /// The constraints of a list of requirements, for a node with `extras` active.
    fn constraints(
        &self,
        requirements: &[Requirement],
        extras: &[ExtraName],
    ) -> Result<Vec<(Node, Ranges<Version>)>, String> {
        let mut constraints: Vec<(Node, Ranges<Version>)> = Vec::new();
        // The same distribution named twice must satisfy both.
        let mut add = |node: Node, range: Ranges<Version>| match constraints
            .iter_mut()
            .find(|(existing, _)| *existing == node)
        {
            Some((_, existing)) => *existing = existing.intersection(&range),
            None => constraints.push((node, range)),
        };
        for requirement in requirements {
            if !requirement.evaluate_markers(&self.target.markers, extras) {
                continue;
            }
            let specifiers = match &requirement.version_or_url {
                None => None,
                Some(VersionOrUrl::VersionSpecifier(specifiers)) => Some(specifiers),
                Some(VersionOrUrl::Url(url)) => {
                    return Err(format!(
                        "{} comes from a URL ({url}); build requirements must come from an index",
                        requirement.name
                    ));
                }
            };
            let range = self.ranges(&requirement.name, specifiers);
            add(
                Node::Distribution(requirement.name.clone(), None),
                range.clone(),
            );
            for extra in &requirement.extras {
                add(
                    Node::Distribution(requirement.name.clone(), Some(extra.clone())),
                    range.clone(),
                );
            }
        }
        Ok(constraints)
    }
}

impl DependencyProvider for Provider<'_> {
    type P = Node;
    type V = Version;
    type VS = Ranges<Version>;
    type M = String;
    type Err = BuildError;
    type Priority = (u32, Reverse<usize>);

    fn prioritize(
        &self,
        package: &Node,
        range: &Ranges<Version>,
        statistics: &PackageResolutionStatistics,
    ) -> Self::Priority {
        // Decide the most conflicted first, then the one with the fewest choices.
        let choices = match package {
            Node::Root => 0,
            Node::Distribution(name, _) => self.candidates_of(name).map_or(0, |candidates| {
                candidates
                    .iter()
                    .filter(|candidate| range.contains(&candidate.version))
                    .count()
            }),
        };
        (statistics.conflict_count(), Reverse(choices))
    }

    fn choose_version(
        &self,
        package: &Node,
        range: &Ranges<Version>,
    ) -> Result<Option<Version>, BuildError> {
        match package {
            Node::Root => Ok(Some(Version::new([0]))),
            Node::Distribution(name, _) => Ok(self
                .candidates_of(name)?
                .iter()
                .rev()
                .find(|candidate| range.contains(&candidate.version))
                .map(|candidate| candidate.version.clone())),
        }
    }

    fn get_dependencies(
        &self,
        package: &Node,
        version: &Version,
    ) -> Result<Dependencies<Node, Ranges<Version>, String>, BuildError> {
        let (name, extra) = match package {
            Node::Root => {
                return Ok(match self.constraints(&self.root, &[]) {
                    Ok(constraints) => {
                        Dependencies::Available(DependencyConstraints::from_iter(constraints))
                    }
                    Err(reason) => Dependencies::Unavailable(reason),
                });
            }
            Node::Distribution(name, extra) => (name, extra),
        };
        let candidates = self.candidates_of(name)?;
        let Some(candidate) = candidates
            .iter()
            .find(|candidate| candidate.version == *version)
        else {
            return Ok(Dependencies::Unavailable("no wheel".to_string()));
        };
        let text = match self
            .index
            .metadata(name.as_ref(), &version.to_string(), &candidate.file)
        {
            Ok(text) => text,
            Err(error) => {
                let message = error.to_string();
                self.note_failure(message.clone());
                return Ok(Dependencies::Unavailable(message));
            }
        };
        let (requirements, requires_python) =
            match crate::metadata::parse_dependency_metadata(&text) {
                Ok(parsed) => parsed,
                Err(reason) => return Ok(Dependencies::Unavailable(reason)),
            };
        if let Some(requires_python) = requires_python
            && !requires_python.contains(&self.target.python_version)
        {
            return Ok(Dependencies::Unavailable(format!(
                "requires Python {requires_python}"
            )));
        }
        let extras: Vec<ExtraName> = extra.iter().cloned().collect();
        // A distribution brings what its markers select without extras; an extra brings only
        // what it adds, plus the distribution itself at the same version.
        let selected: Vec<Requirement> = match extra {
            None => requirements,
            Some(_) => requirements
                .into_iter()
                .filter(|requirement| {
                    !requirement.evaluate_markers(&self.target.markers, &[])
                        && requirement.evaluate_markers(&self.target.markers, &extras)
                })
                .collect(),
        };
        let mut constraints = match self.constraints(&selected, &extras) {
            Ok(constraints) => constraints,
            Err(reason) => return Ok(Dependencies::Unavailable(reason)),
        };
        if extra.is_some() {
            constraints.push((
                Node::Distribution(name.clone(), None),
                Ranges::singleton(version.clone()),
            ));
        }
        Ok(Dependencies::Available(DependencyConstraints::from_iter(
            constraints,
        )))
    }
}
