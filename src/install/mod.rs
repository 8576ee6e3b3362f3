//! The `install` stage: install wheels into a prefix, following the binary distribution format's
//! "Installing a wheel 'distribution-1.0-py32-none-any.whl'" steps, for many wheels at once.
//!
//! Each wheel is unpacked once into the cache ([`archive`]), then for all wheels together:
//! plan where every file goes, refuse any path two wheels (or the prefix) already claim, place
//! the files in parallel, optionally byte-compile, and write the installer's metadata and a new
//! RECORD. Nothing is written into the prefix before every wheel has been checked.

mod archive;
mod compile;
mod error;
mod layout;
mod metadata;
mod record;
mod scripts;
mod shared;

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::identity::Sha256;
use std::path::{Component, Path, PathBuf};

use pep440_rs::Version;
use pep508_rs::PackageName;
use rayon::prelude::*;

pub use crate::contained::LinkMode;
use crate::contained::{Contained, Existing, FileMode};
pub use archive::{UnpackedWheel, unpack_cached};
pub use error::InstallError;
pub use layout::Layout;
pub use metadata::{EntryPoint, WheelInfo, parse_entry_points, parse_wheel_info};
pub use record::{RecordEntry, parse_record, record_hash};
pub use shared::{SharedFile, SharedFileRule, SharedFileRules};

/// Replace an installed file (`relative` to the prefix root) with `content` and mode `mode`,
/// and make every RECORD that lists it say so: a later step may overwrite what a wheel
/// installed (akpkg's `bin/ak` replaces authentik's console script), and verification must
/// still hold.
pub fn replace_installed_file(
    layout: &Layout,
    relative: &Path,
    content: &[u8],
    mode: u32,
) -> Result<(), InstallError> {
    let destination = layout.destination()?;
    destination.write(
        relative,
        content,
        FileMode::from_executable(mode & 0o111 != 0),
        Existing::Replace,
    )?;
    update_records(
        &layout.root,
        &layout.scheme.purelib,
        &[relative.to_path_buf()],
    )
}

/// Re-hash `changed` (paths relative to the prefix `root`, already rewritten in place by a
/// later step) in every RECORD of `site_packages` (relative to `root`) that lists them.
pub fn update_records(
    root: &Path,
    site_packages: &Path,
    changed: &[PathBuf],
) -> Result<(), InstallError> {
    if changed.is_empty() {
        return Ok(());
    }
    let destination = Contained::open(root)?;
    let targets: HashSet<PathBuf> = changed
        .iter()
        .map(|relative| resolve_dots(&root.join(relative)))
        .collect();
    let site_packages = root.join(site_packages);
    let Ok(entries) = fs_err::read_dir(&site_packages) else {
        return Ok(());
    };
    for entry in entries.filter_map(Result::ok) {
        let dist_info = entry.path();
        if dist_info
            .extension()
            .is_none_or(|extension| extension != "dist-info")
        {
            continue;
        }
        let record_path = dist_info.join("RECORD");
        let Ok(bytes) = fs_err::read(&record_path) else {
            continue;
        };
        let invalid = |message| InstallError::InvalidWheel {
            wheel: record_path.clone(),
            message,
        };
        let mut rows = parse_record(&bytes).map_err(invalid)?;
        let mut rewritten = false;
        for row in &mut rows {
            let file = resolve_dots(&site_packages.join(&row.path));
            if targets.contains(&file) {
                let content =
                    fs_err::read(&file).map_err(InstallError::io("cannot read", &file))?;
                row.hash = record_hash(&content);
                row.size = Some(content.len() as u64);
                rewritten = true;
            }
        }
        if rewritten {
            let name = format!(
                "{}/RECORD",
                dist_info
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default()
            );
            let text = write_record(rows, &name).map_err(invalid)?;
            let relative = record_path.strip_prefix(root).unwrap_or(&record_path);
            destination.write(relative, &text, FileMode::Regular, Existing::Replace)?;
        }
    }
    Ok(())
}

/// Byte-compile `sources` (paths relative to the prefix `root`) as installed modules are:
/// unchecked-hash pycs recording the relative path, restored from the bytecode cache when it
/// has them. For files no RECORD lists (a copied standard library); returns how many compiled.
pub fn compile_sources(
    root: &Path,
    python: &Path,
    python_full_version: &str,
    python_version: (u8, u8),
    sources: Vec<PathBuf>,
    cache: &crate::cache::Cache,
) -> Result<usize, InstallError> {
    let jobs = sources
        .into_par_iter()
        .map(|relative| {
            let source = root.join(&relative);
            let content =
                fs_err::read(&source).map_err(InstallError::io("cannot read", &source))?;
            Ok(CompileJob {
                source,
                recorded_path: relative,
                source_hash: record_hash(&content),
            })
        })
        .collect::<Result<Vec<_>, InstallError>>()?;
    let (major, minor) = python_version;
    let cache = compile::BytecodeCache {
        prefix: Contained::open(root)?,
        directory: cache.bucket(crate::cache::Bucket::Bytecode),
        interpreter: format!("{}\0{python_full_version}", python.display()),
        cache_tag: format!("cpython-{major}{minor}"),
    };
    Ok(compile::compile_all(python, jobs, Some(&cache))?.len())
}

use compile::CompileJob;
use record::write_record;
use scripts::InterpreterLine;

/// A wheel file to install.
#[derive(Debug, Clone)]
pub struct WheelToInstall {
    pub path: PathBuf,
    /// The wheel's file name, when `path` is not named after it (a content-addressed cache
    /// entry).
    pub filename: Option<String>,
    /// The file's sha256, when the caller knows it (from the lock); otherwise it is hashed.
    pub sha256: Option<crate::identity::Sha256>,
    /// Write `REQUESTED`: the user asked for this distribution, not only its dependents.
    pub requested: bool,
    /// PEP 610 `direct_url.json`, for distributions that did not come from an index.
    pub direct_url: Option<serde_json::Value>,
}

