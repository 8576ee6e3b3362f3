//! Whether an existing prefix already is what this assemble would make, so that a rerun with
//! nothing changed returns at once.
//!
//! Three digests:
//! - the **input digest**, written into the manifest: every input that determines the prefix's
//!   bytes, in a form every builder computes alike (akpkg's version, the recipe file, akpkg's
//!   lock, each patch, the source tree id that was built, the target's Python and platform, the
//!   runtime interpreter, and the options that change the output). Two builders with the same
//!   inputs write the same manifest, so the layer stays reproducible.
//! - the **local digest**: the same inputs as this machine sees them before anything is
//!   unpacked (the source archive's sha256, or a source directory's stamp; the interpreter's
//!   paths; `--web-dist`'s stamp), cheap enough for a check that must take well under a second.
//! - the **tree stamp**: every entry of the prefix with its path, mode, size,
//!   inode and change time (ctime, nanoseconds), taken after verification. Any write,
//!   replacement, removal, `chmod` or new file inside the prefix changes some entry's ctime or
//!   inode or the list itself, and the kernel sets ctime: it cannot be set back by hand. So a
//!   matching stamp says the tree is the one that was verified, without reading its 600 MB;
//!   contents are not re-hashed (`akpkg verify` does that).
//!
//! The last two are this machine's, not the prefix's: they are kept in the cache
//! (`CACHE/assembled-v1/<sha256 of the prefix path>.json`), with the input digest they vouch for.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{AssembleError, AssembleOptions, LoadedRecipe, MANIFEST, SourceArgument};
use crate::identity::{Sha256, TreeId};
use crate::interpreter::Target;

/// The inputs every builder sees alike, one per line.
fn shared_inputs(
    loaded: &LoadedRecipe,
    target: &Target,
    options: &AssembleOptions,
    toolchains: &[(&str, &str)],
) -> Vec<String> {
    // The application stages' toolchains (a version decides a binary): the Go server's line
    // as it has always been written (`None` when no server is built), then any other's.
    let go = toolchains
        .iter()
        .find(|(name, _)| *name == "go")
        .map(|(_, version)| *version);
    let patches: Vec<&str> = loaded
        .patches
        .iter()
        .map(|patch| patch.sha256.as_str())
        .collect();
    vec![
        format!("akpkg {}", env!("CARGO_PKG_VERSION")),
        format!("recipe {}", loaded.recipe_sha256),
        format!(
            "lock {}",
            Sha256::of_bytes(loaded.lock.to_toml().as_bytes())
        ),
        format!("patches {}", patches.join(" ")),
        format!("target {} {}", target.python_version, target.platform),
        format!("runtime-python {:?}", options.runtime_python),
        format!("closure {:?}", options.closure),
        format!("compile {}", options.compile),
        format!("config-settings {:?}", options.config_settings),
        format!("source-date-epoch {}", options.build.source_date_epoch),
        format!("go {go:?}"),
        format!("go api client {:?}", options.server.api_client),
        // Whether the web UI is built and how its API client is made (Node and npm are the
        // recipe's pins, covered by its digest).
        format!(
            "web {} {:?}",
            options.web.build && options.web_dist.is_none(),
            options.web.api_client
        ),
    ]
    .into_iter()
    .chain(
        toolchains
            .iter()
            .filter(|(name, _)| *name != "go")
            .map(|(name, version)| format!("{name} {version:?}")),
    )
    .collect()
}

/// The input digest of a prefix built from the source tree `source_tree`.
pub fn input_digest(
    loaded: &LoadedRecipe,
    target: &Target,
    options: &AssembleOptions,
    source_tree: &TreeId,
    toolchains: &[(&str, &str)],
) -> Sha256 {
    let mut lines = shared_inputs(loaded, target, options, toolchains);
    lines.push(format!("source {source_tree}"));
    Sha256::of_bytes(lines.join("\n").as_bytes())
}

/// The local digest (see the module's documentation), or `None` when the source cannot be
/// known without fetching or reading it whole (an unverified source from the recipe's URL, a
/// source path that is not there): then the prefix is always rebuilt.
pub fn local_digest(
    loaded: &LoadedRecipe,
    target: &Target,
    options: &AssembleOptions,
    toolchains: &[(&str, &str)],
) -> Result<Option<Sha256>, AssembleError> {
    let source = match &options.source {
        SourceArgument::Path(path) if path.is_file() => format!(
            "archive {}",
            Sha256::of_file(path).map_err(AssembleError::io("cannot read", path))?
        ),
        // A directory is stamped like a prefix: any change to it changes some entry's ctime.
        SourceArgument::Path(directory) if directory.is_dir() => format!(
            "directory {} {}",
            directory.display(),
            tree_stamp(directory)?
        ),
        SourceArgument::Path(_) => return Ok(None),
        SourceArgument::FromRecipe if options.allow_unverified_source => return Ok(None),
        SourceArgument::FromRecipe => format!("recipe {}", loaded.recipe.source.tree),
    };
    let web_dist = match &options.web_dist {
        Some(directory) => tree_stamp(directory)?.to_string(),
        None => String::new(),
    };
    let interpreter = target.interpreter.as_ref().map(|interpreter| {
        format!(
            "{} {}",
            interpreter.executable.display(),
            interpreter.base_executable.display()
        )
    });
    let mut lines = shared_inputs(loaded, target, options, toolchains);
    lines.push(format!("source {source}"));
    lines.push(format!("interpreter {interpreter:?}"));
    lines.push(format!("web-dist {web_dist}"));
    Ok(Some(Sha256::of_bytes(lines.join("\n").as_bytes())))
}

