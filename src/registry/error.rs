//! Errors of talking to an OCI registry.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{reference}: {reason}")]
    Reference { reference: String, reason: String },

    #[error(
        "{host} would be reached over plain HTTP, which akpkg allows only for loopback hosts; \
         pass --allow-insecure-host {host} if the network between is trusted"
    )]
    Insecure { host: String },

    #[error("{url}: {message}")]
    Request { url: String, message: String },

    #[error("{url}: gave up after {attempts} attempts: {message}")]
    GaveUp {
        url: String,
        attempts: u32,
        message: String,
    },

    #[error("{action} {url}: the registry answered {status}{detail}")]
    Status {
        action: &'static str,
        url: String,
        status: u16,
        /// The registry's own error text, when it sent one (`: …`).
        detail: String,
    },

    #[error(
        "{host} refused {repository} ({status}){hint}; credentials come from \
         $DOCKER_CONFIG/config.json or ~/.docker/config.json (`auths`, credential helpers), \
         $REGISTRY_AUTH_FILE (podman), then ~/.netrc"
    )]
    Unauthorized {
        host: String,
        repository: String,
        status: u16,
        /// Whether credentials were found and sent (`: the credentials found were refused`).
        hint: String,
    },

    #[error("the token service {realm}: {message}")]
    Token { realm: String, message: String },

    #[error(
        "{url}: the registry stored {what} as {actual}, not {expected}; \
         nothing was tagged"
    )]
    DigestMismatch {
        what: String,
        url: String,
        expected: String,
        actual: String,
    },

    #[error("{what}: {reason}")]
    Key { what: String, reason: String },

    #[error("the OCI image layout {path}: {message}")]
    Layout { path: PathBuf, message: String },

    #[error(transparent)]
    Io(#[from] crate::path_io::PathIoError),
}

impl RegistryError {
    pub(super) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        RegistryError::Io(crate::path_io::PathIoError::new(
            action,
            path.to_path_buf(),
            source,
        ))
    }

    pub(super) fn layout(path: &std::path::Path, message: impl Into<String>) -> Self {
        RegistryError::Layout {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}
