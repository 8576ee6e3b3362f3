//! The `lock` stage: read pinned requirements into one [`Lock`].
//!
//! Three inputs are understood, each in its own module:
//! - `uv.lock` (version 1), which is a graph: workspace members, dependencies, extras, groups;
//! - hash-pinned `requirements.txt`, which is already flat;
//! - PEP 751 `pylock.toml`, which is flat too, with a marker per package.
//!
//! Flat formats become a lock whose every package is a root with no dependencies, so the plan
//! stage walks all three the same way.

mod akpkg_lock;
mod error;
mod go_modules;
mod location;
mod npm_lock;
mod overrides;
mod project;
mod pylock;
mod requirements_txt;
mod uv_lock;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{ExtraName, MarkerTree, PackageName};
use serde::Serialize;

pub use akpkg_lock::{
    AKPKG_LOCK_VERSION, AkpkgLock, BuildKind, LockedBuild, LockedEnvironment, LockedFile,
    LockedGit, LockedTarget, SourceLockPin,
};
pub use error::LockError;
pub use go_modules::{
    LockedGo, LockedGoApiClient, LockedGoModule, parse_go_mod, parse_go_sum, read_go_module,
};
pub use location::{LineIndex, Location};
pub use npm_lock::{LockedJar, LockedNpmDownload, LockedNpmPackage, LockedWeb, read_npm_lock};
pub use overrides::{Override, OverrideSource, apply_overrides, parse_override};
pub use project::{ProjectSettings, read_project_settings};

/// Every locked distribution of one lock file, with the graph between them.
#[derive(Debug, Clone)]
pub struct Lock {
    /// The file this was read from; relative paths in sources are relative to its directory.
    pub path: PathBuf,
    pub format: LockFormat,
    pub requires_python: Option<VersionSpecifiers>,
    pub packages: Vec<Package>,
    /// Indices into `packages` where the walk starts: the project root first, then workspace
    /// members (uv.lock), or every package (flat formats).
    pub roots: Vec<usize>,
    /// The index of the project at the workspace root, when the lock has one.
    pub project_root: Option<usize>,
    /// Index options given inside the file (requirements.txt only).
    pub index_options: IndexOptions,
}

impl Lock {
    /// The directory that relative source paths are anchored at.
    pub fn directory(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }
}

/// Which reader produced a lock, with the format version it declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LockFormat {
    UvLock { version: u32, revision: u32 },
    RequirementsTxt,
    Pylock { lock_version: String },
}

/// `--index-url`, `--extra-index-url` and `--find-links` lines of a requirements file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IndexOptions {
    pub index_url: Option<String>,
    pub extra_index_urls: Vec<String>,
    pub find_links: Vec<String>,
}

/// One locked distribution.
#[derive(Debug, Clone)]
pub struct Package {
    pub name: PackageName,
    /// `None` only for sources whose version is dynamic and unlocked (uv omits it for some
    /// virtual and editable projects).
    pub version: Option<Version>,
    pub source: Source,
    pub sdist: Option<Artifact>,
    pub wheels: Vec<Artifact>,
    /// Hashes allowed when the lock names no artifact (requirements.txt): any file with one of
    /// these hashes is acceptable.
    pub allowed_hashes: Vec<Hash>,
    pub dependencies: Vec<Dependency>,
    pub optional_dependencies: BTreeMap<ExtraName, Vec<Dependency>>,
    /// Dependency groups (uv's `dev-dependencies` table, keyed by group name).
    pub dependency_groups: BTreeMap<String, Vec<Dependency>>,
    /// The package's own environment marker (flat formats); `TRUE` for uv.lock, whose markers
    /// sit on the dependency edges.
    pub marker: MarkerTree,
    /// The declared requirements, as uv records them in `[package.metadata]`.
    pub requires_dist: Vec<DeclaredRequirement>,
    /// Set when an override replaced or added this package: what it says, for plans.
    pub override_note: Option<String>,
    /// Where the package is declared in its file.
    pub location: Location,
}

/// An edge of the graph: `from` needs `package`, with these extras, where `marker` holds.
#[derive(Debug, Clone)]
pub struct Dependency {
    /// Index into [`Lock::packages`].
    pub package: usize,
    pub extras: Vec<ExtraName>,
    pub marker: MarkerTree,
}

/// A requirement as the project declared it (not as resolved).
#[derive(Debug, Clone)]
pub struct DeclaredRequirement {
    pub name: PackageName,
    pub specifier: Option<VersionSpecifiers>,
    pub extras: Vec<ExtraName>,
    pub marker: MarkerTree,
    /// `registry`, `git`, `editable`, `path`, `directory` or `url` when the declaration names
    /// where it comes from.
    pub source_kind: Option<String>,
}

