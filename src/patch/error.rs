//! Errors of the `patch` stage: each names the patch file, the target file and the text.

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error(transparent)]
    Contained(#[from] crate::contained::ContainedError),

    #[error(transparent)]
    Io(#[from] crate::path_io::PathIoError),

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
