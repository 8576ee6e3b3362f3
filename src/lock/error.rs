//! Errors of the `lock` stage. Each names the file, line and column, and what was expected.

use std::path::PathBuf;

use super::Location;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot read lock file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{location}: malformed TOML: {message}")]
    Toml { location: Location, message: String },

    #[error(
        "{location}: unsupported uv.lock version {version} (revision {revision}); akpkg reads version 1 with revisions 0 to 3"
    )]
    UnsupportedUvLockVersion {
        location: Location,
        version: i64,
        revision: i64,
    },

    #[error(
        "{location}: unsupported pylock.toml lock-version `{version}`; akpkg reads lock-version 1.x (PEP 751)"
    )]
    UnsupportedPylockVersion { location: Location, version: String },

    #[error(
        "{location}: package `{package}` has an unknown source kind `{kind}`; expected one of: registry, git, editable, virtual, directory, path, url"
    )]
    UnknownSourceKind {
        location: Location,
        package: String,
        kind: String,
    },

    #[error("{location}: package `{package}` has an invalid source: {message}")]
    InvalidSource {
        location: Location,
        package: String,
        message: String,
    },

    #[error(
        "{location}: `{package}` depends on `{dependency}`, but the lock has no [[package]] entry named `{dependency}`"
    )]
    MissingPackage {
        location: Location,
        package: String,
        dependency: String,
    },

    #[error(
        "{location}: `{package}` depends on `{dependency}`, which the lock holds in several versions ({versions}); the dependency must name one with `version`"
    )]
    AmbiguousDependency {
        location: Location,
        package: String,
        dependency: String,
        versions: String,
    },

    #[error("{location}: invalid version `{value}` for `{package}`: {message}")]
    InvalidVersion {
        location: Location,
        package: String,
        value: String,
        message: String,
    },

    #[error("{location}: invalid version specifier `{value}`: {message}")]
    InvalidSpecifier {
        location: Location,
        value: String,
        message: String,
    },

    #[error("{location}: invalid environment marker `{value}`: {message}")]
    InvalidMarker {
        location: Location,
        value: String,
        message: String,
    },

    #[error("{location}: invalid name `{value}`: {message}")]
    InvalidName {
        location: Location,
        value: String,
        message: String,
    },

    #[error("{location}: `{member}` is listed in [manifest] members but has no [[package]] entry")]
    MissingMember { location: Location, member: String },

    #[error("{location}: invalid requirement: {message}")]
    InvalidRequirement { location: Location, message: String },

    #[error(
        "{location}: `{requirement}` is not pinned; a requirements file for akpkg pins every package with `==` (as pip-compile and `uv export` write them)"
    )]
    NotPinned {
        location: Location,
        requirement: String,
    },

    #[error("{location}: unsupported option `{option}` in a requirements file: {hint}")]
    UnsupportedOption {
        location: Location,
        option: String,
        hint: &'static str,
    },

    #[error("{location}: {message}")]
    Invalid { location: Location, message: String },
}
