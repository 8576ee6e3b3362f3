//! Errors of the `release` stage.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(transparent)]
    Io(#[from] crate::path_io::PathIoError),

    /// Boxed: it wraps every stage's error.
    #[error(transparent)]
    Recipe(Box<crate::assemble::AssembleError>),

    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),

    #[error(transparent)]
    Fetch(#[from] crate::fetch::FetchError),

    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),

    #[error(
        "{archive}: cannot tell the release's commit date (a directory has none, and the archive's entries carry no time); give it with --source-date-epoch SECONDS (`git log -1 --format=%ct TAG`)"
    )]
    NoDate { archive: PathBuf },

    #[error(
        "{path}: no version in [project]; give the new release's version with --new-version VERSION"
    )]
    NoVersion { path: PathBuf },

    #[error("{path}: {message}")]
    Manifest { path: PathBuf, message: String },

    #[error(
        "{path} already exists; release new never replaces a file (remove it, or choose another --output DIR)"
    )]
    Exists { path: PathBuf },

    #[error("{origin}: {message}")]
    RecipeText { origin: String, message: String },

    #[error(transparent)]
    Contained(#[from] crate::contained::ContainedError),
}

impl ReleaseError {
    /// Wrap an I/O error with what was being done and to which path.
    pub fn io(action: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self {
        crate::path_io::io::<ReleaseError>(action, path)
    }
}

impl From<crate::assemble::AssembleError> for ReleaseError {
    fn from(error: crate::assemble::AssembleError) -> ReleaseError {
        ReleaseError::Recipe(Box::new(error))
    }
}
