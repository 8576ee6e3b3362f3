//! `akpkg verify`: a prefix is what its RECORDs say, and it imports.
//!
//! 1. every file a RECORD lists with a hash exists and hashes to it (in parallel);
//! 2. one interpreter of the prefix loads the recipe's Django settings (`django.setup()` needs
//!    no database) and imports the top-level modules of every installed distribution
//!    (`top_level.txt`, else the RECORD's top-level names).
//!
//! Every failure is reported with its distribution.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use rayon::prelude::*;
use serde::Deserialize;
use sha2::Digest;

use super::AssembleError;

const VERIFY_SCRIPT: &str = include_str!("verify.py");

/// What `akpkg verify` found in a prefix that passed.
pub struct VerifiedPrefix {
    pub report: VerifyReport,
    pub native: super::NativeAudit,
    /// The manifest's word when the prefix was built from a source that is not the recipe's pin.
    pub unverified_source: Option<String>,
}

/// `akpkg verify` of an assembled prefix: every file against its RECORD, the imports and Django
/// (unless `files_only`), the Go server's bytes against the manifest, every native library
/// resolved (and, when self-contained, carried), and no file naming the prefix's own path.
/// Every problem is listed, not only the first.
pub fn verify_assembled(prefix: &Path, files_only: bool) -> Result<VerifiedPrefix, AssembleError> {
    let settings = super::manifest_settings(prefix)?;
    let mut report = verify_prefix(
        prefix,
        settings.settings_module.as_deref(),
        &settings.verify_environment,
        files_only,
    )?;
    if let Some(pin) = &settings.server {
        report.failures.extend(check_server(prefix, pin));
    }
    // What the native code needs from the machine: every library must resolve, and a
    // self-contained prefix needs nothing but the C library's family.
    let native = super::native::audit(prefix)?;
    for (soname, needed_by) in &native.unresolved {
        report.failures.push(format!(
            "{soname}, which {} needs, is neither in the prefix nor on this machine",
            needed_by.join(", ")
        ));
    }
    if settings.native.self_contained {
        report.failures.extend(super::native::not_carried(&native));
    }
    // Nothing may depend on where the prefix is.
    let here = std::path::absolute(prefix).unwrap_or_else(|_| prefix.to_path_buf());
    let findings = crate::closure::build_paths::find(
        prefix,
        &[crate::closure::build_paths::BuildPath {
            path: here,
            what: "the prefix's own path: the prefix must not depend on it",
            allowed_in: Vec::new(),
        }],
    )?;
    report
        .failures
        .extend(findings.iter().map(ToString::to_string));
    if !report.failures.is_empty() {
        return Err(AssembleError::PrefixFailedVerification {
            prefix: prefix.to_path_buf(),
            problems: match report.failures.len() {
                1 => "1 problem".to_string(),
                count => format!("{count} problems"),
            },
            failures: report.failures.join("\n"),
        });
    }
    let unverified_source = settings.source.filter(|source| !source.verified).map(|source| {
        format!(
            "built from an unverified source: tree {}, where the recipe pins {} (assembled with --allow-unverified-source)",
            source.tree, source.recipe_tree,
        )
    });
    Ok(VerifiedPrefix {
        report,
        native,
        unverified_source,
    })
}

/// What verification found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub distributions: usize,
    pub files: usize,
    pub modules: usize,
    /// Django apps loaded, when a settings module was given.
    pub django_apps: Option<usize>,
    /// One line per failure, naming the distribution.
    pub failures: Vec<String>,
    /// The imports were not run again: they passed on this machine for the same inputs and
    /// the same files.
    pub imports_proven_before: bool,
}

#[derive(Deserialize)]
struct ScriptFailure {
    distribution: String,
    module: String,
    error: String,
}

#[derive(Deserialize)]
struct ScriptReport {
    failures: Vec<ScriptFailure>,
    apps: Option<usize>,
    imported: usize,
}

/// An installed distribution: its `.dist-info` and what its RECORD lists.
struct Installed {
    name: String,
    rows: Vec<crate::install::RecordEntry>,
    top_level: Vec<String>,
}

