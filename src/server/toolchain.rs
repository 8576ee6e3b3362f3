//! The go command and the C compiler the server is built with, checked before anything runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::ServerError;

/// A go command that is new enough, and what it builds for.
#[derive(Debug, Clone)]
pub struct Toolchain {
    pub command: PathBuf,
    /// `go1.26.8`.
    pub version: String,
    pub goos: String,
    pub goarch: String,
    /// The C compiler's first `--version` line, when cgo is on.
    pub c_compiler: Option<String>,
    /// `go env GOROOT`: where its gofmt is.
    pub goroot: PathBuf,
}

impl Toolchain {
    /// The toolchain's own gofmt.
    pub fn gofmt(&self) -> PathBuf {
        self.goroot.join("bin").join("gofmt")
    }
}

/// Find `go` (or `command`) and check it against go.mod's `go` line; with cgo, find the C
/// compiler too.
pub fn find(command: Option<&Path>, required: &str, cgo: bool) -> Result<Toolchain, ServerError> {
    let command = command.map_or_else(|| PathBuf::from("go"), Path::to_path_buf);
    let output = Command::new(&command)
        .args([
            "env",
            "-json",
            "GOVERSION",
            "GOOS",
            "GOARCH",
            "CC",
            "GOROOT",
        ])
        .env("GOTOOLCHAIN", "local")
        .env("GOENV", "off")
        .output()
        .map_err(|error| ServerError::NoGo {
            command: command.display().to_string(),
            required: required.to_string(),
            detail: error.to_string(),
        })?;
    let values: BTreeMap<String, String> = serde_json::from_slice(&output.stdout)
        .ok()
        .filter(|_| output.status.success())
        .ok_or_else(|| ServerError::NoGo {
            command: command.display().to_string(),
            required: required.to_string(),
            detail: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })?;
    let value = |key: &str| values.get(key).cloned().unwrap_or_default();
    let version = value("GOVERSION");
    if !is_at_least(&version, required) {
        return Err(ServerError::GoTooOld {
            command: command.display().to_string(),
            found: version,
            required: required.to_string(),
        });
    }
    let c_compiler = if cgo {
        Some(c_compiler_identity(&value("CC"))?)
    } else {
        None
    };
    Ok(Toolchain {
        command,
        version,
        goos: value("GOOS"),
        goarch: value("GOARCH"),
        c_compiler,
        goroot: PathBuf::from(value("GOROOT")),
    })
}

/// The compiler's first `--version` line: it goes into the build key, since cgo's objects
/// depend on it.
fn c_compiler_identity(compiler: &str) -> Result<String, ServerError> {
    let program = compiler.split_whitespace().next().unwrap_or("gcc");
    let missing = || ServerError::NoCCompiler {
        compiler: program.to_string(),
    };
    let output = Command::new(program)
        .arg("--version")
        .output()
        .map_err(|_| missing())?;
    if !output.status.success() {
        return Err(missing());
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string())
}

/// Whether `go1.26.8` (GOVERSION) is at least `1.25.5` (a go.mod `go` line). Release
/// candidates (`1.26rc1`) count as their release's first: the go command compares the same way
/// for this purpose.
pub fn is_at_least(goversion: &str, required: &str) -> bool {
    let numbers = |text: &str| -> Vec<u64> {
        text.split('.')
            .map(|part| {
                let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().unwrap_or(0)
            })
            .collect()
    };
    let found = goversion
        .split_whitespace()
        .find_map(|word| word.strip_prefix("go"))
        .unwrap_or_default();
    if found.is_empty() {
        return false;
    }
    let (mut found, mut required) = (numbers(found), numbers(required));
    let length = found.len().max(required.len());
    found.resize(length, 0);
    required.resize(length, 0);
    found >= required
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_versions_compare_as_numbers() {
        assert!(is_at_least("go1.26.8", "1.25.5"));
        assert!(is_at_least("go1.25.5", "1.25.5"));
        assert!(is_at_least("go1.25.10", "1.25.9"));
        assert!(is_at_least("go1.26", "1.25.5"));
        assert!(!is_at_least("go1.25.4", "1.25.5"));
        assert!(!is_at_least("go1.9.7", "1.25"));
        assert!(!is_at_least("", "1.25"));
        assert!(is_at_least("devel go1.27-abcdef", "1.26"));
    }

    #[test]
    fn a_missing_go_names_what_to_install() {
        let error = find(Some(Path::new("/nonexistent/go")), "1.25.5", false).unwrap_err();
        insta::assert_snapshot!(error.to_string(), @"the server needs the go command, and `/nonexistent/go` cannot be run (No such file or directory (os error 2)). Install Go 1.25.5 or newer and put it on PATH, or give its path with --go");
    }
}
