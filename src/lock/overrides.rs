//! Overrides: a packager's changes to a locked graph, as data.
//!
//! An override replaces a locked distribution with a git repository at a commit, another
//! exact version from the index, or a local directory or archive; removes one (its dependents
//! lose it, and are named); or adds one as a dependency of the project. They apply to the
//! lock before planning, so everything after (plan, fetch, akpkg's lock, builds) treats the
//! result like any locked distribution, pinned by hash or tree id. A dependent whose declared
//! specifier the override no longer satisfies gets a warning naming both sides.

use std::path::PathBuf;
use std::str::FromStr;

use pep440_rs::Version;
use pep508_rs::{MarkerTree, PackageName};

use super::{Artifact, Dependency, Location, Lock, LockError, Package, Source};

/// Where an overridden distribution comes from now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverrideSource {
    Git {
        repository: String,
        commit: String,
    },
    /// Another version from the index; its files are looked up by the caller.
    Index {
        version: Version,
        wheels: Vec<Artifact>,
        sdist: Option<Artifact>,
    },
    /// A local source tree or archive (wheel or sdist).
    Path(PathBuf),
    Remove,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub name: PackageName,
    pub source: OverrideSource,
    /// `--override …` or the recipe's file, for messages.
    pub origin: String,
}

/// `NAME=SPEC`: `git+URL@COMMIT`, `==VERSION`, `remove`, or a path (`./dir`, `/x.tar.gz`).
/// An index version comes back with no files: the caller looks them up.
pub fn parse_override(text: &str, origin: &str) -> Result<Override, String> {
    let (name, spec) = text
        .split_once('=')
        .ok_or_else(|| format!("{origin} `{text}`: expected NAME=SPEC"))?;
    let name = PackageName::from_str(name.trim())
        .map_err(|error| format!("{origin} `{text}`: {error}"))?;
    let spec = spec.trim();
    let source = if spec == "remove" {
        OverrideSource::Remove
    } else if let Some(git) = spec.strip_prefix("git+") {
        let (repository, commit) = git
            .rsplit_once('@')
            .filter(|(repository, commit)| {
                repository.contains("://")
                    && commit.len() == 40
                    && commit.chars().all(|c| c.is_ascii_hexdigit())
            })
            .ok_or_else(|| {
                format!("{origin} `{text}`: a git override pins a full commit: git+URL@COMMIT")
            })?;
        OverrideSource::Git {
            repository: repository.to_string(),
            commit: commit.to_ascii_lowercase(),
        }
    } else if let Some(version) = spec.strip_prefix("==") {
        OverrideSource::Index {
            version: Version::from_str(version.trim())
                .map_err(|error| format!("{origin} `{text}`: {error}"))?,
            wheels: Vec::new(),
            sdist: None,
        }
    } else if spec.starts_with('.') || spec.starts_with('/') {
        OverrideSource::Path(PathBuf::from(spec))
    } else {
        return Err(format!(
            "{origin} `{text}`: SPEC is git+URL@COMMIT, ==VERSION, a path (./dir, /file.tar.gz) or remove"
        ));
    };
    Ok(Override {
        name,
        source,
        origin: origin.to_string(),
    })
}

fn describe(source: &OverrideSource) -> String {
    match source {
        OverrideSource::Git { repository, commit } => format!("git {repository} at {commit}"),
        OverrideSource::Index { version, .. } => format!("version {version} from the index"),
        OverrideSource::Path(path) => format!("local {}", path.display()),
        OverrideSource::Remove => "removed".to_string(),
    }
}

/// Apply `overrides` in order; returns warnings (dependents that lose a removed distribution,
/// declared specifiers an override no longer satisfies).
pub fn apply_overrides(lock: &mut Lock, overrides: &[Override]) -> Result<Vec<String>, LockError> {
    let mut warnings = Vec::new();
    for item in overrides {
        let existing = lock
            .packages
            .iter()
            .position(|package| package.name == item.name);
        let Some(replacement) = replacement(lock, item, existing)? else {
            warnings.push(remove(lock, item, existing)?);
            continue;
        };
        let version = replacement.version.clone();
        replace_or_add(lock, item, existing, replacement);
        if let Some(version) = &version {
            warnings.extend(unsatisfied_dependents(lock, item, version));
        }
    }
    Ok(warnings)
}