/// Where a distribution comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Source {
    /// A package index (PEP 503/691), by URL or local path.
    Registry { index: String },
    /// A git repository pinned to a commit.
    Git {
        repository: String,
        /// The reference the user asked for (`rev`, `tag` or `branch`), informational.
        reference: Option<String>,
        commit: String,
        subdirectory: Option<String>,
    },
    /// A local project installed editable by uv: a workspace member or the root (`.`).
    Editable { path: PathBuf },
    /// A local project that is not itself installed, only its dependencies.
    Virtual { path: PathBuf },
    /// A local source tree, installed normally.
    Directory { path: PathBuf },
    /// A local archive (wheel or sdist).
    Path { path: PathBuf },
    /// A remote archive.
    Url {
        url: String,
        subdirectory: Option<String>,
    },
}

impl Source {
    /// The word shown in plans.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Registry { .. } => "registry",
            Source::Git { .. } => "git",
            Source::Editable { .. } => "editable",
            Source::Virtual { .. } => "virtual",
            Source::Directory { .. } => "directory",
            Source::Path { .. } => "path",
            Source::Url { .. } => "url",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Registry { index } => write!(f, "registry {index}"),
            Source::Git {
                repository, commit, ..
            } => write!(f, "git {repository}@{commit}"),
            Source::Editable { path }
            | Source::Virtual { path }
            | Source::Directory { path }
            | Source::Path { path } => write!(f, "{} {}", self.kind(), path.display()),
            Source::Url { url, .. } => write!(f, "url {url}"),
        }
    }
}

/// A file that can be fetched: a wheel or an sdist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Artifact {
    /// The file name (for wheels this carries the tags).
    pub filename: crate::identity::FileName,
    /// Where the lock says the file is; a hint, since the hash is the identity.
    pub url: Option<String>,
    /// A local path, relative to the lock's directory, for path and directory registries.
    pub path: Option<PathBuf>,
    pub hash: Option<Hash>,
    pub size: Option<u64>,
}

/// `algorithm:hex` as written in locks (`sha256:…`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "String")]
pub struct Hash {
    pub algorithm: String,
    pub digest: String,
}

impl Hash {
    /// Parse `algorithm:hex` (or `algorithm=hex`, as pip's `--hash` allows).
    pub fn parse(text: &str) -> Option<Hash> {
        let (algorithm, digest) = text.split_once([':', '='])?;
        // A sha256 must have its 64 digits: it names files in the cache.
        let valid = !algorithm.is_empty()
            && !digest.is_empty()
            && algorithm.chars().all(|c| c.is_ascii_alphanumeric())
            && digest.chars().all(|c| c.is_ascii_hexdigit())
            && (!algorithm.eq_ignore_ascii_case("sha256") || digest.len() == 64);
        valid.then(|| Hash {
            algorithm: algorithm.to_ascii_lowercase(),
            digest: digest.to_ascii_lowercase(),
        })
    }

    /// The sha256 digest, if this is one.
    pub fn sha256(&self) -> Option<crate::identity::Sha256> {
        (self.algorithm == "sha256")
            .then(|| self.digest.parse().ok())
            .flatten()
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.digest)
    }
}

impl From<Hash> for String {
    fn from(hash: Hash) -> String {
        hash.to_string()
    }
}

/// Read a lock file, choosing the reader by the file's name and, failing that, its content.
pub fn read(path: &Path) -> Result<Lock, LockError> {
    let text = fs_err::read_to_string(path).map_err(|source| LockError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(detect_format(path, &text), path, &text)
}

/// The kinds of file of pinned requirements akpkg reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockFileKind {
    UvLock,
    Pylock,
    RequirementsTxt,
}

/// Parse `text` as `format`; `path` is where it came from, for messages and relative paths.
pub fn parse(format: LockFileKind, path: &Path, text: &str) -> Result<Lock, LockError> {
    match format {
        LockFileKind::UvLock => uv_lock::parse(path, text),
        LockFileKind::Pylock => pylock::parse(path, text),
        LockFileKind::RequirementsTxt => requirements_txt::parse(path, text),
    }
}

fn detect_format(path: &Path, text: &str) -> LockFileKind {
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if file_name == "uv.lock" {
        return LockFileKind::UvLock;
    }
    // PEP 751: `pylock.toml` or `pylock.<name>.toml`.
    if file_name.starts_with("pylock.") && file_name.ends_with(".toml") {
        return LockFileKind::Pylock;
    }
    if file_name.ends_with(".txt") || file_name.ends_with(".in") {
        return LockFileKind::RequirementsTxt;
    }
    // Unusual names: look at the first meaningful line.
    let first = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .unwrap_or_default();
    if first.starts_with("lock-version") {
        LockFileKind::Pylock
    } else if first.starts_with("version") {
        LockFileKind::UvLock
    } else {
        LockFileKind::RequirementsTxt
    }
}

