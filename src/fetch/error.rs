//! Errors of the `fetch` stage: each names the distribution, the (redacted) URL and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Io(#[from] crate::path_io::PathIoError),

    #[error("cannot set up downloads: {0}")]
    Setup(String),

    #[error("{0}")]
    Git(String),

    #[error("{0}")]
    Index(String),

    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),

    #[error(transparent)]
    Contained(#[from] crate::contained::ContainedError),

    #[error(
        "{count} artifacts are not in the cache and --offline forbids downloading them:\n{list}"
    )]
    OfflineMissing { count: usize, list: String },

    #[error(
        "`{name}` {version}: the lock gives no URL for {filename}; add it to the cache or a bundle"
    )]
    NoUrl {
        name: String,
        version: String,
        filename: String,
    },

    #[error(
        "`{name}` {version}: refusing plain HTTP for {url}; use HTTPS, or --allow-insecure-host {host} if this network is trusted"
    )]
    InsecureUrl {
        name: String,
        version: String,
        url: String,
        host: String,
    },

    #[error(
        "`{name}` {version}: {url} has the wrong content (sha256 {actual}, the lock expects {expected}); the file was discarded"
    )]
    HashMismatch {
        name: String,
        version: String,
        url: String,
        expected: String,
        actual: String,
    },

    #[error(
        "`{name}` {version}: {path} changed in the cache: its bytes now hash to sha256 {actual}, not to the pinned hash it is named after. It was removed, so the next run downloads it again (`akpkg cache verify` checks every file)"
    )]
    ChangedInCache {
        name: String,
        version: String,
        path: PathBuf,
        actual: String,
    },

    #[error(
        "{what}: {path} is not the bytes the lock pins ({expected}) as it is copied into the bundle: they hash to {actual}. The copy was removed; `akpkg cache verify` finds a changed cache, and `akpkg fetch` gets it again"
    )]
    BundleCopyChanged {
        what: String,
        path: PathBuf,
        expected: String,
        actual: String,
    },

    #[error(
        "`{name}` {version}: {url} sent more than {limit} bytes ({received} so far), {why}; the download was stopped and discarded"
    )]
    TooLarge {
        name: String,
        version: String,
        url: String,
        received: u64,
        limit: u64,
        why: String,
    },

    #[error(
        "`{name}` {version}: downloading {url} took longer than {seconds} s ({received} bytes arrived); raise it with --download-deadline, or give the file another way (--mirror, --index-url, --find-links or --bundle)"
    )]
    Deadline {
        name: String,
        version: String,
        url: String,
        seconds: u64,
        received: u64,
    },

    #[error("`{name}` {version}: {url}: refusing {message}")]
    Redirect {
        name: String,
        version: String,
        url: String,
        message: String,
    },

    #[error("`{name}` {version}: {url} answered {status}")]
    Status {
        name: String,
        version: String,
        url: String,
        status: u16,
    },

    #[error(
        "`{name}` {version}: downloading {url} failed after {attempts} attempts: {message}. Check the network and proxy, or give the file another way (--mirror, --index-url, --find-links or --bundle)"
    )]
    GaveUp {
        name: String,
        version: String,
        url: String,
        attempts: u32,
        message: String,
    },

    #[error(transparent)]
    GoModuleMismatch(Box<GoModuleMismatch>),

    #[error(
        "Go module {module}@{version}: no module proxy has {what} ({tried}). Give one that has it with --go-proxy (a `file://DIR` proxy-shaped directory works too), or leave the server out (`akpkg assemble --no-server`)"
    )]
    GoModuleUnavailable {
        module: String,
        version: String,
        what: &'static str,
        tried: String,
    },

    #[error(
        "{url} does not have the package-lock's integrity: the lock pins {expected}, the tarball has {actual}; it was not used"
    )]
    NpmIntegrityMismatch {
        url: String,
        expected: String,
        actual: String,
    },

    #[error("Go module {module}@{version}: {origin} is not a readable module file: {message}")]
    GoModuleUnreadable {
        module: String,
        version: String,
        origin: String,
        message: String,
    },
}

/// A Go module file whose go.sum hash differs (boxed: it is the largest variant).
#[derive(Debug, thiserror::Error)]
#[error(
    "Go module {module}@{version}: {origin} does not match go.sum: go.sum pins {what} as {expected}, the file has {actual}; it was discarded"
)]
pub struct GoModuleMismatch {
    pub module: String,
    pub version: String,
    pub what: &'static str,
    pub origin: String,
    pub expected: String,
    pub actual: String,
}

impl FetchError {
    /// The error of `action` on `path`, for `map_err`.
    pub fn io(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> FetchError {
        crate::path_io::io(action, path)
    }
}
