//! Errors of the `layer` stage.

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error(transparent)]
    Io(#[from] crate::path_io::PathIoError),

    #[error("{0}")]
    Usage(String),

    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),

    #[error(transparent)]
    Contained(#[from] crate::contained::ContainedError),

    #[error("OCI image layout: {0}")]
    Oci(String),

    /// The prefix's manifest, there but unreadable (boxed: assemble's errors are large).
    #[error(transparent)]
    Manifest(Box<crate::assemble::AssembleError>),
}