/// `lib/python3.X/site-packages` of a prefix.
pub fn site_packages(prefix: &Path) -> Result<PathBuf, AssembleError> {
    let lib = prefix.join("lib");
    let entries = fs_err::read_dir(&lib).map_err(AssembleError::io("cannot read", &lib))?;
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("site-packages"))
        .find(|path| path.is_dir())
        .ok_or_else(|| {
            AssembleError::Verify(format!(
                "{} has no lib/python3.X/site-packages",
                prefix.display()
            ))
        })
}

fn installed_distributions(site_packages: &Path) -> Result<Vec<Installed>, AssembleError> {
    let mut installed = Vec::new();
    let entries =
        fs_err::read_dir(site_packages).map_err(AssembleError::io("cannot read", site_packages))?;
    let mut directories: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "dist-info")
        })
        .collect();
    directories.sort();
    for dist_info in directories {
        let record = dist_info.join("RECORD");
        let bytes = crate::path_io::read_regular(&record)
            .map_err(AssembleError::io("cannot read", &record))?;
        let rows = crate::install::parse_record(&bytes)
            .map_err(|message| AssembleError::Verify(format!("{}: {message}", record.display())))?;
        let name = dist_info
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        // top_level.txt when there is one (some list names that were never installed), and
        // only names that exist here as a package or module.
        let top_level: Vec<String> =
            match fs_err::read_to_string(dist_info.join("top_level.txt")) {
                Ok(text) => text.lines().map(str::trim).map(str::to_string).collect(),
                Err(_) => top_level_from_record(&rows),
            }
            .into_iter()
            .filter(|name| is_identifier(name) && importable(site_packages, name))
            .collect();
        installed.push(Installed {
            name,
            rows,
            top_level,
        });
    }
    Ok(installed)
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || character == '_')
        && !name.starts_with(|character: char| character.is_ascii_digit())
}

/// A package directory, a module file or an extension module of that name.
fn importable(site_packages: &Path, name: &str) -> bool {
    site_packages.join(name).is_dir()
        || site_packages.join(format!("{name}.py")).is_file()
        || fs_err::read_dir(site_packages).is_ok_and(|entries| {
            entries.filter_map(Result::ok).any(|entry| {
                let file = entry.file_name().to_string_lossy().into_owned();
                file.starts_with(&format!("{name}.")) && file.ends_with(".so")
            })
        })
}

/// Importable top-level names among a RECORD's paths: packages and modules at the root of
/// site-packages (not metadata, data, scripts or `.pth` files).
fn top_level_from_record(rows: &[crate::install::RecordEntry]) -> Vec<String> {
    let mut names: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            let mut parts = row.path.split('/');
            let first = parts.next()?;
            let nested = parts.next().is_some();
            if first == ".."
                || first.ends_with(".dist-info")
                || first.ends_with(".data")
                || first == "__pycache__"
            {
                return None;
            }
            let name = if nested {
                first.to_string()
            } else if let Some(stem) = first.strip_suffix(".py") {
                stem.to_string()
            } else if first.ends_with(".so") {
                first.split('.').next()?.to_string()
            } else {
                return None;
            };
            is_identifier(&name).then_some(name)
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A RECORD path below site-packages, with `..` resolved; `None` if it leaves the prefix.
fn resolve(site_packages: &Path, prefix: &Path, path: &str) -> Option<PathBuf> {
    let mut resolved = site_packages.to_path_buf();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => resolved.push(part),
            Component::ParentDir => {
                resolved.pop();
            }
            Component::CurDir => {}
            _ => return None,
        }
    }
    resolved.starts_with(prefix).then_some(resolved)
}

/// Verify the prefix (see the module's documentation): its files, then, unless
/// `skip_imports`, its imports.
/// The manifest's record of the Go server: its path in the prefix and its sha256.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ServerPin {
    pub binary: String,
    pub sha256: crate::identity::Sha256,
}