#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// The cache whose `unpacked/` holds unpacked wheels.
    pub cache: crate::cache::Cache,
    pub link_mode: LinkMode,
    /// Refuse wheels whose RECORD disagrees with their contents.
    pub verify_record: bool,
    /// Byte-compile installed modules.
    pub compile: bool,
    /// Write `#!<final prefix>/bin/python` instead of relocatable launchers.
    pub absolute_shebangs: bool,
    /// What the recipe says of paths that two distributions ship (see [`shared`]).
    pub shared_file_rules: SharedFileRules,
    /// Bounds on what a wheel may unpack to.
    pub limits: crate::limits::Limits,
}

/// What an install did: its distributions, the shared paths it resolved, and what the person
/// should be told.
#[derive(Debug, Clone)]
pub struct InstallReport {
    pub distributions: Vec<InstalledDistribution>,
    /// Paths two distributions ship with different bytes, resolved by the rule in [`shared`].
    pub shared_files: Vec<SharedFile>,
    /// One line per wheel or shared path worth a warning.
    pub warnings: Vec<String>,
}

/// What was installed, per distribution.
#[derive(Debug, Clone)]
pub struct InstalledDistribution {
    pub name: PackageName,
    pub version: Version,
    pub wheel: PathBuf,
    /// The `.dist-info` directory, relative to the prefix.
    pub dist_info: PathBuf,
    /// Files listed in the new RECORD.
    pub files: usize,
    /// The wheel's RECORD disagreed with its contents and verification was off.
    pub record_relaxed: bool,
}

/// Install `wheels` into `layout`.
pub fn install_wheels(
    layout: &Layout,
    wheels: &[WheelToInstall],
    options: &InstallOptions,
) -> Result<InstallReport, InstallError> {
    install_wheels_reporting(&crate::progress::Silent, layout, wheels, options)
}

/// [`install_wheels`], reporting each step as it starts.
pub fn install_wheels_reporting(
    progress: &dyn crate::progress::Progress,
    layout: &Layout,
    wheels: &[WheelToInstall],
    options: &InstallOptions,
) -> Result<InstallReport, InstallError> {
    let mut phase = Phase::start();
    progress.step(&format!("unpacking (or reusing) {} wheels", wheels.len()));
    // Unpack each wheel once (or reuse the cache), checking entries and RECORD.
    let unpacked: Vec<UnpackedWheel> = wheels
        .par_iter()
        .map(|wheel| {
            let sha256 = match &wheel.sha256 {
                Some(sha256) => sha256.clone(),
                None => remembered_sha256(&wheel.path, &options.cache)?,
            };
            let unpacked = archive::unpack_cached(
                &wheel.path,
                wheel.filename.as_deref(),
                &sha256,
                &options.cache,
                options.verify_record,
                &options.limits,
            )?;
            check_tags(layout, &unpacked)?;
            Ok(unpacked)
        })
        .collect::<Result<_, InstallError>>()?;
    phase.done("unpack (or reuse) and check wheels");

    let final_python = layout
        .final_prefix
        .join(&layout.scheme.scripts)
        .join("python");
    let interpreter =
        InterpreterLine::choose(options.absolute_shebangs, &final_python.to_string_lossy());
    let mut plans: Vec<WheelPlan> = unpacked
        .iter()
        .map(|wheel| plan_wheel(layout, wheel, &interpreter))
        .collect::<Result<_, _>>()?;

    // Nothing is written until every path is known to be free.
    let shared_files = shared::resolve(&mut plans, &options.shared_file_rules)?;
    check_prefix_is_free(layout, &plans)?;
    layout.create_environment()?;
    phase.done("plan and check destinations");

    let destination = layout.destination()?;
    progress.step(&format!(
        "placing the files of {} distributions",
        plans.len()
    ));
    let mut records: Vec<Vec<RecordEntry>> = plans
        .par_iter()
        .map(|plan| place_wheel(&destination, plan, &interpreter, options.link_mode))
        .collect::<Result<_, _>>()?;
    phase.done("place files");

    // 2.f "Compile any installed .py to .pyc."
    if options.compile {
        progress.step("byte-compiling (or restoring from the bytecode cache)");
        compile_installed(layout, &plans, &mut records, &options.cache)?;
        phase.done("byte-compile");
    }

    progress.step("writing metadata and RECORDs");
    let distributions = plans
        .par_iter()
        .zip(records)
        .zip(wheels)
        .map(|((plan, record), wheel)| finish_wheel(&destination, plan, record, wheel))
        .collect::<Result<_, _>>()?;
    phase.done("write metadata and RECORD");
    let warnings = warnings(&unpacked, &shared_files);
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    Ok(InstallReport {
        distributions,
        shared_files,
        warnings,
    })
}

/// The lines a person should read: each wheel whose RECORD wrote hex digests, each shared path
/// the recipe did not expect.
fn warnings(unpacked: &[UnpackedWheel], shared_files: &[SharedFile]) -> Vec<String> {
    let hex = unpacked.iter().filter(|wheel| wheel.hex_digests > 0).map(|wheel| {
        format!(
            "{}: its RECORD writes {} digests as hex, not urlsafe base64; each equals its file's \
             sha256, so it is installed",
            wheel.filename,
            wheel.hex_digests
        )
    });
    let shared = shared_files
        .iter()
        .filter(|shared| !shared.expected)
        .map(SharedFile::warning);
    hex.chain(shared).collect()
}

/// Logs how long each step took (`-v`).
struct Phase(std::time::Instant);

impl Phase {
    fn start() -> Phase {
        Phase(std::time::Instant::now())
    }

    fn done(&mut self, what: &str) {
        tracing::info!(milliseconds = self.0.elapsed().as_millis() as u64, "{what}");
        self.0 = std::time::Instant::now();
    }
}

/// Where one wheel's files go.
struct WheelPlan<'a> {
    unpacked: &'a UnpackedWheel,
    /// purelib or platlib, relative to the prefix: RECORD paths are relative to it.
    lib_directory: PathBuf,
    files: Vec<PlannedFile>,
    /// Launchers for entry points.
    launchers: Vec<(PathBuf, Vec<u8>)>,
}

struct PlannedFile {
    /// In the unpack cache.
    source: PathBuf,
    /// Relative to the prefix.
    destination: PathBuf,
    hash: String,
    size: u64,
    /// From `.data/scripts/`: made executable, and `#!python` rewritten.
    is_script: bool,
    /// Another distribution places the same bytes here: listed in RECORD, not written again.
    placed_by_another: bool,
}