/// The stamp of every entry below `directory` (see the module's documentation), in path order.
pub fn tree_stamp(directory: &Path) -> Result<Sha256, AssembleError> {
    Ok(stamp_and_size(directory)?.0)
}

/// The tree stamp, and the bytes of the regular files it saw (the same walk, so the report's
/// size costs nothing more).
///
/// The walk is the no-op path's whole cost (about 55,000 entries for authentik), so it reads
/// each directory once and asks for each entry's metadata relative to that directory (std's
/// `DirEntry::metadata` is an `fstatat` on the directory's descriptor, where a path-based
/// `lstat` walks every component again), and it stamps sibling directories in parallel. Each
/// directory's stamp is the digest of its entries' lines in name order, a subdirectory's line
/// ending in that subdirectory's stamp (a Merkle tree), so the result does not depend on the
/// schedule and no line is copied up the tree.
pub fn stamp_and_size(directory: &Path) -> Result<(Sha256, u64), AssembleError> {
    stamp_directory(directory)
}

fn stamp_directory(directory: &Path) -> Result<(Sha256, u64), AssembleError> {
    use rayon::prelude::*;
    use sha2::Digest;
    let mut entries = std::fs::read_dir(directory)
        .and_then(|entries| entries.collect::<Result<Vec<_>, _>>())
        .map_err(|error| unreadable(directory, error))?;
    entries.sort_by_key(|entry| entry.file_name());
    // Most directories are small (a `__pycache__` of a few files): handing each entry to
    // another thread costs more than stamping it.
    let lines = if entries.len() < 64 {
        entries
            .iter()
            .map(stamp_entry)
            .collect::<Result<Vec<_>, _>>()?
    } else {
        entries
            .par_iter()
            .map(stamp_entry)
            .collect::<Result<Vec<_>, _>>()?
    };
    let mut hasher = sha2::Sha256::new();
    let mut size = 0;
    for (line, entry_size) in &lines {
        hasher.update(line);
        size += entry_size;
    }
    Ok((Sha256::from_digest(&hasher.finalize().into()), size))
}

/// One entry's line (name, mode, size, inode, ctime, and a directory's own stamp) and the
/// bytes of the regular files it holds.
fn stamp_entry(entry: &std::fs::DirEntry) -> Result<(Vec<u8>, u64), AssembleError> {
    use std::io::Write;
    let metadata = entry
        .metadata()
        .map_err(|error| unreadable(&entry.path(), error))?;
    let mut line = entry.file_name().into_encoded_bytes();
    let written = write!(
        line,
        "\0{:o} {} {} {}.{}",
        metadata.mode(),
        metadata.len(),
        metadata.ino(),
        metadata.ctime(),
        metadata.ctime_nsec()
    );
    written.map_err(|error| unreadable(&entry.path(), error))?;
    let mut size = if metadata.is_file() {
        metadata.len()
    } else {
        0
    };
    if metadata.is_dir() {
        let (below, below_size) = stamp_directory(&entry.path())?;
        line.push(b' ');
        line.extend_from_slice(below.as_str().as_bytes());
        size += below_size;
    }
    line.push(b'\n');
    Ok((line, size))
}

fn unreadable(path: &Path, source: std::io::Error) -> AssembleError {
    AssembleError::Io(crate::path_io::PathIoError::new(
        "cannot read",
        path.to_path_buf(),
        source,
    ))
}

/// What this machine knows of a prefix it assembled, kept in the cache.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Record {
    pub prefix: PathBuf,
    pub local_digest: Sha256,
    /// The input digest of the manifest this record vouches for.
    pub input_digest: Sha256,
    pub tree_stamp: Sha256,
}

impl Record {
    /// Where the record of `prefix` is kept.
    pub fn path(cache: &crate::cache::Cache, prefix: &Path) -> PathBuf {
        let key = Sha256::of_bytes(prefix.as_os_str().as_encoded_bytes());
        cache
            .bucket(crate::cache::Bucket::Assembled)
            .join(format!("{key}.json"))
    }

    fn read(path: &Path) -> Option<Record> {
        serde_json::from_slice(&fs_err::read(path).ok()?).ok()
    }

    /// Keep the record; best effort, since a missing one only costs the next run a rebuild.
    pub fn write(&self, path: &Path) {
        keep(path, self);
    }
}

