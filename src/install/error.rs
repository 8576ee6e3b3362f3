//! Errors of the `install` stage: each names the wheel and, where there is one, the entry.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Io(#[from] crate::path_io::PathIoError),

    #[error("{wheel}: not a readable zip archive: {message}")]
    Zip { wheel: PathBuf, message: String },

    #[error("{wheel}: refusing entry `{entry}`: {reason}")]
    UnsafeEntry {
        wheel: PathBuf,
        entry: String,
        reason: String,
    },

    #[error(
        "{wheel}: its sha256 is {actual}, not the pinned {expected}: the file changed after it was fetched. `akpkg cache verify` removes changed files from the cache; run again to download it anew"
    )]
    ChangedWheel {
        wheel: PathBuf,
        expected: crate::identity::Sha256,
        actual: crate::identity::Sha256,
    },

    #[error("{wheel}: the archive lists `{entry}` twice")]
    DuplicateEntry { wheel: PathBuf, entry: String },

    #[error("{wheel}: {message}")]
    InvalidWheel { wheel: PathBuf, message: String },

    #[error(
        "{wheel}: RECORD disagrees with `{entry}`: {problem}; the wheel is corrupt or was altered (--no-verify-record installs it anyway)"
    )]
    RecordMismatch {
        wheel: PathBuf,
        entry: String,
        problem: String,
    },

    #[error("{wheel}: Wheel-Version {version} is not supported; akpkg installs Wheel-Version 1.x")]
    UnsupportedWheelVersion { wheel: PathBuf, version: String },

    #[error(
        "{wheel}: `{key}` is not an installation scheme key; a .data directory may hold purelib, platlib, scripts, headers or data (entry `{entry}`)"
    )]
    UnknownDataKey {
        wheel: PathBuf,
        key: String,
        entry: String,
    },

    #[error(
        "{wheel}: its tags ({tags}) do not fit the target interpreter, whose best tags are {target_tags}"
    )]
    IncompatibleWheel {
        wheel: PathBuf,
        tags: String,
        target_tags: String,
    },

    #[error("{first} and {second} both install {path} with different contents: {reason}")]
    Conflict {
        path: PathBuf,
        first: String,
        second: String,
        reason: String,
    },

    #[error(
        "{path} already exists (from {wheel}); akpkg installs into a fresh prefix and never overwrites"
    )]
    AlreadyExists { path: PathBuf, wheel: String },

    #[error("{wheel}: invalid entry point `{entry}` in entry_points.txt: {reason}")]
    InvalidEntryPoint {
        wheel: PathBuf,
        entry: String,
        reason: &'static str,
    },

    #[error("cannot install into {prefix}: {reason}")]
    Layout { prefix: PathBuf, reason: String },

    #[error("{wheel}: refusing to install `{path}`: it is {reason}; no wheel may write there")]
    ReservedPath {
        wheel: PathBuf,
        path: PathBuf,
        reason: &'static str,
    },

    #[error(transparent)]
    Contained(#[from] crate::contained::ContainedError),

    #[error("byte-compiling with {python} failed: {message}")]
    Compile { python: PathBuf, message: String },
}

impl InstallError {
    /// Wrap an I/O error with what was being done and to which path.
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| InstallError::from(crate::path_io::PathIoError::new(action, path, source))
    }
}
