//! Byte-compile installed modules in one deterministic pass.
//!
//! Sources are sorted and split into one shard per core; each shard is compiled by the target
//! interpreter with `py_compile` into unchecked-hash pycs (PEP 552: "the pyc is not checked
//! against the source", so no timestamp is embedded), with the file's final path as the path
//! recorded in the code objects.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rayon::prelude::*;
use serde::Deserialize;

use super::InstallError;

const COMPILER: &str = r#"
import json, py_compile, sys
from py_compile import PycInvalidationMode
results = {"compiled": [], "failed": []}
for source, display in json.load(sys.stdin):
    try:
        pyc = py_compile.compile(source, dfile=display, doraise=True,
                                 invalidation_mode=PycInvalidationMode.UNCHECKED_HASH)
        results["compiled"].append([source, pyc])
    except (py_compile.PyCompileError, SyntaxError, ValueError) as error:
        # Like pip: a module that does not compile (Python 2 leftovers) stays source-only.
        results["failed"].append([source, str(error).strip()])
json.dump(results, sys.stdout)
"#;

/// One module to compile: where it is now, and where it will be when used.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CompileJob {
    pub source: PathBuf,
    pub final_path: PathBuf,
}

#[derive(Deserialize)]
struct CompileReport {
    compiled: Vec<(PathBuf, PathBuf)>,
    failed: Vec<(PathBuf, String)>,
}

/// Compile every job; returns `(source, pyc)` pairs of what was written.
pub fn compile_all(
    python: &Path,
    mut jobs: Vec<CompileJob>,
) -> Result<Vec<(PathBuf, PathBuf)>, InstallError> {
    jobs.sort();
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let shards = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(jobs.len());
    let shard_size = jobs.len().div_ceil(shards);
    let reports = jobs
        .par_chunks(shard_size)
        .map(|shard| compile_shard(python, shard))
        .collect::<Result<Vec<_>, _>>()?;
    let mut compiled = Vec::with_capacity(jobs.len());
    for report in reports {
        for (source, error) in &report.failed {
            tracing::debug!(source = %source.display(), "not byte-compiled: {error}");
        }
        compiled.extend(report.compiled);
    }
    compiled.sort();
    Ok(compiled)
}

fn compile_shard(python: &Path, shard: &[CompileJob]) -> Result<CompileReport, InstallError> {
    let failure = |message: String| InstallError::Compile {
        python: python.to_path_buf(),
        message,
    };
    let input: Vec<(&Path, &Path)> = shard
        .iter()
        .map(|job| (job.source.as_path(), job.final_path.as_path()))
        .collect();
    let input = serde_json::to_vec(&input).map_err(|error| failure(error.to_string()))?;
    let mut child = Command::new(python)
        .args(["-I", "-S", "-c", COMPILER])
        .env("PYTHONHASHSEED", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| failure(error.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&input)
            .map_err(|error| failure(error.to_string()))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|error| failure(error.to_string()))?;
    if !output.status.success() {
        return Err(failure(format!(
            "{}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|error| failure(format!("unreadable report: {error}")))
}
