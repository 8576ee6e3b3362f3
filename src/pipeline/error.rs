//! Errors of the pipeline's steps that join the stages.

/// A build environment that could not be locked.
#[derive(Debug)]
pub struct EnvironmentFailure {
    pub name: String,
    pub error: crate::pep517::BuildError,
}

impl std::fmt::Display for EnvironmentFailure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "`{}`: {}", self.name, self.error)
    }
}

/// The failures, a line each.
pub struct Lines<'a, T>(pub &'a [T]);

impl<T: std::fmt::Display> std::fmt::Display for Lines<'_, T> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (index, item) in self.0.iter().enumerate() {
            if index > 0 {
                formatter.write_str("\n")?;
            }
            write!(formatter, "{item}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Io(#[from] crate::path_io::PathIoError),

    #[error("`{name}`: its git commit: {message}")]
    GitCommit { name: String, message: String },

    #[error("`{name}` is pinned by hash only; finding its file needs an index")]
    NeedsIndex { name: String },

    #[error("`{name}`: the index's {what}: {message}")]
    IndexFile {
        name: String,
        what: &'static str,
        message: String,
    },

    #[error(
        "`{name}` {version}: the lock gives no sha256 for {filename}, and akpkg fetches nothing unverified"
    )]
    NoSha256 {
        name: String,
        version: String,
        filename: String,
    },

    #[error("`{name}`: its sdist {filename} was not fetched")]
    SdistNotFetched { name: String, filename: String },

    #[error("`{name}`: its git source was not fetched")]
    GitNotFetched { name: String },

    #[error("`{name}`: akpkg cannot build from a {kind} source")]
    Unbuildable { name: String, kind: &'static str },

    #[error(
        "{} of {total} build environments could not be locked; nothing was written:\n{}",
        failures.len(),
        Lines(failures)
    )]
    Environments {
        total: usize,
        failures: Vec<EnvironmentFailure>,
    },

    #[error("cannot start the build threads: {0}")]
    Threads(String),

    #[error(transparent)]
    Fetch(#[from] crate::fetch::FetchError),

    #[error(transparent)]
    Build(#[from] crate::pep517::BuildError),

    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),

    #[error(transparent)]
    Server(#[from] crate::server::ServerError),

    /// Boxed: the web stage's errors carry the fetch and lock errors they wrap.
    #[error(transparent)]
    Web(Box<crate::web::WebError>),
}

impl From<crate::web::WebError> for PipelineError {
    fn from(error: crate::web::WebError) -> PipelineError {
        PipelineError::Web(Box::new(error))
    }
}
