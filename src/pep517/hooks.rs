//! Running one PEP 517 hook in a subprocess, through the embedded `hook_runner.py`.
//!
//! The hook runs with the build environment's interpreter, in the source tree, with `-s`
//! (no user site) and `-P` (the runner's own directory is not put on `sys.path`, so the source
//! tree is importable only through `backend-path`), and with the scrubbed environment the caller
//! gives. Input and output go through JSON files; the process's own output goes to the log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use super::BuildError;

const HOOK_RUNNER: &str = include_str!("hook_runner.py");

/// What a hook call needs.
pub struct HookCall<'a> {
    pub python: &'a Path,
    pub source: &'a Path,
    pub backend: &'a str,
    pub backend_path: &'a [String],
    pub config_settings: &'a BTreeMap<String, serde_json::Value>,
    pub environment: &'a [(String, String)],
    /// Appended to, never truncated: one log per build.
    pub log: &'a Path,
}

/// How a hook ended, short of the process itself failing to start.
#[derive(Debug)]
pub enum HookOutcome {
    Returned(serde_json::Value),
    Unsupported,
    /// The backend could not be imported, or the hook raised: kind and message.
    Failed {
        message: String,
    },
}

#[derive(Deserialize)]
struct Output {
    #[serde(rename = "return")]
    value: Option<serde_json::Value>,
    #[serde(default)]
    unsupported: bool,
    error: Option<String>,
    message: Option<String>,
    traceback: Option<String>,
}

/// Call `hook` (with `directory` for build hooks) and report how it ended.
pub fn call(
    request: &HookCall<'_>,
    hook: &str,
    directory: Option<&Path>,
) -> Result<HookOutcome, BuildError> {
    let control = crate::path_io::scratch_directory("akpkg-hook-")?;
    let runner = control.path().join("hook_runner.py");
    fs_err::write(&runner, HOOK_RUNNER).map_err(BuildError::io("cannot write", &runner))?;
    let input = serde_json::json!({
        "backend": request.backend,
        "backend_path": request.backend_path,
        "config_settings": request.config_settings,
        "directory": directory.map(|path| path.display().to_string()),
    });
    let input_path = control.path().join("input.json");
    fs_err::write(&input_path, input.to_string())
        .map_err(BuildError::io("cannot write", &input_path))?;

    let mut command = Command::new(request.python);
    command
        .arg("-s")
        .arg("-P")
        .arg(&runner)
        .arg(hook)
        .arg(control.path())
        .current_dir(request.source)
        .env_clear()
        .envs(request.environment.iter().map(|(key, value)| (key, value)));
    // A hook that fails still answers (output.json says how), so its status is read here.
    let status = crate::runner::run_into_log(
        command,
        &format!("{} hook_runner.py {hook}", request.python.display()),
        request.log,
        true,
    )?;

    let output_path = control.path().join("output.json");
    let output: Output = match fs_err::read_to_string(&output_path) {
        Ok(text) => serde_json::from_str(&text).map_err(|error| {
            BuildError::Setup(format!(
                "{}: unreadable hook output: {error}",
                output_path.display()
            ))
        })?,
        Err(_) => {
            return Ok(HookOutcome::Failed {
                message: format!("the hook process ended ({status}) without an answer"),
            });
        }
    };
    if output.unsupported {
        return Ok(HookOutcome::Unsupported);
    }
    if let Some(kind) = output.error {
        // The traceback belongs in the log, beside the backend's own output.
        if let Some(traceback) = &output.traceback {
            let _ = append(request.log, traceback);
        }
        let message = output.message.unwrap_or_default();
        let message = if kind == "backend-unavailable" {
            format!("cannot import the backend: {message}")
        } else {
            message
        };
        return Ok(HookOutcome::Failed { message });
    }
    Ok(HookOutcome::Returned(
        output.value.unwrap_or(serde_json::Value::Null),
    ))
}

fn append(log: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = fs_err::OpenOptions::new().append(true).open(log)?;
    file.write_all(text.as_bytes())
}

/// A log file's path for messages.
pub fn log_path(directory: &Path, name: &str, key: &str) -> PathBuf {
    directory.join(format!("{name}-{}.log", &key[..key.len().min(16)]))
}
