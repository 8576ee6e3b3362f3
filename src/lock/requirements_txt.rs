//! Reader for hash-pinned `requirements.txt` files, as pip-compile and `uv export` write them.
//!
//! Understood: `name==version` with `--hash=sha256:…` options, environment markers, `\`
//! continuations, comments, `-e PATH` (and `-e URL#egg=name`), direct URL requirements
//! (`name @ URL`, including `git+URL@COMMIT`), and the `--index-url`, `--extra-index-url` and
//! `--find-links` options. Every requirement becomes a root of a flat lock.
//!
//! There is no maintained crate for pip's requirements syntax outside uv's internal crates, so
//! this small reader is written here on top of pep508_rs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pep508_rs::{MarkerTree, VersionOrUrl};

use super::{
    IndexOptions, Location, Lock, LockError, LockFormat, Package, Source, first_line, package_name,
    uv_lock::parse_git_source,
};
use crate::lock::{Artifact, Hash};

const DEFAULT_INDEX: &str = "https://pypi.org/simple";

/// One logical line: continuation lines joined, comment removed, with the line it started on.
struct LogicalLine {
    number: usize,
    text: String,
}

pub(super) fn parse(path: &Path, text: &str) -> Result<Lock, LockError> {
    let mut options = IndexOptions::default();
    let mut packages = Vec::new();
    let mut project_root = None;

    for line in logical_lines(text) {
        let location = |column: usize| Location::at_line(path, line.number, column);
        let trimmed = line.text.trim_start();
        let indent = line.text.len() - trimmed.len();
        if trimmed.starts_with('-') && !is_editable(trimmed) {
            read_global_option(trimmed, &location(indent + 1), &mut options)?;
            continue;
        }
        let package = if let Some(target) = editable_target(trimmed) {
            read_editable(path, target, &location(indent + 1))?
        } else {
            read_requirement(trimmed, indent, &location, &options)?
        };
        if matches!(&package.source, Source::Editable { path } if path == Path::new(".")) {
            project_root = Some(packages.len());
        }
        packages.push(package);
    }

    Ok(Lock {
        path: path.to_path_buf(),
        format: LockFormat::RequirementsTxt,
        requires_python: None,
        roots: (0..packages.len()).collect(),
        packages,
        project_root,
        index_options: options,
    })
}

/// Join `\` continuations and drop comments (`#` at the start or after white space, as pip does).
fn logical_lines(text: &str) -> Vec<LogicalLine> {
    let mut lines = Vec::new();
    let mut current: Option<LogicalLine> = None;
    for (index, raw) in text.lines().enumerate() {
        let without_comment = strip_comment(raw);
        let (content, continues) = match without_comment.trim_end().strip_suffix('\\') {
            Some(before) => (before, true),
            None => (without_comment, false),
        };
        let entry = current.get_or_insert_with(|| LogicalLine {
            number: index + 1,
            text: String::new(),
        });
        if !entry.text.is_empty() {
            entry.text.push(' ');
        }
        entry.text.push_str(content.trim_end());
        if !continues
            && let Some(done) = current.take()
            && !done.text.trim().is_empty()
        {
            lines.push(done);
        }
    }
    lines.extend(current.filter(|line| !line.text.trim().is_empty()));
    lines
}

fn strip_comment(line: &str) -> &str {
    let mut previous_is_space = true;
    for (index, character) in line.char_indices() {
        if character == '#' && previous_is_space {
            return &line[..index];
        }
        previous_is_space = character.is_whitespace();
    }
    line
}

fn is_editable(line: &str) -> bool {
    editable_target(line).is_some()
}

/// `-e TARGET`, `-eTARGET`, `--editable TARGET` or `--editable=TARGET`.
fn editable_target(line: &str) -> Option<&str> {
    let rest = line
        .strip_prefix("--editable")
        .or_else(|| line.strip_prefix("-e"))?;
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    (!rest.is_empty()).then_some(rest)
}

