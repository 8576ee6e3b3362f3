//! Reader for uv's `uv.lock` (version 1).
//!
//! The lock is a graph: `[manifest] members` are the workspace members, each `[[package]]` has
//! a `source`, its artifacts, and `dependencies` edges whose markers were simplified by uv.
//! Optional dependencies hang off extras; `[package.dev-dependencies]` off group names.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use pep508_rs::{MarkerTree, PackageName};
use serde::Deserialize;
use toml::Spanned;

use super::{
    Artifact, DeclaredRequirement, Dependency, Hash, IndexOptions, LineIndex, Location, Lock,
    LockError, LockFormat, Package, Source, extra_name, filename_of, marker, package_name,
    parse_toml, specifiers, version,
};

/// The newest revision of lock version 1 this reader knows. Revisions only add fields.
const NEWEST_REVISION: i64 = 3;

#[derive(Deserialize)]
struct Header {
    version: Option<Spanned<i64>>,
    revision: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct UvLockFile {
    requires_python: Option<Spanned<String>>,
    manifest: Option<UvManifest>,
    #[serde(default, rename = "package")]
    packages: Vec<UvPackage>,
}

#[derive(Deserialize)]
struct UvManifest {
    #[serde(default)]
    members: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct UvPackage {
    name: Spanned<String>,
    version: Option<Spanned<String>>,
    source: Spanned<toml::Table>,
    #[serde(default)]
    dependencies: Vec<UvDependency>,
    #[serde(default)]
    optional_dependencies: BTreeMap<String, Vec<UvDependency>>,
    #[serde(default)]
    dev_dependencies: BTreeMap<String, Vec<UvDependency>>,
    sdist: Option<Spanned<UvArtifact>>,
    #[serde(default)]
    wheels: Vec<Spanned<UvArtifact>>,
    metadata: Option<UvMetadata>,
}

#[derive(Deserialize)]
struct UvDependency {
    name: Spanned<String>,
    #[serde(default)]
    extra: Vec<String>,
    marker: Option<Spanned<String>>,
    version: Option<String>,
}

#[derive(Deserialize)]
struct UvArtifact {
    url: Option<String>,
    path: Option<String>,
    filename: Option<String>,
    hash: Option<String>,
    size: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct UvMetadata {
    #[serde(default)]
    requires_dist: Vec<Spanned<UvRequiresDist>>,
}

#[derive(Deserialize)]
struct UvRequiresDist {
    name: String,
    specifier: Option<String>,
    marker: Option<String>,
    #[serde(default)]
    extras: Vec<String>,
    editable: Option<String>,
    git: Option<String>,
    path: Option<String>,
    directory: Option<String>,
    url: Option<String>,
    index: Option<String>,
}

/// Parse a `uv.lock` file's text; `path` is used for messages and relative sources.
pub(super) fn parse(path: &Path, text: &str) -> Result<Lock, LockError> {
    let lines = LineIndex::new(path, text);
    let at = |span: std::ops::Range<usize>| lines.at_span(span);

    // 1. The version decides whether the rest can be read at all, so check it first. TOML's
    // top-level keys all stand before the first table header, so only that prefix is parsed.
    let header_end = text
        .match_indices('\n')
        .map(|(index, _)| index + 1)
        .find(|&start| text[start..].trim_start().starts_with('['))
        .unwrap_or(text.len());
    // A nested array's line can also start with `[`; then the prefix is cut short, so read all.
    let header: Header = match parse_toml(path, &text[..header_end]) {
        Ok(header) => header,
        Err(_) => parse_toml(path, text)?,
    };
    let Some(lock_version) = header.version else {
        return Err(LockError::Invalid {
            location: Location::at_offset(path, text, 0),
            message: "no top-level `version` key; is this a uv.lock file?".to_string(),
        });
    };
    let revision = header.revision.unwrap_or(0);
    if *lock_version.get_ref() != 1 || !(0..=NEWEST_REVISION).contains(&revision) {
        return Err(LockError::UnsupportedUvLockVersion {
            location: at(lock_version.span()),
            version: *lock_version.get_ref(),
            revision,
        });
    }

    let file: UvLockFile = parse_toml(path, text)?;
    let requires_python = file
        .requires_python
        .as_ref()
        .map(|value| specifiers(value.get_ref(), &at(value.span())))
        .transpose()?;

    // 2. Packages by name, so dependency edges can be resolved to indices.
    let mut by_name: HashMap<PackageName, Vec<usize>> = HashMap::new();
    for (index, package) in file.packages.iter().enumerate() {
        let name = package_name(package.name.get_ref(), &at(package.name.span()))?;
        by_name.entry(name).or_default().push(index);
    }

    let mut packages = Vec::with_capacity(file.packages.len());
    for raw in &file.packages {
        packages.push(convert_package(raw, &file.packages, &by_name, &at)?);
    }

    // 3. Roots: the workspace members, the project at `.` first.
    let project_root = packages.iter().position(|package| {
        matches!(&package.source, Source::Editable { path } | Source::Virtual { path }
            if path == Path::new("."))
    });
    let mut roots = Vec::new();
    roots.extend(project_root);
    if let Some(manifest) = &file.manifest {
        let mut members = Vec::new();
        for member in &manifest.members {
            let location = at(member.span());
            let name = package_name(member.get_ref(), &location)?;
            let index = by_name
                .get(&name)
                .and_then(|indices| {
                    indices
                        .iter()
                        .copied()
                        .find(|&index| is_local(&packages[index].source))
                })
                .ok_or_else(|| LockError::MissingMember {
                    location,
                    member: member.get_ref().clone(),
                })?;
            members.push(index);
        }
        members.sort_by(|&a, &b| packages[a].name.cmp(&packages[b].name));
        roots.extend(
            members
                .into_iter()
                .filter(|&index| Some(index) != project_root),
        );
    }

    Ok(Lock {
        path: path.to_path_buf(),
        format: LockFormat::UvLock {
            version: 1,
            // Checked to lie in 0..=3 above.
            revision: u32::try_from(revision).unwrap_or_default(),
        },
        requires_python,
        packages,
        roots,
        project_root,
        index_options: IndexOptions::default(),
    })
}

fn is_local(source: &Source) -> bool {
    matches!(
        source,
        Source::Editable { .. } | Source::Virtual { .. } | Source::Directory { .. }
    )
}

fn convert_package(
    raw: &UvPackage,
    all: &[UvPackage],
    by_name: &HashMap<PackageName, Vec<usize>>,
    at: &impl Fn(std::ops::Range<usize>) -> Location,
) -> Result<Package, LockError> {
    let location = at(raw.name.span());
    let name_text = raw.name.get_ref();
    let name = package_name(name_text, &location)?;
    let package_version = raw
        .version
        .as_ref()
        .map(|value| version(value.get_ref(), name_text, &at(value.span())))
        .transpose()?;
    let source = convert_source(name_text, &raw.source, at)?;

    let edges = |list: &[UvDependency]| -> Result<Vec<Dependency>, LockError> {
        list.iter()
            .map(|dependency| convert_dependency(name_text, dependency, all, by_name, at))
            .collect()
    };
    let dependencies = edges(&raw.dependencies)?;
    let mut optional_dependencies = BTreeMap::new();
    for (extra, list) in &raw.optional_dependencies {
        optional_dependencies.insert(extra_name(extra, &location)?, edges(list)?);
    }
    let mut dependency_groups = BTreeMap::new();
    for (group, list) in &raw.dev_dependencies {
        dependency_groups.insert(group.clone(), edges(list)?);
    }

    // Url and path sources write artifacts with only a hash: the source is the file.
    let source_file = match &source {
        Source::Url { url, .. } => Some((Some(url.clone()), None)),
        Source::Path { path } => Some((None, Some(path.clone()))),
        _ => None,
    };
    let artifact =
        |spanned: &Spanned<UvArtifact>| convert_artifact(name_text, spanned, &source_file, at);
    let sdist = raw.sdist.as_ref().map(artifact).transpose()?;
    let wheels = raw.wheels.iter().map(artifact).collect::<Result<_, _>>()?;

    let requires_dist = raw
        .metadata
        .iter()
        .flat_map(|metadata| &metadata.requires_dist)
        .map(|declared| convert_requires_dist(declared, at))
        .collect::<Result<_, _>>()?;

    Ok(Package {
        name,
        version: package_version,
        source,
        sdist,
        wheels,
        allowed_hashes: Vec::new(),
        dependencies,
        optional_dependencies,
        dependency_groups,
        marker: MarkerTree::TRUE,
        requires_dist,
        override_note: None,
        location,
    })
}

/// `source = { registry = "…" }`, `{ git = "URL?rev=…#COMMIT" }`, `{ editable = "path" }`, …
fn convert_source(
    package: &str,
    table: &Spanned<toml::Table>,
    at: &impl Fn(std::ops::Range<usize>) -> Location,
) -> Result<Source, LockError> {
    let location = at(table.span());
    let invalid = |message: String| LockError::InvalidSource {
        location: location.clone(),
        package: package.to_string(),
        message,
    };
    let entries = table.get_ref();
    // `subdirectory` qualifies a url or git source; any other key names the kind.
    let Some((kind, value)) = entries.iter().find(|(key, _)| *key != "subdirectory") else {
        return Err(invalid("the source table names no kind".to_string()));
    };
    let text = value
        .as_str()
        .ok_or_else(|| invalid(format!("`{kind}` must be a string")))?
        .to_string();
    let subdirectory = entries
        .get("subdirectory")
        .and_then(|value| value.as_str())
        .map(str::to_string);
    Ok(match kind.as_str() {
        "registry" => Source::Registry { index: text },
        "git" => parse_git_source(&text).ok_or_else(|| {
            invalid(format!(
                "git source `{text}` does not end in `#<commit>`, so it pins no commit"
            ))
        })?,
        "editable" => Source::Editable {
            path: PathBuf::from(text),
        },
        "virtual" => Source::Virtual {
            path: PathBuf::from(text),
        },
        "directory" => Source::Directory {
            path: PathBuf::from(text),
        },
        "path" => Source::Path {
            path: PathBuf::from(text),
        },
        "url" => Source::Url {
            url: text,
            subdirectory,
        },
        other => {
            return Err(LockError::UnknownSourceKind {
                location,
                package: package.to_string(),
                kind: other.to_string(),
            });
        }
    })
}

/// uv writes git sources as `URL?rev=R&subdirectory=S#COMMIT` (also `tag=`, `branch=`).
pub(super) fn parse_git_source(text: &str) -> Option<Source> {
    let (without_commit, commit) = text.rsplit_once('#')?;
    let commit_is_hex = commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit());
    if !commit_is_hex {
        return None;
    }
    let (repository, query) = match without_commit.split_once('?') {
        Some((repository, query)) => (repository, query),
        None => (without_commit, ""),
    };
    let mut reference = None;
    let mut subdirectory = None;
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some(("rev" | "tag" | "branch", value)) => reference = Some(value.to_string()),
            Some(("subdirectory", value)) => subdirectory = Some(value.to_string()),
            _ => {}
        }
    }
    Some(Source::Git {
        repository: repository.to_string(),
        reference,
        commit: commit.to_ascii_lowercase(),
        subdirectory,
    })
}

