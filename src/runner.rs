//! The one way akpkg runs another program whose output goes to a log (PEP 517 hooks, `go
//! build`, `npm ci` and the web build), modelled on pypa/build's `run_subprocess` and
//! cargo-util's `ProcessError`: stdin closed, stdout and stderr into the log, and a failure
//! that names the command, its exit status or signal by name, and the log's last lines with
//! its path.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

/// Lines of the log a failure shows.
pub const TAIL_LINES: usize = 40;

/// A command that could not run or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot run `{command}`: {reason}")]
    Spawn { command: String, reason: String },

    #[error("`{command}` failed ({status}); the last {lines} lines of {}:\n{tail}", log.display())]
    Failed {
        command: String,
        /// `exit status 1`, `signal SIGKILL`.
        status: String,
        log: PathBuf,
        lines: usize,
        tail: String,
    },

    #[error(transparent)]
    Io(#[from] crate::path_io::PathIoError),
}

/// Run `command` (shown in messages as `shown`) with its output appended to `log` (created
/// when missing, emptied first unless `append`); its exit status, whatever it is.
pub fn run_into_log(
    mut command: Command,
    shown: &str,
    log: &Path,
    append: bool,
) -> Result<ExitStatus, ProcessError> {
    let file = fs_err::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(log)
        .map_err(crate::path_io::io::<ProcessError>(
            "cannot open the log",
            log,
        ))?;
    let copy = file
        .try_clone()
        .map_err(crate::path_io::io::<ProcessError>(
            "cannot open the log",
            log,
        ))?;
    tracing::info!(command = shown, log = %log.display(), "running");
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(file.into_parts().0))
        .stderr(Stdio::from(copy.into_parts().0))
        .status()
        .map_err(|error| ProcessError::Spawn {
            command: shown.to_string(),
            reason: error.to_string(),
        })
}

/// The java command that runs a generator jar: `JAVA`, else `java` on PATH, checked by running
/// `-version`; or the command and why it cannot run.
pub fn find_java() -> Result<PathBuf, (String, String)> {
    let command = std::env::var_os("JAVA").map_or_else(|| PathBuf::from("java"), PathBuf::from);
    let result = Command::new(&command)
        .arg("-version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let shown = command.display().to_string();
    match result {
        Ok(status) if status.success() => Ok(command),
        Ok(status) => Err((shown, format!("`-version` exited with {status}"))),
        Err(error) => Err((shown, error.to_string())),
    }
}

/// [`run_into_log`], and a [`ProcessError::Failed`] unless it succeeded.
pub fn run_logged(
    command: Command,
    shown: &str,
    log: &Path,
    append: bool,
) -> Result<(), ProcessError> {
    let status = run_into_log(command, shown, log, append)?;
    if status.success() {
        return Ok(());
    }
    let (lines, tail) = tail(log, TAIL_LINES);
    Err(ProcessError::Failed {
        command: shown.to_string(),
        status: describe(status),
        log: log.to_path_buf(),
        lines,
        tail,
    })
}

/// `exit status N`, or `signal SIGNAME` for a process a signal ended.
pub fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("signal {}", signal_name(signal)),
        (None, None) => "an unknown status".to_string(),
    }
}

fn signal_name(signal: i32) -> String {
    let name = match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => return format!("{signal}"),
    };
    name.to_string()
}

/// The last `count` lines of a log: how many, and the lines.
pub fn tail(log: &Path, count: usize) -> (usize, String) {
    let text = fs_err::read(log)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    tail_of(&text, count)
}

/// The last `count` lines of a text: how many, and the lines.
pub fn tail_of(text: &str, count: usize) -> (usize, String) {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(count);
    (lines.len() - start, lines[start..].join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[test]
    fn a_failure_names_the_command_its_status_and_the_logs_last_lines() {
        let directory = tempfile::tempdir().unwrap();
        let log = directory.path().join("build.log");
        run_logged(shell("echo first"), "first", &log, false).unwrap();
        let error = run_logged(
            shell("for i in $(seq 1 50); do echo line $i; done; echo oops >&2; exit 3"),
            "make all",
            &log,
            true,
        )
        .unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with("`make all` failed (exit status 3); the last 40 lines of "),
            "{message}"
        );
        assert!(message.ends_with("line 50\noops"), "{message}");
        assert!(fs_err::read_to_string(&log).unwrap().starts_with("first\n"));
        let killed = run_logged(shell("kill -KILL $$"), "sleepy", &log, true).unwrap_err();
        assert!(killed.to_string().contains("(signal SIGKILL)"), "{killed}");
        let missing = run_logged(
            Command::new("/nonexistent/akpkg-tool"),
            "akpkg-tool",
            &log,
            true,
        )
        .unwrap_err();
        assert!(
            matches!(missing, ProcessError::Spawn { .. })
                && missing.to_string().starts_with("cannot run `akpkg-tool`: "),
            "{missing}"
        );
    }
}