/// Split `--name=value` or `--name value` into its parts.
fn split_option(text: &str) -> (&str, &str) {
    let end = text.find(['=', ' ', '\t']).unwrap_or(text.len());
    let (name, rest) = text.split_at(end);
    let value = rest.strip_prefix('=').unwrap_or(rest).trim();
    (name, value)
}

fn read_global_option(
    text: &str,
    location: &Location,
    options: &mut IndexOptions,
) -> Result<(), LockError> {
    let (name, value) = split_option(text);
    let needs_value = |option: &str| -> Result<String, LockError> {
        if value.is_empty() {
            Err(LockError::Invalid {
                location: location.clone(),
                message: format!("`{option}` needs a value"),
            })
        } else {
            Ok(value.to_string())
        }
    };
    match name {
        "-i" | "--index-url" => options.index_url = Some(needs_value(name)?),
        "--extra-index-url" => options.extra_index_urls.push(needs_value(name)?),
        "-f" | "--find-links" => options.find_links.push(needs_value(name)?),
        // Options that change nothing about which files a hash-pinned file names.
        "--no-index" | "--pre" | "--prefer-binary" | "--require-hashes" => {}
        "--trusted-host" => {
            needs_value(name)?;
        }
        "-r" | "--requirement" | "-c" | "--constraint" => {
            return Err(LockError::UnsupportedOption {
                location: location.clone(),
                option: name.to_string(),
                hint: "give akpkg one flattened file (pip-compile or `uv export` output)",
            });
        }
        _ => {
            return Err(LockError::UnsupportedOption {
                location: location.clone(),
                option: name.to_string(),
                hint: "akpkg understands --index-url, --extra-index-url, --find-links, -e and per-requirement --hash",
            });
        }
    }
    Ok(())
}

/// `-e ./path` (name read from the project's pyproject.toml) or `-e URL#egg=name`.
fn read_editable(
    lock_path: &Path,
    target: &str,
    location: &Location,
) -> Result<Package, LockError> {
    let invalid = |message: String| LockError::InvalidRequirement {
        location: location.clone(),
        message,
    };
    let egg = target
        .split_once("#egg=")
        .map(|(_, egg)| egg.split('&').next().unwrap_or(egg));
    let is_url = target.contains("://");
    let relative = target.strip_prefix("file:").unwrap_or(target);
    let name = match egg {
        Some(egg) => egg.to_string(),
        None if is_url => {
            return Err(invalid(format!(
                "editable URL `{target}` has no `#egg=<name>`, so its name is unknown"
            )));
        }
        None => {
            let directory = lock_path.parent().unwrap_or(Path::new(".")).join(relative);
            project_name(&directory).ok_or_else(|| {
                invalid(format!(
                    "cannot tell the name of editable `{target}`: {} has no [project] name",
                    directory.join("pyproject.toml").display()
                ))
            })?
        }
    };
    let source = if is_url {
        let url = target.split('#').next().unwrap_or(target);
        let url = url.strip_prefix("git+").unwrap_or(url);
        let (repository, commit) = url.rsplit_once('@').unwrap_or((url, ""));
        parse_git_source(&format!("{repository}#{commit}")).ok_or_else(|| {
            invalid(format!(
                "editable `{target}` must be a git URL pinned to a commit (`git+URL@COMMIT`)"
            ))
        })?
    } else {
        let path = relative.split('#').next().unwrap_or(relative);
        Source::Editable {
            path: PathBuf::from(normalize_relative(path)),
        }
    };
    flat_package(
        package_name(&name, location)?,
        None,
        source,
        Vec::new(),
        MarkerTree::TRUE,
        location.clone(),
    )
}

/// `./packages/x/` and `packages/x` name the same directory; keep the lock's spelling minimal.
fn normalize_relative(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    let without_dot = trimmed.strip_prefix("./").unwrap_or(trimmed);
    if without_dot.is_empty() || without_dot == "." {
        ".".to_string()
    } else {
        without_dot.to_string()
    }
}