/// The Go server's bytes against the manifest (no RECORD covers it): a problem, or `None`.
pub fn check_server(prefix: &Path, pin: &ServerPin) -> Option<String> {
    if !crate::contained::lexically_inside(Path::new(&pin.binary)) {
        return Some(format!(
            "the manifest names the server binary `{}`, which is not inside the prefix",
            pin.binary
        ));
    }
    let path = prefix.join(&pin.binary);
    match crate::identity::Sha256::of_regular_file(&path) {
        Ok(actual) if actual == pin.sha256 => None,
        Ok(actual) => Some(format!(
            "{}: sha256 {actual}, but the manifest records {}",
            path.display(),
            pin.sha256
        )),
        Err(error) => Some(format!("{}: {error}", path.display())),
    }
}

pub fn verify_prefix(
    prefix: &Path,
    settings_module: Option<&str>,
    environment: &BTreeMap<String, String>,
    skip_imports: bool,
) -> Result<VerifyReport, AssembleError> {
    let files = check_files(prefix)?;
    let mut report = files.report;
    if !skip_imports {
        check_imports(
            prefix,
            &files.installed,
            settings_module,
            environment,
            None,
            &mut report,
        )?;
    }
    Ok(report)
}

/// What the file check found, and what the import check needs of it.
pub struct FileCheck {
    pub report: VerifyReport,
    installed: Vec<Installed>,
    /// Every hashed RECORD row (distribution, path, hash) in order: equal digests mean the
    /// same files under the same names.
    pub contents: crate::identity::Sha256,
}

impl FileCheck {
    /// 2. of the module's documentation, for a prefix whose files were checked.
    ///
    /// `stand_in`: the build interpreter, to import with when the prefix's own `bin/python`
    /// leads nowhere on this machine (`--runtime-python` names the target's interpreter).
    pub fn check_imports(
        &self,
        prefix: &Path,
        settings_module: Option<&str>,
        environment: &BTreeMap<String, String>,
        stand_in: Option<&Path>,
        report: &mut VerifyReport,
    ) -> Result<(), AssembleError> {
        check_imports(
            prefix,
            &self.installed,
            settings_module,
            environment,
            stand_in,
            report,
        )
    }
}

/// 1. of the module's documentation.
pub fn check_files(prefix: &Path) -> Result<FileCheck, AssembleError> {
    let site_packages = site_packages(prefix)?;
    let installed = installed_distributions(&site_packages)?;
    let mut report = VerifyReport {
        distributions: installed.len(),
        ..VerifyReport::default()
    };
    // 1. The files against the RECORDs.
    let checks: Vec<(usize, Option<String>)> = installed
        .par_iter()
        .map(|distribution| {
            let mut checked = 0;
            let mut failures = Vec::new();
            for row in &distribution.rows {
                let expected = &row.hash;
                if expected.is_empty() {
                    continue;
                }
                checked += 1;
                let Some(path) = resolve(&site_packages, prefix, &row.path) else {
                    failures.push(format!(
                        "{}: RECORD lists {} outside the prefix",
                        distribution.name, row.path
                    ));
                    continue;
                };
                match crate::path_io::read_regular(&path) {
                    Ok(bytes) => {
                        let actual = crate::install::record_hash(&bytes);
                        if &actual != expected {
                            failures.push(format!(
                                "{}: {} has {actual}, its RECORD says {expected}",
                                distribution.name, row.path
                            ));
                        }
                    }
                    Err(error) => {
                        failures.push(format!("{}: {}: {error}", distribution.name, row.path))
                    }
                }
            }
            (checked, (!failures.is_empty()).then(|| failures.join("\n")))
        })
        .collect();
    for (checked, failure) in checks {
        report.files += checked;
        report.failures.extend(failure);
    }

    let mut rows = sha2::Sha256::new();
    for distribution in &installed {
        for row in distribution.rows.iter().filter(|row| !row.hash.is_empty()) {
            rows.update(format!(
                "{}\0{}\0{}\n",
                distribution.name, row.path, row.hash
            ));
        }
    }
    Ok(FileCheck {
        report,
        installed,
        contents: crate::identity::Sha256::from_digest(&rows.finalize().into()),
    })
}

