//! Errors of the `patch` stage: each names the patch file, the target file and the text.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error(transparent)]
    Contained(#[from] crate::contained::ContainedError),

    #[error("{action} {}: {}", path.display(), crate::path_io::Reason(source))]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("patch {patch}: {message}")]
    Invalid { patch: String, message: String },

    #[error(
        "patch {patch}: expected {expected} occurrence(s) in {file} of:\n{old}\nbut found {found}; the source changed, so the patch must be updated"
    )]
    Mismatch {
        patch: String,
        file: String,
        old: String,
        expected: usize,
        found: usize,
    },

    #[error("patch {patch}: {file}: {message}")]
    Target {
        patch: String,
        file: String,
        message: String,
    },
}
