//! Errors of the closure stage.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ClosureError {
    #[error(transparent)]
    Io(#[from] crate::path_io::PathIoError),

    #[error(
        "patchelf is needed to rewrite the prefix's ELF files ({reason}); install it (Debian: apt-get install -y patchelf) or put it on PATH"
    )]
    PatchelfMissing { reason: String },

    #[error("patchelf failed on {}: {message}", path.display())]
    Patchelf { path: PathBuf, message: String },

    #[error(
        "{soname}, which {} needs, is neither in the prefix nor in this machine's loader cache (ldconfig -p): it cannot be grafted; install the package that has it",
        needed_by.display()
    )]
    Unresolved { soname: String, needed_by: PathBuf },

    #[error("{}: not a well-formed ELF file (its dynamic section cannot be read)", path.display())]
    MalformedElf { path: PathBuf },

    #[error("the interpreter {} cannot be copied into the prefix: {reason}", python.display())]
    Interpreter { python: PathBuf, reason: String },

    #[error(transparent)]
    Contained(#[from] crate::contained::ContainedError),

    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),

    #[error(transparent)]
    Install(#[from] crate::install::InstallError),
}

impl ClosureError {
    pub fn io(action: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self {
        crate::path_io::io(action, path)
    }
}
