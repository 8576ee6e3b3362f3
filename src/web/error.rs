//! Errors of the `web` stage: each names the package, file or command and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(transparent)]
    Io(#[from] crate::path_io::PathIoError),

    #[error("{path}: not valid JSON: {detail}")]
    Json { path: PathBuf, detail: String },

    #[error("the recipe's [web] {field} `{value}` is not valid: {why}")]
    Recipe {
        field: &'static str,
        value: String,
        why: String,
    },

    #[error(
        "{package_json} asks for {tool} `{wanted}` (its `engines`), but the recipe pins {tool} {pinned}; pin a version that satisfies it in the recipe's [web] {tool}"
    )]
    Engine {
        package_json: PathBuf,
        tool: &'static str,
        wanted: String,
        pinned: String,
    },

    #[error(
        "the override of `{package}` names a package that {lock} does not lock; remove it from the recipe or lock again"
    )]
    OverrideNotLocked { package: String, lock: PathBuf },

    #[error(
        "the recipe generates the API client `{package}` with openapi-generator, which needs Java, and `{command}` cannot be run ({detail}). Install a Java runtime (Debian: apt-get install default-jre-headless), name it with JAVA, or use the lock's published client (`akpkg assemble --api-client locked`)"
    )]
    NoJava {
        package: String,
        command: String,
        detail: String,
    },

    #[error(
        "{path}: this package-lock (sha256 {actual}) is not the one akpkg's lock pins (sha256 {expected}); lock again (`akpkg lock --recipe … --source …`) so that its packages are pinned"
    )]
    PackageLockChanged {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    #[error("{path}: the tarball has no package/package.json with a name and version")]
    NotAPackage { path: PathBuf },

    /// A command of the web build could not run or failed (its status, the log's last lines).
    #[error(transparent)]
    Command(#[from] crate::runner::ProcessError),

    #[error(
        "the web build wrote no {path}: the recipe's [web] output names nothing the build made"
    )]
    NoOutput { path: PathBuf },

    #[error(
        "{path} exists and is not a directory this user made for a web build; remove it (web builds run at that fixed path so that their output does not depend on where akpkg runs)"
    )]
    ForeignBuildDirectory { path: PathBuf },

    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),

    #[error(transparent)]
    Contained(#[from] crate::contained::ContainedError),

    #[error(transparent)]
    Fetch(#[from] crate::fetch::FetchError),

    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
}

impl WebError {
    pub(crate) fn io(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> WebError {
        crate::path_io::io(action, path)
    }
}
