//! Byte-compile installed modules in one deterministic pass.
//!
//! Sources are sorted and dealt into one shard per core; each shard is compiled by the target
//! interpreter with `py_compile` into unchecked-hash pycs (PEP 552): they carry the source's
//! hash instead of its modification time, and the interpreter does not re-check them at import,
//! so nothing in them depends on when they were built. The path recorded in the code objects is
//! the file's path relative to the prefix (`lib/python3.13/site-packages/pkg/mod.py`), so it
//! depends neither on where the prefix is staged nor on where it will live: CPython replaces
//! `co_filename` with the real source path when it loads a pyc (`_imp._fix_co_filename`), so
//! tracebacks still name the file where it is.
//!
//! Such a pyc depends only on the source's bytes, the recorded path and the interpreter, so
//! compiled files are kept in `CACHE/bytecode-v1/` under a key of those three: a warm install
//! copies them instead of compiling again, into any prefix path.

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

/// One module to compile: where it is now, the path its code objects record (relative to the
/// prefix), and its RECORD hash.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CompileJob {
    pub source: PathBuf,
    pub recorded_path: PathBuf,
    pub source_hash: String,
}

/// Where compiled files are kept, and what identifies the interpreter that made them.
#[derive(Debug)]
pub struct BytecodeCache {
    pub directory: PathBuf,
    /// The interpreter's path and full version: a different build makes different pycs.
    pub interpreter: String,
    /// `cpython-313`: the middle of `__pycache__/<module>.cpython-313.pyc`.
    pub cache_tag: String,
    /// The prefix the jobs' sources are in: restored pycs are written through it.
    pub prefix: crate::contained::Contained,
}

impl BytecodeCache {
    fn entry(&self, job: &CompileJob) -> PathBuf {
        let identity = format!(
            "{}\0{}\0{}",
            self.interpreter,
            job.source_hash,
            job.recorded_path.display()
        );
        let key = crate::digest::sha256_hex(identity.as_bytes());
        self.directory.join(&key[..2]).join(format!("{key}.pyc"))
    }

    /// `dir/__pycache__/<stem>.<tag>.pyc`, as `importlib.util.cache_from_source` names it.
    fn pyc_path(&self, source: &Path) -> Option<PathBuf> {
        let stem = source.file_stem()?.to_str()?;
        Some(
            source
                .parent()?
                .join("__pycache__")
                .join(format!("{stem}.{}.pyc", self.cache_tag)),
        )
    }

    /// Put a cached pyc in place, if there is one.
    fn restore(&self, job: &CompileJob) -> Option<PathBuf> {
        let cached = self.entry(job);
        let pyc = self.pyc_path(&job.source)?;
        if !cached.is_file() {
            return None;
        }
        let relative = pyc.strip_prefix(self.prefix.root()).ok()?;
        let place = || {
            self.prefix
                .place(&cached, relative, crate::contained::LinkMode::Copy)
        };
        // The common case first: one copy. Only when that fails is the directory made (once per
        // `__pycache__`, not once per file) or a shipped pyc removed.
        match place() {
            Ok(()) => {}
            // A pyc the wheel shipped may be a hard link into the unpack cache: replace it,
            // never write through it.
            Err(crate::contained::ContainedError::Exists { .. }) => {
                self.prefix.remove_file(relative).ok()?;
                place().ok()?;
            }
            Err(_) => {
                self.prefix.create_dir_all(relative.parent()?).ok()?;
                place().ok()?;
            }
        }
        Some(pyc)
    }

    /// Keep a freshly compiled pyc; best effort, since a miss only costs a compile later.
    fn store(&self, job: &CompileJob, pyc: &Path) {
        let cached = self.entry(job);
        let stored =
            fs_err::read(pyc).and_then(|bytes| crate::cache::publish_bytes(&cached, &bytes));
        if let Err(error) = stored {
            tracing::debug!(
                "cannot keep {} in the bytecode cache: {error}",
                pyc.display()
            );
        }
    }
}

#[derive(Deserialize)]
struct CompileReport {
    compiled: Vec<(PathBuf, PathBuf)>,
    failed: Vec<(PathBuf, String)>,
}

/// Compile every job (or restore it from `cache`); returns `(source, pyc)` pairs of what was
/// written.
pub fn compile_all(
    python: &Path,
    jobs: Vec<CompileJob>,
    cache: Option<&BytecodeCache>,
) -> Result<Vec<(PathBuf, PathBuf)>, InstallError> {
    let mut restored = Vec::new();
    let mut jobs: Vec<CompileJob> = match cache {
        None => jobs,
        Some(cache) => {
            let (hits, misses): (Vec<_>, Vec<_>) = jobs
                .into_par_iter()
                .map(|job| match cache.restore(&job) {
                    Some(pyc) => Ok((job.source, pyc)),
                    None => Err(job),
                })
                .partition(Result::is_ok);
            restored.extend(hits.into_iter().filter_map(Result::ok));
            misses.into_iter().filter_map(Result::err).collect()
        }
    };
    tracing::debug!(
        restored = restored.len(),
        to_compile = jobs.len(),
        "bytecode"
    );
    jobs.sort();
    if jobs.is_empty() {
        restored.sort();
        return Ok(restored);
    }
    // Deal the sorted jobs round-robin, so a large package does not load one shard only; each
    // shard's output is still independent of how the others run.
    let shard_count = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(jobs.len());
    let mut shards: Vec<Vec<CompileJob>> = vec![Vec::new(); shard_count];
    for (index, job) in jobs.into_iter().enumerate() {
        shards[index % shard_count].push(job);
    }
    let reports = shards
        .par_iter()
        .map(|shard| compile_shard(python, shard))
        .collect::<Result<Vec<_>, _>>()?;
    let mut compiled = restored;
    for report in reports {
        for (source, error) in &report.failed {
            tracing::debug!(source = %source.display(), "not byte-compiled: {error}");
        }
        compiled.extend(report.compiled);
    }
    if let Some(cache) = cache {
        let by_source: std::collections::HashMap<&Path, &CompileJob> = shards
            .iter()
            .flatten()
            .map(|job| (job.source.as_path(), job))
            .collect();
        compiled.par_iter().for_each(|(source, pyc)| {
            if let Some(job) = by_source.get(source.as_path()) {
                cache.store(job, pyc);
            }
        });
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
        .map(|job| (job.source.as_path(), job.recorded_path.as_path()))
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