/// Remove the package `item` names (at `existing`) and every edge to it; the warning says who
/// no longer installs it.
fn remove(lock: &mut Lock, item: &Override, existing: Option<usize>) -> Result<String, LockError> {
    let Some(removed) = existing else {
        return Err(LockError::Invalid {
            location: Location::at_line(&lock.path, 1, 1),
            message: format!(
                "{}: cannot remove `{}`, which the lock does not have",
                item.origin, item.name
            ),
        });
    };
    let mut dependents = Vec::new();
    for package in &mut lock.packages {
        // Every edge list of the package: dependencies, extras' and groups'.
        let edge_lists = std::iter::once(&mut package.dependencies)
            .chain(package.optional_dependencies.values_mut())
            .chain(package.dependency_groups.values_mut());
        let mut dropped = false;
        for edges in edge_lists {
            let before = edges.len();
            edges.retain(|edge| edge.package != removed);
            dropped |= edges.len() < before;
        }
        if dropped {
            dependents.push(package.name.to_string());
        }
    }
    lock.roots.retain(|&root| root != removed);
    Ok(format!(
        "{}: `{}` removed; {}",
        item.origin,
        item.name,
        if dependents.is_empty() {
            "nothing depended on it".to_string()
        } else {
            format!("no longer installed for {}", dependents.join(", "))
        }
    ))
}

/// What an override puts in a package's place.
struct Replacement {
    version: Option<Version>,
    source: Source,
    wheels: Vec<Artifact>,
    sdist: Option<Artifact>,
}

/// The replacement `item` gives (none for a removal); where it names no version, the existing
/// package's stays.
fn replacement(
    lock: &Lock,
    item: &Override,
    existing: Option<usize>,
) -> Result<Option<Replacement>, LockError> {
    let existing_version = || existing.and_then(|index| lock.packages[index].version.clone());
    let keeping_version = |source| Replacement {
        version: existing_version(),
        source,
        wheels: Vec::new(),
        sdist: None,
    };
    Ok(Some(match &item.source {
        OverrideSource::Git { repository, commit } => keeping_version(Source::Git {
            repository: repository.clone(),
            reference: None,
            commit: commit.clone(),
            subdirectory: None,
        }),
        OverrideSource::Index {
            version,
            wheels,
            sdist,
        } => Replacement {
            version: Some(version.clone()),
            source: Source::Registry {
                index: "override".to_string(),
            },
            wheels: wheels.clone(),
            sdist: sdist.clone(),
        },
        OverrideSource::Path(path) if path.is_file() => local_file(path, existing_version())?,
        OverrideSource::Path(path) => keeping_version(Source::Directory { path: path.clone() }),
        OverrideSource::Remove => return Ok(None),
    }))
}

