//! Errors of the `server` stage: each names the file, module or command and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Io(#[from] crate::path_io::PathIoError),

    #[error(
        "the server needs the go command, and `{command}` cannot be run ({detail}). Install Go {required} or newer and put it on PATH, or give its path with --go"
    )]
    NoGo {
        command: String,
        required: String,
        detail: String,
    },

    #[error(
        "{command} is {found}, older than go {required}, which the server's go.mod requires (its `go` line). Install Go {required} or newer, or give its path with --go"
    )]
    GoTooOld {
        command: String,
        found: String,
        required: String,
    },

    #[error(
        "the server is built with cgo (CGO_ENABLED=1, as upstream builds it), but its C compiler `{compiler}` is not on PATH. Install one (Debian: apt-get install build-essential) or name it with CC"
    )]
    NoCCompiler { compiler: String },

    #[error(
        "{path}: this go.sum (sha256 {actual}) is not the one akpkg's lock pins (sha256 {expected}); lock again (`akpkg lock --source …`) so that its modules are pinned"
    )]
    GoSumChanged {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    #[error("the recipe's [server] {field} `{value}` is not valid: {why}")]
    Recipe {
        field: &'static str,
        value: String,
        why: &'static str,
    },

    /// `go build` could not run or failed (the command, its status, the log's last lines).
    #[error(transparent)]
    Build(#[from] crate::runner::ProcessError),

    #[error("cannot run `{command}`: {detail}")]
    Command { command: String, detail: String },

    #[error(
        "{what} is not what akpkg's lock pins for the generated Go API client (locked {locked}, here {actual}); lock again (`akpkg lock --recipe … --source …`)"
    )]
    ApiClientChanged {
        what: String,
        locked: String,
        actual: String,
    },

    #[error("the Go API client's generator wrote no .go file into {}", directory.display())]
    ApiClientEmpty { directory: PathBuf },

    #[error(
        "the recipe generates its Go API client ([server.api-client]), but akpkg's lock has no [go.api-client]; lock again with --recipe, or take the published module with --go-api-client locked"
    )]
    ApiClientNotLocked,

    #[error(
        "akpkg's lock was made for a generated Go API client: it pins no go.sum line of `{module}`, which --go-api-client locked needs; lock again with `akpkg lock --go-api-client locked`, or leave --go-api-client out"
    )]
    ApiClientModuleNotLocked { module: String },

    #[error(
        "the recipe generates its Go API client with openapi-generator, which needs Java, and `{command}` cannot be run ({detail}). Install a Java runtime (Debian: apt-get install default-jre-headless), name it with JAVA, or take the published module (`--go-api-client locked`)"
    )]
    NoJava { command: String, detail: String },

    #[error(transparent)]
    Contained(#[from] crate::contained::ContainedError),
}

impl ServerError {
    pub(crate) fn io(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> ServerError {
        crate::path_io::io(action, path)
    }
}
