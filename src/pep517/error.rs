//! Errors of the `build` stage: each names the distribution, the backend and where to look.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The hook process could not start (or its log could not be opened).
    #[error(transparent)]
    Process(#[from] crate::runner::ProcessError),

    #[error(transparent)]
    Io(#[from] crate::path_io::PathIoError),

    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),

    #[error(transparent)]
    Fetch(#[from] crate::fetch::FetchError),

    #[error("cannot create a build environment: {0}")]
    Install(#[from] crate::install::InstallError),

    #[error("{path}: {message}")]
    Pyproject { path: PathBuf, message: String },

    #[error("cannot resolve build requirements [{asked}]:\n{message}")]
    Resolve { asked: String, message: String },

    #[error(transparent)]
    Backend(Box<BackendFailure>),

    #[error(
        "`{name}`: the backend asks for {missing} (get_requires_for_build_wheel), which the locked build environment lacks; run `akpkg lock` again"
    )]
    StaleEnvironment { name: String, missing: String },

    #[error("{0}")]
    Setup(String),
}

impl BuildError {
    pub fn io(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> BuildError {
        crate::path_io::io(action, path)
    }
}

/// A hook that failed: what, where, the end of its output and what to install.
#[derive(Debug, thiserror::Error)]
#[error(
    "building `{name}` with {backend} failed ({hook}): {message}\n--- last {shown} lines of the build output ---\n{tail}\n--- the full log is {log}{hint}"
)]
pub struct BackendFailure {
    pub name: String,
    pub backend: String,
    pub hook: &'static str,
    pub message: String,
    pub shown: usize,
    pub tail: String,
    pub log: PathBuf,
    /// Empty, or a newline and what to install, per hint.
    pub hint: String,
}