/// The `[project] name` of a source tree, if it declares one.
fn project_name(directory: &Path) -> Option<String> {
    let text = fs_err::read_to_string(directory.join("pyproject.toml")).ok()?;
    let document: toml::Table = toml::from_str(&text).ok()?;
    Some(document.get("project")?.get("name")?.as_str()?.to_string())
}

fn read_requirement(
    text: &str,
    indent: usize,
    location: &impl Fn(usize) -> Location,
    options: &IndexOptions,
) -> Result<Package, LockError> {
    // Per-requirement options start at the first ` --`; the requirement is what stands before.
    let options_start = text.find(" --").unwrap_or(text.len());
    let (requirement_text, option_text) = text.split_at(options_start);
    let mut hashes = Vec::new();
    let mut words = option_text.split_whitespace().peekable();
    while let Some(word) = words.next() {
        let column = indent + text.find(word).unwrap_or(0) + 1;
        let (name, inline_value) = split_option(word);
        if name != "--hash" {
            return Err(LockError::UnsupportedOption {
                location: location(column),
                option: name.to_string(),
                hint: "the only per-requirement option akpkg reads is --hash",
            });
        }
        let value = if inline_value.is_empty() {
            words.next().unwrap_or_default()
        } else {
            inline_value
        };
        let hash = Hash::parse(value).ok_or_else(|| LockError::Invalid {
            location: location(column),
            message: format!("`{value}` is not a hash of the form `sha256:<hex>`"),
        })?;
        hashes.push(hash);
    }

    let requirement = crate::pep508::parse_requirement(requirement_text.trim()).map_err(
        |error: pep508_rs::Pep508Error| LockError::InvalidRequirement {
            location: location(indent + error.start + 1),
            message: first_line(&error),
        },
    )?;
    let start = location(indent + 1);
    let not_pinned = || LockError::NotPinned {
        location: start.clone(),
        requirement: requirement_text.trim().to_string(),
    };
    let (version, source) = match &requirement.version_or_url {
        Some(VersionOrUrl::VersionSpecifier(specifiers)) => {
            let [only] = specifiers.iter().collect::<Vec<_>>()[..] else {
                return Err(not_pinned());
            };
            let exact = matches!(
                only.operator(),
                pep440_rs::Operator::Equal | pep440_rs::Operator::ExactEqual
            );
            if !exact {
                return Err(not_pinned());
            }
            let index = options.index_url.as_deref().unwrap_or(DEFAULT_INDEX);
            (
                Some(only.version().clone()),
                Source::Registry {
                    index: index.to_string(),
                },
            )
        }
        Some(VersionOrUrl::Url(url)) => (None, url_source(url.as_str(), &start)?),
        None => return Err(not_pinned()),
    };
    flat_package(
        requirement.name,
        version,
        source,
        hashes,
        requirement.marker,
        start,
    )
}

/// `git+URL@COMMIT#subdirectory=…`, `file:…` archives and directories, or a plain URL.
fn url_source(url: &str, location: &Location) -> Result<Source, LockError> {
    let (without_fragment, fragment) = url.split_once('#').unwrap_or((url, ""));
    let subdirectory = fragment
        .split('&')
        .find_map(|pair| pair.strip_prefix("subdirectory="))
        .map(str::to_string);
    if let Some(git) = without_fragment.strip_prefix("git+") {
        let pinned = git
            .rsplit_once('@')
            .filter(|(repository, _)| repository.contains("://"))
            .and_then(|(repository, commit)| parse_git_source(&format!("{repository}#{commit}")))
            .filter(|source| matches!(source, Source::Git { commit, .. } if commit.len() == 40));
        return match pinned {
            Some(Source::Git {
                repository, commit, ..
            }) => Ok(Source::Git {
                repository,
                reference: None,
                commit,
                subdirectory,
            }),
            _ => Err(LockError::InvalidRequirement {
                location: location.clone(),
                message: format!(
                    "git URL `{url}` does not pin a full 40-character commit (`git+URL@COMMIT`)"
                ),
            }),
        };
    }
    if let Some(path) = without_fragment.strip_prefix("file://") {
        let path = PathBuf::from(path);
        let is_archive = path.file_name().is_some_and(|name| {
            name.to_string_lossy().contains(".tar")
                || name.to_string_lossy().ends_with(".zip")
                || name.to_string_lossy().ends_with(".whl")
        });
        return Ok(if is_archive {
            Source::Path { path }
        } else {
            Source::Directory { path }
        });
    }
    Ok(Source::Url {
        url: without_fragment.to_string(),
        subdirectory,
    })
}