fn convert_dependency(
    package: &str,
    raw: &UvDependency,
    all: &[UvPackage],
    by_name: &HashMap<PackageName, Vec<usize>>,
    at: &impl Fn(std::ops::Range<usize>) -> Location,
) -> Result<Dependency, LockError> {
    let location = at(raw.name.span());
    let name = package_name(raw.name.get_ref(), &location)?;
    let candidates = by_name.get(&name).map(Vec::as_slice).unwrap_or_default();
    let target = match candidates {
        [] => {
            return Err(LockError::MissingPackage {
                location,
                package: package.to_string(),
                dependency: raw.name.get_ref().clone(),
            });
        }
        [only] => *only,
        several => {
            // Forked resolutions hold one name in several versions; the edge names which.
            let chosen = raw.version.as_ref().and_then(|wanted| {
                several.iter().copied().find(|&index| {
                    all[index]
                        .version
                        .as_ref()
                        .is_some_and(|version| version.get_ref() == wanted)
                })
            });
            chosen.ok_or_else(|| LockError::AmbiguousDependency {
                location: location.clone(),
                package: package.to_string(),
                dependency: raw.name.get_ref().clone(),
                versions: several
                    .iter()
                    .filter_map(|&index| all[index].version.as_ref())
                    .map(|version| version.get_ref().as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?
        }
    };
    let extras = raw
        .extra
        .iter()
        .map(|extra| extra_name(extra, &location))
        .collect::<Result<_, _>>()?;
    let marker = match &raw.marker {
        Some(value) => marker(value.get_ref(), &at(value.span()))?,
        None => MarkerTree::TRUE,
    };
    Ok(Dependency {
        package: target,
        extras,
        marker,
    })
}

fn convert_artifact(
    package: &str,
    spanned: &Spanned<UvArtifact>,
    source_file: &Option<(Option<String>, Option<PathBuf>)>,
    at: &impl Fn(std::ops::Range<usize>) -> Location,
) -> Result<Artifact, LockError> {
    let raw = spanned.get_ref();
    let names_no_file = raw.url.is_none() && raw.path.is_none() && raw.filename.is_none();
    let (url, path) = match source_file {
        Some((url, path)) if names_no_file => (url.clone(), path.clone()),
        _ => (raw.url.clone(), raw.path.as_ref().map(PathBuf::from)),
    };
    let location = at(spanned.span());
    let hash = raw
        .hash
        .as_ref()
        .map(|text| {
            Hash::parse(text).ok_or_else(|| LockError::InvalidSource {
                location: location.clone(),
                package: package.to_string(),
                message: format!("`{text}` is not a hash of the form `sha256:<hex>`"),
            })
        })
        .transpose()?;
    let filename = raw
        .filename
        .clone()
        .or_else(|| url.as_deref().map(filename_of))
        .or_else(|| {
            path.as_ref()
                .map(|path| filename_of(&path.to_string_lossy()))
        })
        .ok_or_else(|| LockError::InvalidSource {
            location: location.clone(),
            package: package.to_string(),
            message: "an artifact has neither `url`, `path` nor `filename`".to_string(),
        })?;
    let filename = filename.parse::<crate::identity::FileName>().map_err(
        |error: crate::identity::IdentityError| LockError::InvalidSource {
            location: location.clone(),
            package: package.to_string(),
            message: format!("its artifact's file name: {error}"),
        },
    )?;
    Ok(Artifact {
        filename,
        url,
        path,
        hash,
        size: raw.size,
    })
}

fn convert_requires_dist(
    spanned: &Spanned<UvRequiresDist>,
    at: &impl Fn(std::ops::Range<usize>) -> Location,
) -> Result<DeclaredRequirement, LockError> {
    let location = at(spanned.span());
    let raw = spanned.get_ref();
    let source_kind = [
        ("editable", &raw.editable),
        ("git", &raw.git),
        ("path", &raw.path),
        ("directory", &raw.directory),
        ("url", &raw.url),
        ("registry", &raw.index),
    ]
    .into_iter()
    .find(|(_, value)| value.is_some())
    .map(|(kind, _)| kind.to_string());
    Ok(DeclaredRequirement {
        name: package_name(&raw.name, &location)?,
        specifier: raw
            .specifier
            .as_deref()
            .map(|text| specifiers(text, &location))
            .transpose()?,
        extras: raw
            .extras
            .iter()
            .map(|extra| extra_name(extra, &location))
            .collect::<Result<_, _>>()?,
        marker: match &raw.marker {
            Some(text) => marker(text, &location)?,
            None => MarkerTree::TRUE,
        },
        source_kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Lock, LockError> {
        parse(Path::new("uv.lock"), text)
    }

    fn error_text(text: &str) -> String {
        parse_text(text).unwrap_err().to_string()
    }

    const SMALL: &str = include_str!("testdata/small.uv.lock");

    #[test]
    fn reads_graph_sources_and_roots() {
        let lock = parse_text(SMALL).unwrap();
        assert_eq!(
            lock.format,
            LockFormat::UvLock {
                version: 1,
                revision: 3
            }
        );
        assert_eq!(lock.requires_python.unwrap().to_string(), ">=3.12");
        let names: Vec<_> = lock
            .roots
            .iter()
            .map(|&i| lock.packages[i].name.to_string())
            .collect();
        assert_eq!(names, ["app", "member"]);
        assert_eq!(lock.project_root, Some(0));

        let app = &lock.packages[0];
        assert_eq!(app.dependencies.len(), 3);
        assert_eq!(
            lock.packages[app.dependencies[1].package].name.as_ref(),
            "requests"
        );
        assert_eq!(app.dependencies[1].extras[0].as_ref(), "socks");
        assert!(!app.dependencies[2].marker.is_true());
        assert_eq!(app.dependency_groups["dev"].len(), 1);
        assert_eq!(app.requires_dist.len(), 2);
        assert_eq!(
            app.requires_dist[0].source_kind.as_deref(),
            Some("editable")
        );

        let requests = &lock.packages[2];
        assert_eq!(
            requests.wheels[0].filename,
            "requests-2.32.3-py3-none-any.whl"
        );
        assert_eq!(requests.sdist.as_ref().unwrap().size, Some(10));
        assert_eq!(
            requests.wheels[0].hash.as_ref().unwrap().to_string(),
            "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
        );
        assert_eq!(requests.optional_dependencies.len(), 1);

        assert_eq!(
            lock.packages[3].source,
            Source::Git {
                repository: "https://example.org/pysocks".into(),
                reference: Some("v1.7.1".into()),
                commit: "0123456789abcdef0123456789abcdef01234567".into(),
                subdirectory: None,
            }
        );
        assert_eq!(
            lock.packages[5].source,
            Source::Url {
                url: "https://example.org/pytest_like-8.tar.gz".into(),
                subdirectory: Some("py".into())
            }
        );
        let url_sdist = lock.packages[5].sdist.as_ref().unwrap();
        assert_eq!(url_sdist.filename, "pytest_like-8.tar.gz");
        assert_eq!(
            url_sdist.url.as_deref(),
            Some("https://example.org/pytest_like-8.tar.gz")
        );
    }

    #[test]
    fn forked_versions_are_chosen_by_the_edge() {
        let text = r#"
version = 1
[[package]]
name = "a"
version = "1"
source = { virtual = "." }
dependencies = [{ name = "b", version = "2.0", marker = "python_version >= '3.13'" }]
[[package]]
name = "b"
version = "1.0"
source = { registry = "https://pypi.org/simple" }
[[package]]
name = "b"
version = "2.0"
source = { registry = "https://pypi.org/simple" }
"#;
        let lock = parse_text(text).unwrap();
        assert_eq!(lock.packages[0].dependencies[0].package, 2);
        let ambiguous = text.replace(", version = \"2.0\"", "");
        insta::assert_snapshot!(error_text(&ambiguous), @"uv.lock:7:26: `a` depends on `b`, which the lock holds in several versions (1.0, 2.0); the dependency must name one with `version`");
    }

    #[test]
    fn header_with_nested_arrays_still_reads() {
        let text = "version = 1\nrevision = 3\nodd = [\n  [1, 2],\n]\n[[package]]\nname = 'x'\nversion = '1'\nsource = { registry = 'r' }\n";
        assert_eq!(parse_text(text).unwrap().packages.len(), 1);
        let newer = text.replace("version = 1\n", "version = 2\n");
        assert!(error_text(&newer).contains("unsupported uv.lock version 2"));
    }

    #[test]
    fn error_malformed_toml() {
        insta::assert_snapshot!(error_text("version = 1\n[[package]\nname = 'x'\n"), @"uv.lock:2:11: malformed TOML: unclosed array table, expected `]`");
    }

    #[test]
    fn error_unsupported_version() {
        insta::assert_snapshot!(error_text("version = 2\nrevision = 1\n"), @"uv.lock:1:11: unsupported uv.lock version 2 (revision 1); akpkg reads version 1 with revisions 0 to 3");
        insta::assert_snapshot!(error_text("version = 1\nrevision = 9\n"), @"uv.lock:1:11: unsupported uv.lock version 1 (revision 9); akpkg reads version 1 with revisions 0 to 3");
    }

    #[test]
    fn error_unknown_source_kind() {
        let text = "version = 1\n[[package]]\nname = 'x'\nversion = '1'\nsource = { svn = 'x' }\n";
        insta::assert_snapshot!(error_text(text), @"uv.lock:5:10: package `x` has an unknown source kind `svn`; expected one of: registry, git, editable, virtual, directory, path, url");
    }

    #[test]
    fn error_git_without_commit() {
        let text = "version = 1\n[[package]]\nname = 'x'\nversion = '1'\nsource = { git = 'https://h/x?rev=main' }\n";
        insta::assert_snapshot!(error_text(text), @"uv.lock:5:10: package `x` has an invalid source: git source `https://h/x?rev=main` does not end in `#<commit>`, so it pins no commit");
    }

    #[test]
    fn error_missing_package() {
        let text = "version = 1\n[[package]]\nname = 'x'\nversion = '1'\nsource = { registry = 'r' }\ndependencies = [{ name = 'nowhere' }]\n";
        insta::assert_snapshot!(error_text(text), @"uv.lock:6:26: `x` depends on `nowhere`, but the lock has no [[package]] entry named `nowhere`");
    }

    #[test]
    fn error_invalid_version_and_marker() {
        let text =
            "version = 1\n[[package]]\nname = 'x'\nversion = 'one'\nsource = { registry = 'r' }\n";
        insta::assert_snapshot!(error_text(text), @"uv.lock:4:11: invalid version `one` for `x`: expected version to start with a number, but no leading ASCII digits were found");
        let text = "version = 1\n[[package]]\nname = 'x'\nversion = '1'\nsource = { registry = 'r' }\ndependencies = [{ name = 'x', marker = 'python_version >> \"3\"' }]\n";
        insta::assert_snapshot!(error_text(text), @r#"uv.lock:6:40: invalid environment marker `python_version >> "3"`: Expected a valid marker operator (such as `>=` or `not in`), found `>>`"#);
    }

    #[test]
    fn error_missing_member() {
        let text = "version = 1\n[manifest]\nmembers = ['ghost']\n";
        insta::assert_snapshot!(error_text(text), @"uv.lock:3:12: `ghost` is listed in [manifest] members but has no [[package]] entry");
    }

    #[test]
    fn error_schema_problem_names_the_field() {
        let text = "version = 1\n[[package]]\nversion = '1'\nsource = { registry = 'r' }\n";
        insta::assert_snapshot!(error_text(text), @"uv.lock:2:1: malformed TOML: missing field `name`");
    }

    #[test]
    fn git_sources_keep_reference_and_subdirectory() {
        let source =
            parse_git_source("https://h/r?branch=main&subdirectory=pkg#ABCDEF0123").unwrap();
        assert_eq!(
            source,
            Source::Git {
                repository: "https://h/r".into(),
                reference: Some("main".into()),
                commit: "abcdef0123".into(),
                subdirectory: Some("pkg".into()),
            }
        );
        assert!(parse_git_source("https://h/r#not-a-commit").is_none());
    }
}