/// What the import check found for one input digest and one set of files (the digest of every
/// hashed RECORD row). A prefix with both the same has the same bytes in every file the
/// interpreter imports, so the check's result carries over; `--force` and `akpkg verify` run
/// it again.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ImportProof {
    pub modules: usize,
    pub django_apps: Option<usize>,
}

impl ImportProof {
    pub fn path(cache: &crate::cache::Cache, input_digest: &Sha256, contents: &Sha256) -> PathBuf {
        let key = Sha256::of_bytes(format!("{input_digest}\0{contents}").as_bytes());
        cache
            .bucket(crate::cache::Bucket::Assembled)
            .join("imports")
            .join(format!("{key}.json"))
    }

    pub fn read(path: &Path) -> Option<ImportProof> {
        serde_json::from_slice(&fs_err::read(path).ok()?).ok()
    }

    /// Best effort: a missing proof only costs the next run the import check.
    pub fn write(&self, path: &Path) {
        keep(path, self);
    }
}

/// Where import proofs are kept, and for which inputs.
pub struct ImportProofs<'a> {
    pub cache: &'a crate::cache::Cache,
    pub input_digest: &'a Sha256,
    /// Run the import check even when a proof exists (`--force`).
    pub rerun: bool,
    /// The build interpreter, to import with when the runtime one is not on this machine.
    pub stand_in: Option<&'a Path>,
}

/// Verify a staged prefix: every file against its RECORD, then the imports, unless a proof
/// for the same inputs and files exists; a passing import check leaves a proof.
pub fn verify_staged(
    staged: &Path,
    recipe: &super::Recipe,
    proofs: &ImportProofs,
    progress: &dyn crate::progress::Progress,
) -> Result<super::VerifyReport, AssembleError> {
    progress.step("hashing every file against its RECORD");
    let files = super::verify::check_files(staged)?;
    let proof = ImportProof::path(proofs.cache, proofs.input_digest, &files.contents);
    let mut report = files.report.clone();
    match ImportProof::read(&proof).filter(|_| !proofs.rerun) {
        Some(proven) if report.failures.is_empty() => {
            report.modules = proven.modules;
            report.django_apps = proven.django_apps;
            report.imports_proven_before = true;
        }
        _ => {
            progress.step("importing every distribution and loading Django");
            files.check_imports(
                staged,
                recipe.settings_module.as_deref(),
                &recipe.verify_environment,
                proofs.stand_in,
                &mut report,
            )?;
            if report.failures.is_empty() {
                ImportProof {
                    modules: report.modules,
                    django_apps: report.django_apps,
                }
                .write(&proof);
            }
        }
    }
    Ok(report)
}

/// Write `value` as JSON at `path` whole or not at all (a temporary name, then a rename).
fn keep(path: &Path, value: &impl Serialize) {
    let written = serde_json::to_vec_pretty(value)
        .map_err(|error| error.to_string())
        .and_then(|text| {
            crate::cache::publish_bytes(path, &text).map_err(|error| error.to_string())
        });
    if let Err(error) = written {
        tracing::debug!("cannot keep {}: {error}", path.display());
    }
}

/// The input digest a prefix's manifest records.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ManifestDigest {
    input_digest: Sha256,
}

/// Whether `prefix` holds what an assemble with `local` would make: this machine's record of it
/// has the same local digest, vouches for the input digest in its manifest, and its tree still
/// has the stamp taken when it was verified.
pub fn is_up_to_date(prefix: &Path, record: &Path, local: &Sha256) -> bool {
    let Some(record) = Record::read(record) else {
        return false;
    };
    let manifest = fs_err::read(prefix.join(MANIFEST))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<ManifestDigest>(&bytes).ok());
    record.prefix == prefix
        && record.local_digest == *local
        && manifest.is_some_and(|manifest| manifest.input_digest == record.input_digest)
        && tree_stamp(prefix).is_ok_and(|now| now == record.tree_stamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stamp_sees_every_change() {
        let directory = tempfile::tempdir().unwrap();
        let tree = directory.path();
        fs_err::create_dir_all(tree.join("lib")).unwrap();
        fs_err::write(tree.join("lib/a.py"), "a = 1\n").unwrap();
        let before = tree_stamp(tree).unwrap();
        assert_eq!(tree_stamp(tree).unwrap(), before);
        // Same size, same content even: a rewrite changes the ctime.
        fs_err::write(tree.join("lib/a.py"), "a = 1\n").unwrap();
        let rewritten = tree_stamp(tree).unwrap();
        assert_ne!(rewritten, before);
        // A mode change, and a new file.
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(
            tree.join("lib/a.py"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let chmodded = tree_stamp(tree).unwrap();
        assert_ne!(chmodded, rewritten);
        fs_err::write(tree.join("lib/b.py"), "").unwrap();
        assert_ne!(tree_stamp(tree).unwrap(), chmodded);
    }
}
