//! Reader for PEP 751 `pylock.toml` files.
//!
//! PEP 751: "Tools SHOULD ... install every package whose `packages.marker` evaluates to true"
//! — the file is flat, so every package is a root and its marker (with its `requires-python`)
//! decides whether it is installed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pep508_rs::MarkerTree;
use serde::Deserialize;
use toml::Spanned;

use super::{
    Artifact, Hash, IndexOptions, LineIndex, Location, Lock, LockError, LockFormat, Package,
    Source, filename_of, marker, package_name, parse_toml, specifiers, version,
};

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct PylockFile {
    lock_version: Spanned<String>,
    requires_python: Option<Spanned<String>>,
    #[serde(default)]
    packages: Vec<PylockPackage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct PylockPackage {
    name: Spanned<String>,
    version: Option<Spanned<String>>,
    marker: Option<Spanned<String>>,
    requires_python: Option<Spanned<String>>,
    index: Option<String>,
    vcs: Option<Spanned<PylockVcs>>,
    directory: Option<PylockDirectory>,
    archive: Option<Spanned<PylockFileEntry>>,
    sdist: Option<Spanned<PylockFileEntry>>,
    #[serde(default)]
    wheels: Vec<Spanned<PylockFileEntry>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct PylockVcs {
    #[serde(rename = "type")]
    kind: String,
    url: Option<String>,
    path: Option<String>,
    requested_revision: Option<String>,
    commit_id: String,
    subdirectory: Option<String>,
}

#[derive(Deserialize)]
struct PylockDirectory {
    path: String,
    #[serde(default)]
    editable: bool,
}

#[derive(Deserialize)]
struct PylockFileEntry {
    name: Option<String>,
    url: Option<String>,
    path: Option<String>,
    size: Option<u64>,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
}

pub(super) fn parse(path: &Path, text: &str) -> Result<Lock, LockError> {
    let lines = LineIndex::new(path, text);
    let at = |span: std::ops::Range<usize>| lines.at_span(span);
    let file: PylockFile = parse_toml(path, text)?;

    // PEP 751: "If a tool does not support a major version, it MUST raise an error."
    let lock_version = file.lock_version.get_ref();
    if lock_version.split('.').next() != Some("1") {
        return Err(LockError::UnsupportedPylockVersion {
            location: at(file.lock_version.span()),
            version: lock_version.clone(),
        });
    }
    let requires_python = file
        .requires_python
        .as_ref()
        .map(|value| specifiers(value.get_ref(), &at(value.span())))
        .transpose()?;

    let mut packages = Vec::with_capacity(file.packages.len());
    let mut project_root = None;
    for raw in &file.packages {
        let package = convert_package(raw, &at)?;
        if matches!(&package.source, Source::Editable { path } | Source::Directory { path }
            if path == Path::new("."))
        {
            project_root = Some(packages.len());
        }
        packages.push(package);
    }

    Ok(Lock {
        path: path.to_path_buf(),
        format: LockFormat::Pylock {
            lock_version: lock_version.clone(),
        },
        requires_python,
        roots: (0..packages.len()).collect(),
        packages,
        project_root,
        index_options: IndexOptions::default(),
    })
}

fn convert_package(
    raw: &PylockPackage,
    at: &impl Fn(std::ops::Range<usize>) -> Location,
) -> Result<Package, LockError> {
    let location = at(raw.name.span());
    let name_text = raw.name.get_ref();
    let invalid = |message: String| LockError::InvalidSource {
        location: location.clone(),
        package: name_text.clone(),
        message,
    };

    let mut package_marker = match &raw.marker {
        Some(value) => marker(value.get_ref(), &at(value.span()))?,
        None => MarkerTree::TRUE,
    };
    // A package's own `requires-python` narrows where it applies, like a marker does.
    if let Some(value) = &raw.requires_python {
        let location = at(value.span());
        let specifiers = specifiers(value.get_ref(), &location)?;
        for specifier in specifiers.iter() {
            let expression = format!(
                "python_full_version {} '{}'",
                specifier.operator(),
                specifier.version()
            );
            package_marker.and(marker(&expression, &location)?);
        }
    }

    let artifact = |entry: &Spanned<PylockFileEntry>| convert_file(name_text, entry, at);
    let sdist = raw.sdist.as_ref().map(artifact).transpose()?;
    let wheels: Vec<Artifact> = raw.wheels.iter().map(artifact).collect::<Result<_, _>>()?;

    // PEP 751: exactly one of vcs, directory, archive, or index-based sdist/wheels.
    let source = match (&raw.vcs, &raw.directory, &raw.archive) {
        (Some(vcs), None, None) => {
            let vcs_ref = vcs.get_ref();
            if vcs_ref.kind != "git" {
                return Err(invalid(format!(
                    "vcs type `{}` is not supported; akpkg fetches git only",
                    vcs_ref.kind
                )));
            }
            let repository = vcs_ref
                .url
                .clone()
                .or_else(|| vcs_ref.path.clone())
                .ok_or_else(|| invalid("a vcs entry needs `url` or `path`".to_string()))?;
            Source::Git {
                repository,
                reference: vcs_ref.requested_revision.clone(),
                commit: vcs_ref.commit_id.to_ascii_lowercase(),
                subdirectory: vcs_ref.subdirectory.clone(),
            }
        }
        (None, Some(directory), None) => {
            let path = PathBuf::from(&directory.path);
            if directory.editable {
                Source::Editable { path }
            } else {
                Source::Directory { path }
            }
        }
        (None, None, Some(archive)) => match (&archive.get_ref().url, &archive.get_ref().path) {
            (Some(url), _) => Source::Url {
                url: url.clone(),
                subdirectory: None,
            },
            (None, Some(path)) => Source::Path {
                path: PathBuf::from(path),
            },
            (None, None) => return Err(invalid("an archive needs `url` or `path`".to_string())),
        },
        (None, None, None) => {
            if sdist.is_none() && wheels.is_empty() {
                return Err(invalid(
                    "a package needs one of vcs, directory, archive, sdist or wheels".to_string(),
                ));
            }
            Source::Registry {
                index: raw
                    .index
                    .clone()
                    .unwrap_or_else(|| "https://pypi.org/simple".to_string()),
            }
        }
        _ => {
            return Err(invalid(
                "vcs, directory and archive are mutually exclusive".to_string(),
            ));
        }
    };
    // An archive source is its own single artifact, fetched like an sdist or wheel.
    let (sdist, wheels) = match (&raw.archive, &source) {
        (Some(archive), Source::Url { .. } | Source::Path { .. }) => {
            let file = artifact(archive)?;
            if file.filename.ends_with(".whl") {
                (sdist, vec![file])
            } else {
                (Some(file), wheels)
            }
        }
        _ => (sdist, wheels),
    };

    Ok(Package {
        name: package_name(name_text, &location)?,
        version: raw
            .version
            .as_ref()
            .map(|value| version(value.get_ref(), name_text, &at(value.span())))
            .transpose()?,
        source,
        sdist,
        wheels,
        allowed_hashes: Vec::new(),
        dependencies: Vec::new(),
        optional_dependencies: BTreeMap::new(),
        dependency_groups: BTreeMap::new(),
        marker: package_marker,
        requires_dist: Vec::new(),
        override_note: None,
        location,
    })
}

fn convert_file(
    package: &str,
    spanned: &Spanned<PylockFileEntry>,
    at: &impl Fn(std::ops::Range<usize>) -> Location,
) -> Result<Artifact, LockError> {
    let raw = spanned.get_ref();
    let location = at(spanned.span());
    let filename = raw
        .name
        .clone()
        .or_else(|| raw.url.as_deref().map(filename_of))
        .or_else(|| raw.path.as_deref().map(filename_of))
        .ok_or_else(|| LockError::InvalidSource {
            location: location.clone(),
            package: package.to_string(),
            message: "a file entry has neither `name`, `url` nor `path`".to_string(),
        })?
        .parse::<crate::identity::FileName>()
        .map_err(
            |error: crate::identity::IdentityError| LockError::InvalidSource {
                location: location.clone(),
                package: package.to_string(),
                message: format!("its file name: {error}"),
            },
        )?;
    // Prefer sha256, the hash everything downstream verifies.
    let hash = raw
        .hashes
        .get("sha256")
        .map(|digest| ("sha256", digest))
        .or_else(|| raw.hashes.iter().next().map(|(a, d)| (a.as_str(), d)))
        .map(|(algorithm, digest)| {
            Hash::parse(&format!("{algorithm}:{digest}")).ok_or_else(|| LockError::InvalidSource {
                location: location.clone(),
                package: package.to_string(),
                message: format!("`{algorithm} = \"{digest}\"` is not a hex digest"),
            })
        })
        .transpose()?;
    Ok(Artifact {
        filename,
        url: raw.url.clone(),
        path: raw.path.as_ref().map(PathBuf::from),
        hash,
        size: raw.size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Lock, LockError> {
        parse(Path::new("pylock.toml"), text)
    }

    #[test]
    fn reads_packages_of_every_kind() {
        let text = include_str!("testdata/every-kind.pylock.toml");
        let lock = parse_text(text).unwrap();
        assert_eq!(
            lock.format,
            LockFormat::Pylock {
                lock_version: "1.0".into()
            }
        );
        assert_eq!(lock.packages.len(), 5);
        let attrs = &lock.packages[0];
        assert_eq!(attrs.wheels[0].filename, "attrs-25.1.0-py3-none-any.whl");
        assert_eq!(
            attrs.wheels[0].hash.as_ref().unwrap().to_string(),
            "sha256:ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01"
        );
        assert_eq!(
            attrs.sdist.as_ref().unwrap().filename,
            "attrs-25.1.0.tar.gz"
        );
        let pywin32_marker = lock.packages[1].marker.try_to_string().unwrap();
        assert!(
            pywin32_marker.contains("sys_platform == 'win32'"),
            "{pywin32_marker}"
        );
        assert!(
            pywin32_marker.contains("python_full_version >= '3.8'"),
            "{pywin32_marker}"
        );
        assert!(
            matches!(&lock.packages[2].source, Source::Git { commit, .. } if commit == "ceb4fcc090851717a3069d78e85ceb1e86c2740c")
        );
        assert_eq!(lock.project_root, Some(3));
        assert_eq!(
            lock.packages[4].sdist.as_ref().unwrap().filename,
            "archived-1.0.tar.gz"
        );
    }

    #[test]
    fn error_unsupported_lock_version() {
        let error = parse_text("lock-version = '2.0'\n").unwrap_err();
        insta::assert_snapshot!(error.to_string(), @"pylock.toml:1:16: unsupported pylock.toml lock-version `2.0`; akpkg reads lock-version 1.x (PEP 751)");
    }

    #[test]
    fn error_package_without_any_source() {
        let error = parse_text("lock-version = '1.0'\n[[packages]]\nname = 'x'\n").unwrap_err();
        insta::assert_snapshot!(error.to_string(), @"pylock.toml:3:8: package `x` has an invalid source: a package needs one of vcs, directory, archive, sdist or wheels");
    }
}