fn flat_package(
    name: pep508_rs::PackageName,
    version: Option<pep440_rs::Version>,
    source: Source,
    allowed_hashes: Vec<Hash>,
    marker: MarkerTree,
    location: Location,
) -> Result<Package, LockError> {
    // `name @ https://…/file --hash=…`: the URL names the one file, the hash checks it.
    let mut sdist = None;
    let mut wheels = Vec::new();
    let mut version = version;
    if let (Source::Url { url, .. }, Some(hash)) = (&source, allowed_hashes.first()) {
        let filename = url
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .parse::<crate::identity::FileName>()
            .map_err(|error| LockError::Invalid {
                location: location.clone(),
                message: format!("the file name in {url}: {error}"),
            })?;
        let artifact = Artifact {
            filename: filename.clone(),
            url: Some(url.clone()),
            path: None,
            hash: Some(hash.clone()),
            size: None,
        };
        if filename.ends_with(".whl") {
            if let Ok(wheel) = filename.parse::<crate::tags::WheelFilename>() {
                version.get_or_insert(wheel.version);
            }
            wheels.push(artifact);
        } else {
            // `name-1.2.3.tar.gz`: the version follows the last `-`.
            let stem = filename
                .trim_end_matches(".tar.gz")
                .trim_end_matches(".zip")
                .trim_end_matches(".tar");
            if let Some(parsed) = stem
                .rsplit_once('-')
                .and_then(|(_, text)| text.parse::<pep440_rs::Version>().ok())
            {
                version.get_or_insert(parsed);
            }
            sdist = Some(artifact);
        }
    }
    Ok(Package {
        name,
        version,
        source,
        sdist,
        wheels,
        allowed_hashes,
        dependencies: Vec::new(),
        optional_dependencies: BTreeMap::new(),
        dependency_groups: BTreeMap::new(),
        marker,
        requires_dist: Vec::new(),
        override_note: None,
        location,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Lock, LockError> {
        parse(Path::new("requirements.txt"), text)
    }

    fn error_text(text: &str) -> String {
        parse_text(text).unwrap_err().to_string()
    }

    #[test]
    fn reads_pip_compile_output() {
        let text = "\
# This file was autogenerated
--index-url https://mirror.example/simple
--extra-index-url=https://extra.example/simple
-f ./wheels
django==5.2.11 \\
    --hash=sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA \\
    --hash sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
    # via authentik
colorama==0.4.6 ; sys_platform == 'win32' \\
    --hash=sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc
opencontainers @ git+https://github.com/vsoch/oci-python@ceb4fcc090851717a3069d78e85ceb1e86c2740c
pkg @ https://files.example/pkg-1.0.tar.gz#subdirectory=src
-e git+https://example.org/r@0123456789abcdef0123456789abcdef01234567#egg=thing
";
        let lock = parse_text(text).unwrap();
        assert_eq!(lock.format, LockFormat::RequirementsTxt);
        assert_eq!(
            lock.index_options,
            IndexOptions {
                index_url: Some("https://mirror.example/simple".into()),
                extra_index_urls: vec!["https://extra.example/simple".into()],
                find_links: vec!["./wheels".into()],
            }
        );
        let names: Vec<_> = lock.packages.iter().map(|p| p.name.to_string()).collect();
        assert_eq!(
            names,
            ["django", "colorama", "opencontainers", "pkg", "thing"]
        );
        let django = &lock.packages[0];
        assert_eq!(django.version.as_ref().unwrap().to_string(), "5.2.11");
        assert_eq!(django.location.line, 5);
        assert_eq!(
            django
                .allowed_hashes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
            ]
        );
        assert_eq!(
            django.source,
            Source::Registry {
                index: "https://mirror.example/simple".into()
            }
        );
        assert!(!lock.packages[1].marker.is_true());
        assert!(
            matches!(&lock.packages[2].source, Source::Git { commit, .. } if commit.starts_with("ceb4fcc"))
        );
        assert_eq!(
            lock.packages[3].source,
            Source::Url {
                url: "https://files.example/pkg-1.0.tar.gz".into(),
                subdirectory: Some("src".into())
            }
        );
        assert_eq!(lock.packages[4].name.as_ref(), "thing");
        assert_eq!(lock.project_root, None);
        assert_eq!(lock.roots.len(), lock.packages.len());
    }

    #[test]
    fn editable_names_come_from_pyproject() {
        let directory = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(directory.path().join("packages/member")).unwrap();
        fs_err::write(
            directory.path().join("pyproject.toml"),
            "[project]\nname = 'App_Root'\n",
        )
        .unwrap();
        fs_err::write(
            directory.path().join("packages/member/pyproject.toml"),
            "[project]\nname = 'member'\n",
        )
        .unwrap();
        let path = directory.path().join("requirements.txt");
        let lock = parse(&path, "-e .\n-e ./packages/member/\n").unwrap();
        assert_eq!(lock.packages[0].name.as_ref(), "app-root");
        assert_eq!(lock.project_root, Some(0));
        assert_eq!(
            lock.packages[1].source,
            Source::Editable {
                path: "packages/member".into()
            }
        );
    }

    #[test]
    fn comments_need_whitespace_before_the_hash_sign() {
        assert_eq!(strip_comment("a==1 # note"), "a==1 ");
        assert_eq!(strip_comment("# whole line"), "");
        assert_eq!(
            strip_comment("x @ https://h/x.tar.gz#sha256=00"),
            "x @ https://h/x.tar.gz#sha256=00"
        );
    }

    #[test]
    fn error_not_pinned() {
        insta::assert_snapshot!(error_text("\n\ndjango>=5\n"), @"requirements.txt:3:1: `django>=5` is not pinned; a requirements file for akpkg pins every package with `==` (as pip-compile and `uv export` write them)");
    }

    #[test]
    fn error_bad_requirement_points_at_the_column() {
        insta::assert_snapshot!(error_text("django==5.2 ; python_version >> '3'\n"), @"requirements.txt:1:30: invalid requirement: Expected a valid marker operator (such as `>=` or `not in`), found `>>`");
    }

    #[test]
    fn error_unsupported_options() {
        insta::assert_snapshot!(error_text("-r other.txt\n"), @"requirements.txt:1:1: unsupported option `-r` in a requirements file: give akpkg one flattened file (pip-compile or `uv export` output)");
        insta::assert_snapshot!(error_text("a==1 --install-option=x\n"), @"requirements.txt:1:6: unsupported option `--install-option` in a requirements file: the only per-requirement option akpkg reads is --hash");
    }

    #[test]
    fn error_bad_hash_and_unpinned_git() {
        insta::assert_snapshot!(error_text("a==1 --hash=sha256:zz\n"), @"requirements.txt:1:6: `sha256:zz` is not a hash of the form `sha256:<hex>`");
        insta::assert_snapshot!(error_text("a @ git+https://h/a@main\n"), @"requirements.txt:1:1: invalid requirement: git URL `git+https://h/a@main` does not pin a full 40-character commit (`git+URL@COMMIT`)");
    }
}
