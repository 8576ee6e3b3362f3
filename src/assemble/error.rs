//! Errors of the `assemble` stage and `verify`.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    #[error(transparent)]
    Io(#[from] crate::path_io::PathIoError),

    #[error("recipe: {0}")]
    Recipe(String),

    #[error(
        "akpkg has no built-in release {release}; it has {known} (`akpkg releases` lists them; --recipe FILE builds another)"
    )]
    UnknownRelease { release: String, known: String },

    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),

    #[error(transparent)]
    Patch(#[from] crate::patch::PatchError),

    #[error(transparent)]
    Fetch(#[from] crate::fetch::FetchError),

    #[error(transparent)]
    Build(#[from] crate::pep517::BuildError),

    #[error(transparent)]
    Install(#[from] crate::install::InstallError),

    #[error(transparent)]
    Server(#[from] crate::server::ServerError),

    /// Boxed: the web stage's errors carry the fetch and lock errors they wrap.
    #[error(transparent)]
    Web(Box<crate::web::WebError>),

    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),

    #[error(transparent)]
    Closure(#[from] crate::closure::ClosureError),
    #[error(transparent)]
    Contained(#[from] crate::contained::ContainedError),

    #[error(transparent)]
    SourceMismatch(Box<SourceMismatch>),

    #[error(
        "this interpreter does not fit the lock: {0}. Lock for it with `akpkg lock --python …`, or use an interpreter like the lock's target"
    )]
    Target(String),

    #[error("{count} distributions failed to build:\n{list}")]
    Builds { count: usize, list: String },

    #[error("the assembled prefix failed verification; {prefix} was left as it was:\n{failures}")]
    VerifyFailed { prefix: PathBuf, failures: String },

    #[error("{} failed verification ({problems}):\n{failures}", prefix.display())]
    PrefixFailedVerification {
        prefix: PathBuf,
        /// `1 problem`, `3 problems`.
        problems: String,
        failures: String,
    },

    #[error("{0}")]
    Verify(String),

    /// A JSON document akpkg reads or writes (the manifest, the SBOM) that does not parse or
    /// serialize.
    #[error("{}: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },

    #[error(
        "cannot download the release's source from {url}: {detail}\nWhere that host cannot be reached, give the release archive or a source tree with --source FILE|DIR"
    )]
    SourceDownload { url: String, detail: String },

    #[error(
        "refusing to replace {prefix}: it is {what}, not a prefix akpkg assembled (it has no {manifest}). Choose another --prefix, move it away, or give --force to replace it anyway"
    )]
    PrefixNotOurs {
        prefix: PathBuf,
        /// "a file", "a symbolic link", "a directory holding 3 entries (notes.txt, …)".
        what: String,
        manifest: &'static str,
    },

    #[error(
        "cannot assemble into {prefix}: {parent} is not writable ({kind}). akpkg builds the new prefix beside the old one and moves it into place, so the parent directory must be writable: choose another --prefix, or run as a user who may write there"
    )]
    PrefixParentNotWritable {
        prefix: PathBuf,
        parent: PathBuf,
        kind: std::io::ErrorKind,
    },

    #[error(
        "no space left on a file system akpkg writes to; {prefix} was left as it was.\nFree space beside the prefix (staging needs as much again as the prefix) and in the cache (--cache-dir), or choose other directories.\n  failed: {detail}"
    )]
    NoSpace { prefix: PathBuf, detail: String },
}

/// Whether `error`, or any error it wraps, is "no space left on device".
pub(super) fn is_storage_full(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(io_error) = error.downcast_ref::<std::io::Error>()
            && io_error.kind() == std::io::ErrorKind::StorageFull
        {
            return true;
        }
        current = error.source();
    }
    false
}

impl From<crate::web::WebError> for AssembleError {
    fn from(error: crate::web::WebError) -> AssembleError {
        AssembleError::Web(Box::new(error))
    }
}

impl AssembleError {
    pub fn io(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> AssembleError {
        crate::path_io::io(action, path)
    }
}

/// The source's files are not the release the recipe pins.
#[derive(Debug, thiserror::Error)]
#[error(
    "the source is not {name} {version}: its files hash to tree {actual}, the recipe pins {expected}; first difference: {difference}. Use the release's source, or --allow-unverified-source to build it anyway"
)]
pub struct SourceMismatch {
    pub name: String,
    pub version: String,
    pub actual: String,
    pub expected: String,
    pub difference: String,
}
