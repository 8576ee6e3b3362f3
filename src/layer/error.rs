//! Errors of the `layer` stage.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("{action} {}: {}", path.display(), crate::path_io::Reason(source))]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{0}")]
    Usage(String),

    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),

    #[error(transparent)]
    Contained(#[from] crate::contained::ContainedError),

    #[error("OCI image layout: {0}")]
    Oci(String),
}