/// Deserialize TOML, turning parser and schema errors into a located [`LockError::Toml`].
/// Whether `path` holds akpkg's own lock (a `[source-lock]` table) rather than upstream's.
pub fn is_akpkg_lock(path: &Path) -> bool {
    fs_err::read_to_string(path)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .is_some_and(|table| table.contains_key("source-lock"))
}

fn parse_toml<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, LockError> {
    toml::from_str(text).map_err(|error: toml::de::Error| LockError::Toml {
        location: Location::at_offset(path, text, error.span().map_or(0, |span| span.start)),
        message: error.message().trim().to_string(),
    })
}

/// Parse and normalize a distribution name, mapping errors to a located lock error.
fn package_name(value: &str, location: &Location) -> Result<PackageName, LockError> {
    PackageName::new(value.to_string()).map_err(|error| LockError::InvalidName {
        location: location.clone(),
        value: value.to_string(),
        message: error.to_string(),
    })
}

fn extra_name(value: &str, location: &Location) -> Result<ExtraName, LockError> {
    ExtraName::new(value.to_string()).map_err(|error| LockError::InvalidName {
        location: location.clone(),
        value: value.to_string(),
        message: error.to_string(),
    })
}

fn version(value: &str, package: &str, location: &Location) -> Result<Version, LockError> {
    value.parse().map_err(
        |error: pep440_rs::VersionParseError| LockError::InvalidVersion {
            location: location.clone(),
            package: package.to_string(),
            value: value.to_string(),
            message: error.to_string(),
        },
    )
}

fn specifiers(value: &str, location: &Location) -> Result<VersionSpecifiers, LockError> {
    value
        .parse()
        .map_err(
            |error: pep440_rs::VersionSpecifiersParseError| LockError::InvalidSpecifier {
                location: location.clone(),
                value: value.to_string(),
                message: error.to_string(),
            },
        )
}

fn marker(value: &str, location: &Location) -> Result<MarkerTree, LockError> {
    crate::pep508::parse_marker(value).map_err(|error: pep508_rs::Pep508Error| {
        LockError::InvalidMarker {
            location: location.clone(),
            value: value.to_string(),
            message: first_line(&error),
        }
    })
}

/// What a PEP 508 parse error says is wrong: its first line (the rest repeats the input with a
/// caret, which the located message replaces).
fn first_line(error: &pep508_rs::Pep508Error) -> String {
    let message = error.message.to_string();
    message.lines().next().unwrap_or_default().to_string()
}

/// The last path segment of a URL or path, which names the file.
fn filename_of(url_or_path: &str) -> String {
    let without_fragment = url_or_path.split(['#', '?']).next().unwrap_or(url_or_path);
    without_fragment
        .rsplit('/')
        .next()
        .unwrap_or(without_fragment)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_parse_with_colon_or_equals() {
        let digest = "abcdef01".repeat(8);
        let colon = Hash::parse(&format!("sha256:{}", digest.to_ascii_uppercase())).unwrap();
        assert_eq!(colon.to_string(), format!("sha256:{digest}"));
        assert_eq!(colon.sha256().unwrap(), digest);
        let equals = Hash::parse(&format!("sha256={digest}")).unwrap();
        assert_eq!(equals, colon);
        assert!(Hash::parse("sha256:xyz").is_none());
        // Too short to name a cache entry.
        assert!(Hash::parse("sha256:abcdef01").is_none());
        assert!(Hash::parse("nohash").is_none());
        assert_eq!(Hash::parse("md5:00ff").unwrap().sha256(), None);
    }

    #[test]
    fn filename_is_the_last_segment_without_fragment() {
        assert_eq!(
            filename_of("https://host/p/a/django-5.2.11-py3-none-any.whl#sha256=00"),
            "django-5.2.11-py3-none-any.whl"
        );
        assert_eq!(filename_of("dist/x-1.0.tar.gz"), "x-1.0.tar.gz");
    }

    #[test]
    fn format_is_detected_by_name_then_content() {
        let detect = |name: &str, text: &str| match detect_format(Path::new(name), text) {
            LockFileKind::UvLock => "uv",
            LockFileKind::Pylock => "pylock",
            LockFileKind::RequirementsTxt => "requirements",
        };
        assert_eq!(detect("a/uv.lock", ""), "uv");
        assert_eq!(detect("pylock.toml", ""), "pylock");
        assert_eq!(detect("pylock.dev.toml", ""), "pylock");
        assert_eq!(detect("requirements.txt", "version = 1"), "requirements");
        assert_eq!(detect("x.lock", "# c\nlock-version = '1.0'"), "pylock");
        assert_eq!(detect("x.lock", "version = 1\n"), "uv");
        assert_eq!(detect("x.lock", "django==5.2\n"), "requirements");
    }
}