/// The interpreter that runs the import check, and the prefix it sees: the prefix's own; or,
/// when its `bin/python` leads nowhere here and a stand-in is given, an environment in `work`
/// made of the stand-in interpreter (the build's, of the same major.minor) over the prefix's
/// own files, linked.
fn importing_interpreter(
    prefix: &Path,
    stand_in: Option<&Path>,
    work: &Path,
) -> Result<(PathBuf, PathBuf), AssembleError> {
    let own = prefix.join("bin/python");
    let Some(build_python) = stand_in.filter(|_| !own.exists()) else {
        return Ok((own, prefix.to_path_buf()));
    };
    let root = work.join("stand-in");
    let bin = root.join("bin");
    fs_err::create_dir_all(&bin).map_err(AssembleError::io("cannot create", &bin))?;
    for entry in fs_err::read_dir(prefix).map_err(AssembleError::io("cannot read", prefix))? {
        let entry = entry.map_err(AssembleError::io("cannot read", prefix))?;
        let name = entry.file_name();
        if name != "bin" && name != "pyvenv.cfg" {
            std::os::unix::fs::symlink(entry.path(), root.join(&name))
                .map_err(AssembleError::io("cannot link", &root.join(&name)))?;
        }
    }
    let python = bin.join("python");
    std::os::unix::fs::symlink(build_python, &python)
        .map_err(AssembleError::io("cannot link", &python))?;
    let config = root.join("pyvenv.cfg");
    let home = build_python.parent().unwrap_or(Path::new("/"));
    fs_err::write(
        &config,
        format!(
            "home = {}\ninclude-system-site-packages = false\n",
            home.display()
        ),
    )
    .map_err(AssembleError::io("cannot write", &config))?;
    Ok((python, root))
}

/// 2. of the module's documentation.
fn check_imports(
    prefix: &Path,
    installed: &[Installed],
    settings_module: Option<&str>,
    environment: &BTreeMap<String, String>,
    stand_in: Option<&Path>,
    report: &mut VerifyReport,
) -> Result<(), AssembleError> {
    // 2. Django and the imports, in the prefix's own interpreter. It runs in a directory of
    // its own, so a relative prefix is made absolute first.
    let prefix =
        &std::path::absolute(prefix).map_err(AssembleError::io("cannot resolve", prefix))?;
    let work = crate::path_io::scratch_directory("akpkg-verify-")?;
    let (python, prefix) = &importing_interpreter(prefix, stand_in, work.path())?;
    let script = work.path().join("verify.py");
    let request_path = work.path().join("request.json");
    let output_path = work.path().join("report.json");
    fs_err::write(&script, VERIFY_SCRIPT).map_err(AssembleError::io("cannot write", &script))?;
    let modules: BTreeMap<&str, &Vec<String>> = installed
        .iter()
        .map(|distribution| (distribution.name.as_str(), &distribution.top_level))
        .collect();
    let request = serde_json::json!({ "settings": settings_module, "modules": modules });
    fs_err::write(&request_path, request.to_string())
        .map_err(AssembleError::io("cannot write", &request_path))?;
    let output = Command::new(python)
        .arg("-s")
        .arg(&script)
        .arg(&request_path)
        .arg(&output_path)
        // The application tree (manage.py, lifecycle/) is importable, as bin/ak makes it.
        .env("PYTHONPATH", prefix)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(environment)
        .current_dir(work.path())
        .output()
        .map_err(AssembleError::io("cannot run", python))?;
    let text = fs_err::read_to_string(&output_path).map_err(|_| {
        AssembleError::Verify(format!(
            "{} could not run the import check ({}): {}",
            python.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    })?;
    let script_report: ScriptReport = serde_json::from_str(&text)
        .map_err(|error| AssembleError::Verify(format!("unreadable import report: {error}")))?;
    report.modules = script_report.imported;
    report.django_apps = script_report.apps;
    report
        .failures
        .extend(script_report.failures.into_iter().map(|failure| {
            format!(
                "{}: import {}: {}",
                failure.distribution, failure.module, failure.error
            )
        }));
    Ok(())
}