fn check_tags(layout: &Layout, wheel: &UnpackedWheel) -> Result<(), InstallError> {
    if layout.tags.rank(&wheel.filename).is_some() {
        return Ok(());
    }
    Err(InstallError::IncompatibleWheel {
        wheel: wheel.wheel.clone(),
        tags: wheel.filename.tag_text(),
        target_tags: layout
            .tags
            .ordered()
            .iter()
            .take(3)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    })
}

fn plan_wheel<'a>(
    layout: &Layout,
    wheel: &'a UnpackedWheel,
    interpreter: &InterpreterLine,
) -> Result<WheelPlan<'a>, InstallError> {
    let invalid = |message: String| InstallError::InvalidWheel {
        wheel: wheel.wheel.clone(),
        message,
    };
    // 1.a "Parse distribution-1.0.dist-info/WHEEL."
    let wheel_file = wheel.files_directory.join(&wheel.dist_info).join("WHEEL");
    let wheel_text = fs_err::read_to_string(&wheel_file)
        .map_err(|_| invalid(format!("it has no {}/WHEEL", wheel.dist_info)))?;
    let info = metadata::parse_wheel_info(&wheel_text).map_err(invalid)?;
    // 1.b "Check that installer is compatible with Wheel-Version. Warn if minor version is
    // greater, abort if major version is greater."
    match info.wheel_version {
        (1, minor) if minor > 0 => tracing::warn!(
            wheel = %wheel.wheel.display(),
            "Wheel-Version 1.{minor} is newer than 1.0; installing as 1.0"
        ),
        (1, _) => {}
        (major, minor) => {
            return Err(InstallError::UnsupportedWheelVersion {
                wheel: wheel.wheel.clone(),
                version: format!("{major}.{minor}"),
            });
        }
    }
    // 1.c "If Root-Is-Purelib == 'true', unpack archive into purelib (site-packages)."
    // 1.d "Else unpack archive into platlib (site-packages)."
    let lib_directory = if info.root_is_purelib {
        layout.scheme.purelib.clone()
    } else {
        layout.scheme.platlib.clone()
    };

    // 2.b "Move each subtree of distribution-1.0.data/ onto its destination path. Each
    // subdirectory of distribution-1.0.data/ is a key into a dict of destination directories."
    let stem = wheel.dist_info.trim_end_matches(".dist-info");
    let data_prefix = format!("{stem}.data/");
    let distribution_name = stem.rsplit_once('-').map_or(stem, |(name, _)| name);
    let record_path = format!("{}/RECORD", wheel.dist_info);
    let mut files = Vec::with_capacity(wheel.files.len());
    for entry in &wheel.files {
        // The old RECORD is replaced by the one written at the end.
        if entry.path == record_path {
            continue;
        }
        let (destination, is_script) = match entry.path.strip_prefix(&data_prefix) {
            None => (lib_directory.join(&entry.path), false),
            Some(inside) => {
                let (key, rest) = inside.split_once('/').unwrap_or((inside, ""));
                let base = match key {
                    "purelib" => layout.scheme.purelib.clone(),
                    "platlib" => layout.scheme.platlib.clone(),
                    "scripts" => layout.scheme.scripts.clone(),
                    "headers" => layout.headers(distribution_name),
                    "data" => layout.scheme.data.clone(),
                    _ => {
                        return Err(InstallError::UnknownDataKey {
                            wheel: wheel.wheel.clone(),
                            key: key.to_string(),
                            entry: entry.path.clone(),
                        });
                    }
                };
                if rest.is_empty() {
                    continue;
                }
                (base.join(rest), key == "scripts")
            }
        };
        let destination = normalize(&destination);
        refuse_reserved(layout, wheel, &destination)?;
        files.push(PlannedFile {
            source: wheel.files_directory.join(&entry.path),
            destination,
            hash: entry.hash.clone(),
            size: entry.size.unwrap_or_default(),
            is_script,
            placed_by_another: false,
        });
    }

    // Entry points become launchers in bin/.
    let entry_points_path = wheel
        .files_directory
        .join(&wheel.dist_info)
        .join("entry_points.txt");
    let launchers = match fs_err::read_to_string(&entry_points_path) {
        Ok(text) => metadata::parse_entry_points(&text)
            .map_err(|(entry, reason)| InstallError::InvalidEntryPoint {
                wheel: wheel.wheel.clone(),
                entry,
                reason,
            })?
            .iter()
            .map(|entry_point| {
                (
                    layout.scheme.scripts.join(&entry_point.name),
                    scripts::launcher(entry_point, interpreter).into_bytes(),
                )
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    for (destination, _) in &launchers {
        refuse_reserved(layout, wheel, destination)?;
    }

    Ok(WheelPlan {
        unpacked: wheel,
        lib_directory: normalize(&lib_directory),
        files,
        launchers,
    })
}

/// A wheel may not write where the environment keeps its own files.
fn refuse_reserved(
    layout: &Layout,
    wheel: &UnpackedWheel,
    destination: &Path,
) -> Result<(), InstallError> {
    match layout.reserved_reason(destination) {
        Some(reason) => Err(InstallError::ReservedPath {
            wheel: wheel.wheel.clone(),
            path: destination.to_path_buf(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Drop `.` components (the `data` scheme is the prefix itself).
/// A path with `.` dropped and each `..` taking away the component before it.
fn resolve_dots(path: &Path) -> PathBuf {
    let mut resolved = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                resolved.pop();
            }
            other => resolved.push(other),
        }
    }
    resolved
}

fn normalize(path: &Path) -> PathBuf {
    path.components()
        .filter(|component| !matches!(component, Component::CurDir))
        .collect()
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// akpkg never overwrites: every destination must be free. A file can only exist where its
/// directory does, so in a fresh prefix this costs a look-up per directory, not per file.
fn check_prefix_is_free(layout: &Layout, plans: &[WheelPlan]) -> Result<(), InstallError> {
    plans.par_iter().try_for_each(|plan| {
        let mut directory_exists: HashMap<&std::ffi::OsStr, bool> = HashMap::new();
        let destinations = plan
            .files
            .iter()
            .map(|file| &file.destination)
            .chain(plan.launchers.iter().map(|(path, _)| path));
        for destination in destinations {
            let parent = destination.parent().unwrap_or(Path::new(""));
            let exists = *directory_exists
                .entry(parent.as_os_str())
                .or_insert_with(|| layout.root.join(parent).is_dir());
            if !exists {
                continue;
            }
            let path = layout.root.join(destination);
            if path.symlink_metadata().is_ok() {
                return Err(InstallError::AlreadyExists {
                    path,
                    wheel: file_name(&plan.unpacked.wheel),
                });
            }
        }
        Ok(())
    })
}

/// Write one wheel's files and launchers; returns its RECORD entries (paths relative to the
/// lib directory). Every write goes through the contained destination: a name that is taken
/// is refused, and nothing is written through a link.
fn place_wheel(
    destination: &Contained,
    plan: &WheelPlan,
    interpreter: &InterpreterLine,
    link_mode: LinkMode,
) -> Result<Vec<RecordEntry>, InstallError> {
    let mut created: HashSet<std::ffi::OsString> = HashSet::new();
    let mut ensure_parent = |path: &Path| -> Result<(), InstallError> {
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            // Most files share a directory with the one before: look up before allocating.
            if !created.contains(parent.as_os_str()) {
                destination.create_dir_all(parent)?;
                created.insert(parent.as_os_str().to_os_string());
            }
        }
        Ok(())
    };
    let mut record = Vec::with_capacity(plan.files.len() + plan.launchers.len() + 4);
    for file in &plan.files {
        let (hash, size) = if file.placed_by_another {
            (file.hash.clone(), file.size)
        } else if file.is_script {
            ensure_parent(&file.destination)?;
            // 2.c "If applicable, update scripts starting with #!python to point to the
            // correct interpreter." Scripts are small; read, rewrite, write fresh.
            let content = fs_err::read(&file.source)
                .map_err(InstallError::io("cannot read", &file.source))?;
            let content = scripts::rewrite_script(&content, interpreter).unwrap_or(content);
            destination.write(
                &file.destination,
                &content,
                FileMode::Executable,
                Existing::Refuse,
            )?;
            (record_hash(&content), content.len() as u64)
        } else {
            ensure_parent(&file.destination)?;
            destination.place(&file.source, &file.destination, link_mode)?;
            (file.hash.clone(), file.size)
        };
        record.push(RecordEntry {
            path: record_path(&plan.lib_directory, &file.destination),
            hash,
            size: Some(size),
        });
    }
    for (relative, content) in &plan.launchers {
        ensure_parent(relative)?;
        destination.write(relative, content, FileMode::Executable, Existing::Refuse)?;
        record.push(RecordEntry {
            path: record_path(&plan.lib_directory, relative),
            hash: record_hash(content),
            size: Some(content.len() as u64),
        });
    }
    Ok(record)
}

/// RECORD paths are relative to the directory holding `.dist-info`, with `..` to leave it
/// (`../../../bin/ak`), `/`-separated.
fn record_path(lib_directory: &Path, destination: &Path) -> String {
    let lib: Vec<_> = lib_directory.components().collect();
    let target: Vec<_> = destination.components().collect();
    let common = lib.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_string(); lib.len() - common];
    parts.extend(
        target[common..]
            .iter()
            .map(|part| part.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

/// Compile every installed `.py` under the lib directories, adding the pycs to RECORD.
fn compile_installed(
    layout: &Layout,
    plans: &[WheelPlan],
    records: &mut [Vec<RecordEntry>],
    cache: &crate::cache::Cache,
) -> Result<(), InstallError> {
    let mut owner: HashMap<PathBuf, usize> = HashMap::new();
    let mut jobs = Vec::new();
    for (index, plan) in plans.iter().enumerate() {
        for file in &plan.files {
            // Modules under purelib or platlib, whichever the wheel's root went to; not scripts.
            // A file another wheel places is compiled once, for that wheel.
            let in_lib = !file.placed_by_another
                && (file.destination.starts_with(&layout.scheme.purelib)
                    || file.destination.starts_with(&layout.scheme.platlib));
            if in_lib
                && file
                    .destination
                    .extension()
                    .is_some_and(|extension| extension == "py")
            {
                let source = layout.root.join(&file.destination);
                owner.insert(source.clone(), index);
                jobs.push(CompileJob {
                    source,
                    // Relative to the prefix: the same pyc serves every prefix path and every
                    // builder (CPython puts the real path into co_filename when it loads it).
                    recorded_path: file.destination.clone(),
                    source_hash: file.hash.clone(),
                });
            }
        }
    }
    let (major, minor) = layout.python_version;
    let cache = compile::BytecodeCache {
        prefix: layout.destination()?,
        directory: cache.bucket(crate::cache::Bucket::Bytecode),
        interpreter: format!(
            "{}\0{}",
            layout.build_python.display(),
            layout.python_full_version
        ),
        cache_tag: format!("cpython-{major}{minor}"),
    };
    let compiled = compile::compile_all(&layout.build_python, jobs, Some(&cache))?;
    // Each pyc's RECORD row, hashed in parallel (tens of thousands of files).
    let rows: Vec<(usize, RecordEntry)> = compiled
        .par_iter()
        .filter_map(|(source, pyc)| Some((*owner.get(source)?, pyc)))
        .map(|(index, pyc)| {
            let relative = pyc.strip_prefix(&layout.root).unwrap_or(pyc);
            let content = fs_err::read(pyc).map_err(InstallError::io("cannot read", pyc))?;
            Ok((
                index,
                RecordEntry {
                    path: record_path(&plans[index].lib_directory, relative),
                    hash: record_hash(&content),
                    size: Some(content.len() as u64),
                },
            ))
        })
        .collect::<Result<_, InstallError>>()?;
    let mut by_wheel: HashMap<usize, Vec<RecordEntry>> = HashMap::new();
    for (index, row) in rows {
        by_wheel.entry(index).or_default().push(row);
    }
    for (index, new_rows) in by_wheel {
        // A wheel that shipped a pyc already has a row for it: the new one replaces it.
        let replaced: HashSet<&str> = new_rows.iter().map(|row| row.path.as_str()).collect();
        records[index].retain(|entry| !replaced.contains(entry.path.as_str()));
        records[index].extend(new_rows);
    }
    Ok(())
}

/// Write INSTALLER, REQUESTED, direct_url.json and the new RECORD.
fn finish_wheel(
    destination: &Contained,
    plan: &WheelPlan,
    mut record: Vec<RecordEntry>,
    wheel: &WheelToInstall,
) -> Result<InstalledDistribution, InstallError> {
    let dist_info = plan.lib_directory.join(&plan.unpacked.dist_info);
    let mut generated: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    generated.insert("INSTALLER", b"akpkg\n".to_vec());
    if wheel.requested {
        generated.insert("REQUESTED", Vec::new());
    }
    if let Some(direct_url) = &wheel.direct_url {
        let mut json =
            serde_json::to_vec(direct_url).map_err(|error| InstallError::InvalidWheel {
                wheel: wheel.path.clone(),
                message: format!("direct_url.json: {error}"),
            })?;
        json.push(b'\n');
        generated.insert("direct_url.json", json);
    }
    for (name, content) in &generated {
        // Written fresh: a hard-linked file from the cache must never be modified in place.
        destination.write(
            &dist_info.join(name),
            content,
            FileMode::Regular,
            Existing::Replace,
        )?;
        let relative = format!("{}/{name}", plan.unpacked.dist_info);
        record.retain(|entry| entry.path != relative);
        record.push(RecordEntry {
            path: relative,
            hash: record_hash(content),
            size: Some(content.len() as u64),
        });
    }
    // 2.d "Update distribution-1.0.dist-info/RECORD with the installed paths."
    let record_name = format!("{}/RECORD", plan.unpacked.dist_info);
    let files = record.len() + 1;
    let text =
        write_record(record, &record_name).map_err(|message| InstallError::InvalidWheel {
            wheel: wheel.path.clone(),
            message: format!("cannot write RECORD: {message}"),
        })?;
    destination.write(
        &plan.lib_directory.join(&record_name),
        &text,
        FileMode::Regular,
        Existing::Replace,
    )?;

    let filename = &plan.unpacked.filename;
    Ok(InstalledDistribution {
        name: filename.name.clone(),
        version: filename.version.clone(),
        wheel: wheel.path.clone(),
        dist_info,
        files,
        record_relaxed: plan.unpacked.record_relaxed,
    })
}

/// A wheel's sha256, remembered under `CACHE/file-hashes-v1/` by the file's identity and change
/// times (device, inode, size, modification and status-change time), so that installing the
/// same files again does not re-read them. Any write to the file changes its status-change
/// time, which makes a new key, so a changed file is always hashed anew.
fn remembered_sha256(path: &Path, cache: &crate::cache::Cache) -> Result<Sha256, InstallError> {
    use std::os::unix::fs::MetadataExt;
    let metadata = fs_err::metadata(path).map_err(InstallError::io("cannot read", path))?;
    let identity = format!(
        "{}\0{}:{}:{}:{}.{}:{}.{}",
        path.display(),
        metadata.dev(),
        metadata.ino(),
        metadata.size(),
        metadata.mtime(),
        metadata.mtime_nsec(),
        metadata.ctime(),
        metadata.ctime_nsec()
    );
    let key = crate::digest::sha256_hex(identity.as_bytes());
    let memo = cache.bucket(crate::cache::Bucket::FileHashes).join(&key);
    if let Some(known) = fs_err::read_to_string(&memo)
        .ok()
        .and_then(|known| known.parse::<Sha256>().ok())
    {
        return Ok(known);
    }
    let sha256 = sha256_of_file(path)?;
    // Best effort: a memo that cannot be written only costs the next run a re-hash.
    if let Err(error) = crate::cache::publish_bytes(&memo, sha256.as_bytes()) {
        tracing::debug!("cannot remember the hash of {}: {error}", path.display());
    }
    Ok(sha256)
}

/// The sha256 of a file.
fn sha256_of_file(path: &Path) -> Result<Sha256, InstallError> {
    Sha256::of_file(path).map_err(InstallError::io("cannot read", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory with an empty `wheels/` in it, for the wheels a test writes.
    fn wheel_directory() -> (tempfile::TempDir, PathBuf) {
        let directory = tempfile::tempdir().unwrap();
        let wheels = directory.path().join("wheels");
        fs_err::create_dir_all(&wheels).unwrap();
        (directory, wheels)
    }

    #[test]
    fn record_paths_climb_out_of_the_lib_directory() {
        let lib = Path::new("lib/python3.13/site-packages");
        assert_eq!(
            record_path(lib, Path::new("lib/python3.13/site-packages/pkg/a.py")),
            "pkg/a.py"
        );
        assert_eq!(record_path(lib, Path::new("bin/ak")), "../../../bin/ak");
        assert_eq!(
            record_path(lib, Path::new("include/site/python3.13/x/x.h")),
            "../../../include/site/python3.13/x/x.h"
        );
        assert_eq!(
            record_path(lib, Path::new("share/man/x.1")),
            "../../../share/man/x.1"
        );
    }

    /// A one-module wheel, written with a correct RECORD.
    fn tiny_wheel(directory: &Path) -> PathBuf {
        wheel_with(directory, &[])
    }

    /// `tiny` 1.0 with these files besides its module and metadata, and a correct RECORD.
    fn wheel_with(directory: &Path, extra: &[(&str, &[u8])]) -> PathBuf {
        use std::io::Write;
        let mut files: Vec<(&str, &[u8])> = vec![
            ("tiny.py", b"X = 1\n"),
            (
                "tiny-1.0.dist-info/METADATA",
                b"Metadata-Version: 2.1\nName: tiny\nVersion: 1.0\n",
            ),
            (
                "tiny-1.0.dist-info/WHEEL",
                b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
            ),
        ];
        files.extend_from_slice(extra);
        let mut record = String::new();
        for (name, content) in &files {
            record.push_str(&format!(
                "{name},{},{}\n",
                record_hash(content),
                content.len()
            ));
        }
        record.push_str("tiny-1.0.dist-info/RECORD,,\n");
        let path = directory.join("tiny-1.0-py3-none-any.whl");
        let mut writer = zip::ZipWriter::new(fs_err::File::create(&path).unwrap());
        for (name, content) in files
            .into_iter()
            .chain([("tiny-1.0.dist-info/RECORD", record.as_bytes())])
        {
            writer
                .start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            writer.write_all(content).unwrap();
        }
        writer.finish().unwrap();
        path
    }

    fn test_layout(directory: &Path) -> Layout {
        let platform: crate::tags::Platform = "manylinux_2_17_x86_64".parse().unwrap();
        Layout {
            root: directory.join("prefix"),
            final_prefix: directory.join("prefix"),
            scheme: crate::interpreter::Scheme {
                purelib: "lib/python3.13/site-packages".into(),
                platlib: "lib/python3.13/site-packages".into(),
                scripts: "bin".into(),
                data: ".".into(),
            },
            python_version: (3, 13),
            python_full_version: "3.13.0".into(),
            runtime_python: directory.join("interpreter/python3.13"),
            build_python: "/usr/bin/python3.13".into(),
            tags: crate::tags::TargetTags::cpython(3, 13, false, &platform),
        }
    }

    fn install_one(
        directory: &Path,
        layout: &Layout,
        wheel: PathBuf,
    ) -> Result<Vec<InstalledDistribution>, InstallError> {
        install_as(directory, layout, wheel, true, None)
    }

    /// `NAME` 1.0 with these files besides its metadata; RECORD writes its digests as hex
    /// when `hex_record` (as uv's build backend does), else as RECORD's urlsafe base64.
    fn distribution_wheel(
        directory: &Path,
        name: &str,
        files: &[(&str, &[u8])],
        hex_record: bool,
    ) -> PathBuf {
        use sha2::Digest;
        use std::io::Write;
        let metadata = format!("Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n");
        let wheel_info = "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n";
        let dist_info = format!("{name}-1.0.dist-info");
        let mut all: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(path, content)| (path.to_string(), content.to_vec()))
            .collect();
        all.push((format!("{dist_info}/METADATA"), metadata.into_bytes()));
        all.push((format!("{dist_info}/WHEEL"), wheel_info.as_bytes().to_vec()));
        let mut record = String::new();
        for (path, content) in &all {
            let hash = if hex_record {
                format!(
                    "sha256={}",
                    crate::digest::hex(&sha2::Sha256::digest(content))
                )
            } else {
                record_hash(content)
            };
            record.push_str(&format!("{path},{hash},{}\n", content.len()));
        }
        record.push_str(&format!("{dist_info}/RECORD,,\n"));
        all.push((format!("{dist_info}/RECORD"), record.into_bytes()));
        let path = directory.join(format!("{name}-1.0-py3-none-any.whl"));
        let mut writer = zip::ZipWriter::new(fs_err::File::create(&path).unwrap());
        for (name, content) in all {
            writer
                .start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            writer.write_all(&content).unwrap();
        }
        writer.finish().unwrap();
        path
    }

    /// Install `wheels` (in this order) with `rules` into a fresh prefix under `directory`.
    fn install_together(
        directory: &Path,
        wheels: &[PathBuf],
        rules: SharedFileRules,
    ) -> (Layout, Result<InstallReport, InstallError>) {
        let layout = test_layout(directory);
        let options = InstallOptions {
            cache: crate::cache::Cache::new(directory.join("cache")),
            link_mode: LinkMode::Copy,
            verify_record: true,
            compile: false,
            absolute_shebangs: false,
            shared_file_rules: rules,
            limits: crate::limits::Limits::default(),
        };
        let wheels: Vec<WheelToInstall> = wheels
            .iter()
            .map(|path| WheelToInstall {
                filename: None,
                path: path.clone(),
                sha256: None,
                requested: false,
                direct_url: None,
            })
            .collect();
        let report = install_wheels(&layout, &wheels, &options);
        (layout, report)
    }

    fn site_packages(layout: &Layout, path: &str) -> PathBuf {
        layout.root.join(&layout.scheme.purelib).join(path)
    }

    fn installed_record(layout: &Layout, name: &str) -> String {
        fs_err::read_to_string(site_packages(
            layout,
            &format!("{name}-1.0.dist-info/RECORD"),
        ))
        .unwrap()
    }

    #[test]
    fn a_record_with_hex_digests_installs_when_they_match_and_is_rewritten() {
        let (directory, wheels) = wheel_directory();
        let module: (&str, &[u8]) = ("geo/__init__.py", b"CITY = 1\n");
        let wheel = distribution_wheel(&wheels, "geo", &[module], true);
        let (layout, report) = install_together(directory.path(), &[wheel], Default::default());
        let report = report.unwrap();
        assert_eq!(
            report.warnings,
            [
                "geo-1.0-py3-none-any.whl: its RECORD writes 3 digests as hex, not urlsafe base64; each equals its file's sha256, so it is installed"
            ]
        );
        // The installed RECORD is akpkg's own, in RECORD's form.
        let record = installed_record(&layout, "geo");
        assert!(record.contains(&format!("geo/__init__.py,{},9", record_hash(b"CITY = 1\n"))));

        // A hex digest of other bytes is still refused.
        let other = tempfile::tempdir().unwrap();
        let wheels = other.path().join("wheels");
        fs_err::create_dir_all(&wheels).unwrap();
        let wheel = distribution_wheel(&wheels, "geo", &[module], true);
        // Same name, other directory: the tampered copy.
        let tampered = other.path().join("geo-1.0-py3-none-any.whl");
        rewrite_zip_entry(&wheel, &tampered, "geo/__init__.py", b"CITY = 2\n");
        let (_, report) = install_together(other.path(), &[tampered], Default::default());
        let error = report.unwrap_err().to_string();
        assert!(
            error.contains("RECORD disagrees with `geo/__init__.py`: RECORD says sha256="),
            "{error}"
        );
    }

    /// A copy of the zip `from` at `to`, with `entry`'s bytes replaced (RECORD untouched).
    fn rewrite_zip_entry(from: &Path, to: &Path, entry: &str, content: &[u8]) {
        use std::io::{Read, Write};
        let mut archive = zip::ZipArchive::new(fs_err::File::open(from).unwrap()).unwrap();
        let mut writer = zip::ZipWriter::new(fs_err::File::create(to).unwrap());
        for index in 0..archive.len() {
            let mut file = archive.by_index(index).unwrap();
            let name = file.name().unwrap().to_string();
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).unwrap();
            writer
                .start_file(&name, zip::write::SimpleFileOptions::default())
                .unwrap();
            writer
                .write_all(if name == entry { content } else { &bytes })
                .unwrap();
        }
        writer.finish().unwrap();
    }

    #[test]
    fn shared_files_are_kept_once_resolved_by_name_or_refused_inside_a_package() {
        let (directory, wheels) = wheel_directory();
        let alpha = distribution_wheel(
            &wheels,
            "alpha",
            &[
                ("alpha/__init__.py", b"A = 1\n"),
                ("docs/Makefile", b"alpha's docs\n"),
                ("shared/LICENSE", b"the same licence\n"),
            ],
            false,
        );
        let beta = distribution_wheel(
            &wheels,
            "beta",
            &[
                ("beta/__init__.py", b"B = 1\n"),
                ("docs/Makefile", b"beta's docs\n"),
                ("shared/LICENSE", b"the same licence\n"),
            ],
            false,
        );
        // In either order: alpha (the first name) keeps docs/Makefile; the identical file is
        // written once and stays in both RECORDs.
        for (run, order) in [[&alpha, &beta], [&beta, &alpha]].iter().enumerate() {
            let root = directory.path().join(format!("run-{run}"));
            let wheels: Vec<PathBuf> = order.iter().map(|path| path.to_path_buf()).collect();
            let (layout, report) = install_together(&root, &wheels, Default::default());
            let report = report.unwrap();
            assert_eq!(
                fs_err::read(site_packages(&layout, "docs/Makefile")).unwrap(),
                b"alpha's docs\n"
            );
            assert_eq!(
                report.shared_files,
                [SharedFile {
                    path: "lib/python3.13/site-packages/docs/Makefile".into(),
                    kept: "alpha 1.0".into(),
                    dropped: "beta 1.0".into(),
                    expected: false,
                }]
            );
            assert_eq!(
                report.warnings,
                [
                    "alpha 1.0 and beta 1.0 both ship lib/python3.13/site-packages/docs/Makefile with different contents, outside their importable code; alpha 1.0's copy is installed (the first name in order wins). A recipe's [shared-files] can declare it expected or make it an error"
                ]
            );
            assert!(installed_record(&layout, "alpha").contains("docs/Makefile,"));
            assert!(!installed_record(&layout, "beta").contains("docs/Makefile"));
            for name in ["alpha", "beta"] {
                assert!(installed_record(&layout, name).contains("shared/LICENSE,"));
            }
        }

        // Declared expected: recorded, no warning. Declared an error: refused.
        let expected =
            SharedFileRules::from([("docs/Makefile".to_string(), SharedFileRule::Expected)]);
        let (_, report) = install_together(
            &directory.path().join("expected"),
            &[alpha.clone(), beta.clone()],
            expected,
        );
        let report = report.unwrap();
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert!(report.shared_files[0].expected);
        let error = SharedFileRules::from([("docs/Makefile".to_string(), SharedFileRule::Error)]);
        let (layout, report) = install_together(
            &directory.path().join("error"),
            &[alpha.clone(), beta.clone()],
            error,
        );
        assert_eq!(
            report.unwrap_err().to_string(),
            "alpha-1.0-py3-none-any.whl and beta-1.0-py3-none-any.whl both install lib/python3.13/site-packages/docs/Makefile with different contents: the recipe's [shared-files] makes `docs/Makefile` an error"
        );
        assert!(!layout.root.join("lib").exists(), "nothing was installed");
    }

    #[test]
    fn different_files_inside_importable_code_are_refused_naming_both() {
        let (directory, wheels) = wheel_directory();
        let alpha = distribution_wheel(
            &wheels,
            "alpha",
            &[
                ("alpha/__init__.py", b"A = 1\n"),
                ("alpha/data.txt", b"a\n"),
            ],
            false,
        );
        let intruder =
            distribution_wheel(&wheels, "intruder", &[("alpha/data.txt", b"b\n")], false);
        let module = distribution_wheel(&wheels, "module", &[("tools/x.py", b"Y = 2\n")], false);
        let other = distribution_wheel(&wheels, "other", &[("tools/x.py", b"Y = 3\n")], false);
        let cases = [
            (
                [alpha, intruder],
                "alpha-1.0-py3-none-any.whl and intruder-1.0-py3-none-any.whl both install lib/python3.13/site-packages/alpha/data.txt with different contents: it is inside alpha 1.0's package `alpha`",
            ),
            (
                [module, other],
                "module-1.0-py3-none-any.whl and other-1.0-py3-none-any.whl both install lib/python3.13/site-packages/tools/x.py with different contents: it is a Python module",
            ),
        ];
        for (index, (wheels, message)) in cases.into_iter().enumerate() {
            let (layout, report) = install_together(
                &directory.path().join(index.to_string()),
                &wheels,
                Default::default(),
            );
            assert_eq!(report.unwrap_err().to_string(), message);
            assert!(!layout.root.join("lib").exists(), "nothing was installed");
        }
    }

    /// Install one wheel with these `REQUESTED` and `direct_url.json` settings.
    fn install_as(
        directory: &Path,
        layout: &Layout,
        wheel: PathBuf,
        requested: bool,
        direct_url: Option<serde_json::Value>,
    ) -> Result<Vec<InstalledDistribution>, InstallError> {
        let options = InstallOptions {
            cache: crate::cache::Cache::new(directory.join("cache")),
            link_mode: LinkMode::Copy,
            verify_record: true,
            compile: false,
            absolute_shebangs: false,
            shared_file_rules: Default::default(),
            limits: crate::limits::Limits::default(),
        };
        let wheels = [WheelToInstall {
            filename: None,
            path: wheel,
            sha256: None,
            requested,
            direct_url,
        }];
        install_wheels(layout, &wheels, &options).map(|report| report.distributions)
    }

    #[test]
    fn no_wheel_may_write_where_the_environment_keeps_its_own_files() {
        let hostile: [(&str, &[u8]); 4] = [
            (
                "tiny-1.0.data/scripts/python3.13",
                b"#!/bin/sh\necho pwned\n",
            ),
            ("tiny-1.0.data/data/pyvenv.cfg", b"home = /tmp/evil\n"),
            ("tiny-1.0.data/data/bin/python", b"pwned"),
            (
                "tiny-1.0.dist-info/entry_points.txt",
                b"[console_scripts]\npython3 = tiny:main\n",
            ),
        ];
        let mut messages = Vec::new();
        for file in hostile {
            let directory = tempfile::tempdir().unwrap();
            let interpreter = directory.path().join("interpreter/python3.13");
            fs_err::create_dir_all(interpreter.parent().unwrap()).unwrap();
            fs_err::write(&interpreter, "the interpreter").unwrap();
            let wheels = directory.path().join("wheels");
            fs_err::create_dir_all(&wheels).unwrap();
            let layout = test_layout(directory.path());
            let error = install_one(directory.path(), &layout, wheel_with(&wheels, &[file]))
                .unwrap_err()
                .to_string();
            messages.push(error.replace(&directory.path().display().to_string(), "[TMP]"));
            assert_eq!(
                fs_err::read_to_string(&interpreter).unwrap(),
                "the interpreter"
            );
            assert!(!layout.root.join("lib").exists(), "nothing was installed");
        }
        insta::assert_snapshot!(messages.join("\n"), @r"
        [TMP]/wheels/tiny-1.0-py3-none-any.whl: refusing to install `bin/python3.13`: it is a link to the environment's interpreter; no wheel may write there
        [TMP]/wheels/tiny-1.0-py3-none-any.whl: refusing to install `pyvenv.cfg`: it is the environment's own pyvenv.cfg; no wheel may write there
        [TMP]/wheels/tiny-1.0-py3-none-any.whl: refusing to install `bin/python`: it is a link to the environment's interpreter; no wheel may write there
        [TMP]/wheels/tiny-1.0-py3-none-any.whl: refusing to install `bin/python3`: it is a link to the environment's interpreter; no wheel may write there
        ");
    }

    #[test]
    fn links_planted_in_the_prefix_are_replaced_not_written_through() {
        let directory = tempfile::tempdir().unwrap();
        let layout = test_layout(directory.path());
        let outside = directory.path().join("outside.cfg");
        fs_err::write(&outside, "precious").unwrap();
        fs_err::create_dir_all(&layout.root).unwrap();
        std::os::unix::fs::symlink(&outside, layout.root.join("pyvenv.cfg")).unwrap();
        let wheels = directory.path().join("wheels");
        fs_err::create_dir_all(&wheels).unwrap();
        install_one(directory.path(), &layout, tiny_wheel(&wheels)).unwrap();
        assert_eq!(fs_err::read_to_string(&outside).unwrap(), "precious");
        let config = layout.root.join("pyvenv.cfg");
        assert!(!config.symlink_metadata().unwrap().is_symlink());
        assert!(
            fs_err::read_to_string(config)
                .unwrap()
                .starts_with("home = ")
        );
    }

    #[test]
    fn a_changed_unpacked_copy_is_unpacked_again() {
        let (directory, wheels) = wheel_directory();
        let wheel = tiny_wheel(&wheels);
        let layout = test_layout(directory.path());
        install_one(directory.path(), &layout, wheel.clone()).unwrap();
        // Poison the cache's unpacked copy, then install into a new prefix.
        let sha256 = crate::digest::sha256_hex_of_file(&wheel).unwrap();
        let cached = directory
            .path()
            .join("cache/unpacked-v1/sha256")
            .join(&sha256)
            .join("files/tiny.py");
        fs_err::remove_file(&cached).unwrap();
        fs_err::write(&cached, "X = 666\n").unwrap();
        let mut second = test_layout(directory.path());
        second.root = directory.path().join("second");
        second.final_prefix = second.root.clone();
        install_one(directory.path(), &second, wheel).unwrap();
        let installed = second.root.join("lib/python3.13/site-packages/tiny.py");
        assert_eq!(fs_err::read_to_string(installed).unwrap(), "X = 1\n");
        assert_eq!(fs_err::read_to_string(cached).unwrap(), "X = 1\n");
    }

    #[test]
    fn the_file_system_root_is_never_a_prefix() {
        let target =
            crate::interpreter::Target::described("3.13", "manylinux_2_17_x86_64").unwrap();
        for root in ["/", "/.", "/usr/.."] {
            let error = Layout::new(&target, Path::new(root), None, None)
                .unwrap_err()
                .to_string();
            assert!(error.contains("root cannot be a prefix"), "{root}: {error}");
        }
    }

    #[test]
    fn direct_url_and_requested_are_written_as_asked() {
        let directory = tempfile::tempdir().unwrap();
        let wheel = tiny_wheel(directory.path());
        let mut layout = test_layout(directory.path());
        layout.runtime_python = "/usr/bin/python3.13".into();
        let direct_url = serde_json::json!({"url": "https://example.org/tiny.git", "vcs_info": {"vcs": "git", "commit_id": "0123"}});
        let installed = install_as(
            directory.path(),
            &layout,
            wheel,
            false,
            Some(direct_url.clone()),
        )
        .unwrap();
        assert_eq!(installed[0].name.as_ref(), "tiny");
        let dist_info = layout
            .root
            .join("lib/python3.13/site-packages/tiny-1.0.dist-info");
        let written: serde_json::Value =
            serde_json::from_slice(&fs_err::read(dist_info.join("direct_url.json")).unwrap())
                .unwrap();
        assert_eq!(written, direct_url);
        assert!(!dist_info.join("REQUESTED").exists());
        let record = fs_err::read_to_string(dist_info.join("RECORD")).unwrap();
        assert!(
            record.contains("tiny-1.0.dist-info/direct_url.json,sha256="),
            "{record}"
        );
        assert!(!record.contains("REQUESTED"), "{record}");
        assert_eq!(
            fs_err::read_link(layout.root.join("bin/python3.13")).unwrap(),
            Path::new("/usr/bin/python3.13")
        );
    }

    #[test]
    fn normalize_drops_current_directory_components() {
        assert_eq!(normalize(Path::new("./share/x")), PathBuf::from("share/x"));
        assert_eq!(normalize(Path::new("lib/./x")), PathBuf::from("lib/x"));
    }
}
