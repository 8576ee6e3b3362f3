//! The closure stage: the prefix made to run beyond the machine that built it.
//!
//! 1. With `--self-contained`, the interpreter is copied in ([`copied_interpreter`]): the prefix
//!    becomes a CPython installation of its own, with no `pyvenv.cfg`.
//! 2. Every ELF file's needed libraries are resolved; RUNPATH entries that leave the prefix
//!    are dropped, and with `--self-contained` every library outside the C library's family is
//!    grafted in ([`graft`]).
//! 3. The RECORD rows of the files rewritten are updated, so `verify` still holds.
//! 4. With `--self-contained`, the build interpreter's prefix is taken out of the copied files
//!    and the standard library is byte-compiled like the installed modules.
//!
//! [`build_paths`] is the check that follows: no file names a path of the build machine.

pub mod build_paths;
pub mod copied_interpreter;
pub mod elf;
mod error;
pub mod graft;
mod patchelf;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use copied_interpreter::InterpreterRecord;
pub use error::ClosureError;
pub use graft::{GRAFTED, GraftedLibrary, SYSTEM_LIBRARIES};
pub use patchelf::{ElfEdit, Patchelf};

/// How far the prefix goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closure {
    /// The target provides the interpreter and the libraries the native audit lists.
    SystemLibraries,
    /// The prefix carries its interpreter and every library but the C library's family.
    SelfContained,
}

#[derive(Debug, Clone)]
pub struct ClosureOptions<'a> {
    pub closure: Closure,
    /// The interpreter the prefix was installed for (copied with `SelfContained`).
    pub python: &'a Path,
    /// `lib/python3.X/site-packages`, relative to the prefix: its RECORDs are kept true.
    pub site_packages: &'a Path,
    pub compile: bool,
    pub cache: &'a crate::cache::Cache,
}

/// A grafted library and the Debian package it came from.
#[derive(Debug, Clone, Serialize)]
pub struct GraftedRecord {
    pub soname: String,
    pub file: String,
    pub sha256: String,
    pub package: Option<String>,
    pub version: Option<String>,
}

/// What the stage did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClosureReport {
    pub self_contained: bool,
    pub interpreter: Option<InterpreterRecord>,
    pub grafted: Vec<GraftedRecord>,
    /// ELF files of the prefix rewritten (grafted copies not counted).
    pub patched: usize,
    pub runpaths_dropped: usize,
}

/// Run the stage on the prefix at `root`.
pub fn close(root: &Path, options: &ClosureOptions<'_>) -> Result<ClosureReport, ClosureError> {
    let self_contained = options.closure == Closure::SelfContained;
    // 1.
    let interpreter = if self_contained {
        let files = copied_interpreter::probe(options.python)?;
        copied_interpreter::copy(&files, root)?;
        Some(files)
    } else {
        None
    };
    // 2.
    let files = elf::prefix_elf_files(root)?;
    let plan = graft::plan(root, &files, self_contained)?;
    let grafted = if plan.is_empty() {
        graft::GraftReport::default()
    } else {
        graft::apply(root, plan, &Patchelf::find()?)?
    };
    // 3.
    let in_site_packages: Vec<PathBuf> = grafted
        .patched
        .iter()
        .filter(|relative| relative.starts_with(options.site_packages))
        .cloned()
        .collect();
    crate::install::update_records(root, options.site_packages, &in_site_packages)?;
    // 4.
    let interpreter = match interpreter {
        Some(files) => Some(finish_interpreter(&files, root, options)?),
        None => None,
    };
    Ok(ClosureReport {
        self_contained,
        interpreter,
        grafted: with_packages(&grafted.grafted),
        patched: grafted.patched.len(),
        runpaths_dropped: grafted.runpaths_dropped,
    })
}

fn finish_interpreter(
    files: &copied_interpreter::InterpreterFiles,
    root: &Path,
    options: &ClosureOptions<'_>,
) -> Result<InterpreterRecord, ClosureError> {
    let copied = copied_interpreter::copied_files(files, root);
    copied_interpreter::rewrite_build_prefix(files, root, &copied)?;
    let compiled = if options.compile {
        copied_interpreter::compile_standard_library(
            files,
            root,
            &copied,
            options.python,
            options.cache,
        )?
    } else {
        0
    };
    let executable = copied[0].clone();
    let sha256 = crate::digest::sha256_hex_of_file(&root.join(&executable))
        .map_err(ClosureError::io("cannot read", &root.join(&executable)))?;
    Ok(InterpreterRecord {
        implementation: "CPython",
        version: files.version.clone(),
        executable: executable.display().to_string(),
        library: files
            .library
            .as_ref()
            .and_then(|library| library.file_name())
            .map(|name| format!("lib/{}", name.to_string_lossy())),
        sha256,
        compiled,
    })
}

/// The grafted libraries with the Debian packages that hold their originals.
fn with_packages(grafted: &[GraftedLibrary]) -> Vec<GraftedRecord> {
    let sources: Vec<&PathBuf> = grafted.iter().map(|library| &library.source).collect();
    let packages = elf::packages_of(&sources);
    grafted
        .iter()
        .map(|library| {
            let package = packages.get(&library.source);
            GraftedRecord {
                soname: library.soname.clone(),
                file: library.file.display().to_string(),
                sha256: library.sha256.clone(),
                package: package.map(|(name, _)| name.clone()),
                version: package.map(|(_, version)| version.clone()),
            }
        })
        .collect()
}