/// A local wheel or sdist, pinned by the hash of its bytes now.
fn local_file(
    path: &std::path::Path,
    existing_version: Option<Version>,
) -> Result<Replacement, LockError> {
    let bytes = fs_err::read(path).map_err(|source| LockError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let sha256 = crate::digest::sha256_hex(&bytes);
    let filename: crate::identity::FileName = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
        .parse()
        .map_err(|error| LockError::Invalid {
            location: Location::at_line(path, 1, 1),
            message: format!("the override's file name: {error}"),
        })?;
    let artifact = Artifact {
        filename: filename.clone(),
        url: Some(format!("file://{}", path.display())),
        path: Some(path.to_path_buf()),
        hash: super::Hash::parse(&format!("sha256:{sha256}")),
        size: None,
    };
    let wheel = filename.parse::<crate::tags::WheelFilename>().ok();
    let version = wheel
        .as_ref()
        .map(|wheel| wheel.version.clone())
        .or(existing_version);
    let (wheels, sdist) = if wheel.is_some() {
        (vec![artifact], None)
    } else {
        (Vec::new(), Some(artifact))
    };
    Ok(Replacement {
        version,
        source: Source::Path {
            path: path.to_path_buf(),
        },
        wheels,
        sdist,
    })
}

/// Put `replacement` in the place of the package at `existing`, or add it as a dependency of
/// the project (or of every root).
fn replace_or_add(
    lock: &mut Lock,
    item: &Override,
    existing: Option<usize>,
    replacement: Replacement,
) {
    let note = describe(&item.source);
    if let Some(index) = existing {
        let package = &mut lock.packages[index];
        package.version = replacement.version.or(package.version.take());
        package.source = replacement.source;
        package.wheels = replacement.wheels;
        package.sdist = replacement.sdist;
        package.allowed_hashes.clear();
        package.override_note = Some(note);
        return;
    }
    let location = Location::at_line(&lock.path, 1, 1);
    lock.packages.push(Package {
        name: item.name.clone(),
        version: replacement.version,
        source: replacement.source,
        sdist: replacement.sdist,
        wheels: replacement.wheels,
        allowed_hashes: Vec::new(),
        dependencies: Vec::new(),
        optional_dependencies: Default::default(),
        dependency_groups: Default::default(),
        marker: MarkerTree::TRUE,
        requires_dist: Vec::new(),
        override_note: Some(format!("added, {note}")),
        location,
    });
    let added = lock.packages.len() - 1;
    let parents: Vec<usize> = match lock.project_root {
        Some(root) => vec![root],
        None => lock.roots.clone(),
    };
    for parent in parents {
        lock.packages[parent].dependencies.push(Dependency {
            package: added,
            extras: Vec::new(),
            marker: MarkerTree::TRUE,
        });
    }
}

/// Dependents whose declared specifier the override's version does not satisfy.
fn unsatisfied_dependents(lock: &Lock, item: &Override, version: &Version) -> Vec<String> {
    let mut warnings = Vec::new();
    for package in &lock.packages {
        for declared in &package.requires_dist {
            let Some(specifier) = &declared.specifier else {
                continue;
            };
            if declared.name == item.name && !specifier.contains(version) {
                warnings.push(format!(
                    "{}: `{}` declares `{}{}`, but the override gives {}",
                    item.origin, package.name, item.name, specifier, version
                ));
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace shaped like the fixture monorepo: a project, a member that needs
    /// sqlparse (declared `==0.5.4`), and asgiref.
    fn fixture_lock() -> Lock {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("uv.lock");
        let wheel = |name: &str, version: &str| {
            format!(
                "[[package]]\nname = \"{name}\"\nversion = \"{version}\"\nsource = {{ registry = \"https://pypi.org/simple\" }}\nwheels = [{{ url = \"https://files.example/{name}-{version}-py3-none-any.whl\", hash = \"sha256:{}\" }}]\n",
                "ab".repeat(32)
            )
        };
        let text = format!(
            "version = 1\nrevision = 3\n\n[manifest]\nmembers = [\"fixture-app\", \"fixture-cache\"]\n\n[[package]]\nname = \"fixture-app\"\nversion = \"1.0\"\nsource = {{ editable = \".\" }}\ndependencies = [{{ name = \"asgiref\" }}, {{ name = \"fixture-cache\" }}]\n\n[[package]]\nname = \"fixture-cache\"\nversion = \"0.1.0\"\nsource = {{ editable = \"packages/fixture-cache\" }}\ndependencies = [{{ name = \"sqlparse\" }}]\n\n[package.metadata]\nrequires-dist = [{{ name = \"sqlparse\", specifier = \"==0.5.4\" }}]\n\n{}\n{}",
            wheel("asgiref", "3.11.0"),
            wheel("sqlparse", "0.5.4")
        );
        fs_err::write(&path, text).unwrap();
        super::super::read(&path).unwrap()
    }

    #[test]
    fn overrides_are_parsed_with_clear_errors() {
        let parsed = parse_override("dramatiq===1.17.1", "--override").unwrap();
        assert!(
            matches!(parsed.source, OverrideSource::Index { ref version, .. } if version.to_string() == "1.17.1")
        );
        let git = parse_override(
            "djangorestframework=git+https://github.com/goauthentik/django-rest-framework@896722bab969fabc74a08b827da59409cf9f1a4e",
            "--override",
        )
        .unwrap();
        assert!(
            matches!(git.source, OverrideSource::Git { ref commit, .. } if commit.starts_with("896722ba"))
        );
        assert_eq!(
            parse_override("dumb-init=remove", "x").unwrap().source,
            OverrideSource::Remove
        );
        insta::assert_snapshot!(parse_override("x=git+https://h/r@main", "--override").unwrap_err(), @"--override `x=git+https://h/r@main`: a git override pins a full commit: git+URL@COMMIT");
        insta::assert_snapshot!(parse_override("x=latest", "--override").unwrap_err(), @"--override `x=latest`: SPEC is git+URL@COMMIT, ==VERSION, a path (./dir, /file.tar.gz) or remove");
    }

    #[test]
    fn removals_and_replacements_change_the_graph() {
        let mut lock = fixture_lock();
        let overrides = [
            parse_override("sqlparse=remove", "recipe").unwrap(),
            parse_override(
                "asgiref=git+https://example.org/asgiref@0123456789abcdef0123456789abcdef01234567",
                "recipe",
            )
            .unwrap(),
            parse_override("extra-tool=./vendor/extra-tool", "recipe").unwrap(),
        ];
        let warnings = apply_overrides(&mut lock, &overrides).unwrap();
        insta::assert_snapshot!(warnings.join("\n"), @"recipe: `sqlparse` removed; no longer installed for fixture-cache");
        let cache = lock
            .packages
            .iter()
            .find(|p| p.name.as_ref() == "fixture-cache")
            .unwrap();
        assert!(cache.dependencies.is_empty());
        let asgiref = lock
            .packages
            .iter()
            .find(|p| p.name.as_ref() == "asgiref")
            .unwrap();
        assert!(matches!(asgiref.source, Source::Git { .. }));
        assert!(asgiref.wheels.is_empty() && asgiref.sdist.is_none());
        let root = lock.project_root.unwrap();
        let added = lock.packages.len() - 1;
        assert!(
            lock.packages[root]
                .dependencies
                .iter()
                .any(|edge| edge.package == added)
        );
    }
}
