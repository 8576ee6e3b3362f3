//! Steps 2 and 12 of assemble: where the new prefix is staged, and how it takes the old one's
//! place.
//!
//! The staging directory sits beside the prefix (`.NAME.akpkg-staging-XXXX/`, holding `work/`
//! and `prefix/`), so the final move is a rename on one file system: a plain rename when there
//! is no prefix yet, else an atomic exchange, so the prefix is never missing. Each staging holds
//! a lock for its whole run; a later run removes only stagings whose lock is free (their process
//! died, even by SIGKILL). What is at the prefix is replaced only when it is akpkg's.

use std::path::{Path, PathBuf};

use super::{AssembleError, MANIFEST};

/// Where the prefix goes: checked, its parent created, dead stagings beside it removed.
pub struct Place {
    pub prefix: PathBuf,
    pub parent: PathBuf,
    staging_prefix: String,
}

impl Place {
    /// Step 2 for `prefix` (replacing a foreign one only with `force`).
    pub fn prepare(prefix: &Path, force: bool) -> Result<Place, AssembleError> {
        let prefix =
            std::path::absolute(prefix).map_err(AssembleError::io("cannot resolve", prefix))?;
        let parent = prefix
            .parent()
            .ok_or_else(|| {
                AssembleError::Recipe(format!("{} has no parent directory", prefix.display()))
            })?
            .to_path_buf();
        create_parent(&prefix, &parent)?;
        if !force {
            refuse_foreign_prefix(&prefix)?;
        }
        let staging_prefix = staging_name(&prefix);
        remove_abandoned_stagings(&parent, &staging_prefix);
        Ok(Place {
            prefix,
            parent,
            staging_prefix,
        })
    }

    /// A new staging directory beside the prefix, locked for this run.
    pub fn stage(&self) -> Result<Staging, AssembleError> {
        let directory = tempfile::Builder::new()
            .prefix(&self.staging_prefix)
            .tempdir_in(&self.parent)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => {
                    AssembleError::PrefixParentNotWritable {
                        prefix: self.prefix.clone(),
                        parent: self.parent.clone(),
                        kind: source.kind(),
                    }
                }
                _ => AssembleError::Io(crate::path_io::PathIoError::new(
                    "cannot create a staging directory in",
                    self.parent.clone(),
                    source,
                )),
            })?;
        let lock = lock_file(&directory.path().join(STAGING_LOCK), false)?;
        let work = directory.path().join("work");
        let staged = directory.path().join("prefix");
        fs_err::create_dir_all(&work).map_err(AssembleError::io("cannot create", &work))?;
        Ok(Staging {
            directory,
            lock,
            work,
            staged,
        })
    }
}

/// `.NAME.akpkg-staging-`: what every staging directory of `prefix` is named after.
fn staging_name(prefix: &Path) -> String {
    let name = prefix
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.akpkg-staging-")
}

/// Remove what interrupted runs left beside `prefix`, as a run that does work would.
pub fn remove_abandoned_beside(prefix: &Path) {
    if let Some(parent) = prefix.parent() {
        remove_abandoned_stagings(parent, &staging_name(prefix));
    }
}

/// One run's staging directory: `work/` (the source, scratch) and `prefix/` (the new prefix).
pub struct Staging {
    directory: tempfile::TempDir,
    lock: fs_err::File,
    pub work: PathBuf,
    pub staged: PathBuf,
}

impl Staging {
    pub fn path(&self) -> &Path {
        self.directory.path()
    }

    /// Step 12: the staged prefix into place, one move at a time per parent directory (a
    /// concurrent assemble of the same prefix waits, then replaces this one's result as a
    /// whole). The old prefix, now in the staging directory, is removed when the returned
    /// [`Leftover`] is dropped.
    pub fn move_to(self, place: &Place) -> Result<Leftover, AssembleError> {
        let _move_lock = lock_directory(&place.parent)?;
        move_into_place(&self.staged, &place.prefix)?;
        Ok(Leftover {
            _directory: self.directory,
            _lock: self.lock,
        })
    }
}

/// A staging directory to remove, locked so that no concurrent run touches it meanwhile.
#[derive(Debug)]
pub struct Leftover {
    /// Removed (with the old prefix in it) when dropped.
    _directory: tempfile::TempDir,
    /// Released after the removal: fields drop in order.
    _lock: fs_err::File,
}

const STAGING_LOCK: &str = ".akpkg-staging.lock";

/// An exclusively locked file (flock), released when the returned handle is dropped or the
/// process dies. `wait` blocks until the lock is free; otherwise a held lock is an error.
fn lock_file(path: &Path, wait: bool) -> Result<fs_err::File, AssembleError> {
    Ok(crate::path_io::lock_exclusive(path, wait)?)
}

/// Create the prefix's missing parent directories, as uv, pip and cargo do.
fn create_parent(prefix: &Path, parent: &Path) -> Result<(), AssembleError> {
    fs_err::create_dir_all(parent).map_err(|source| match source.kind() {
        std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => {
            AssembleError::PrefixParentNotWritable {
                prefix: prefix.to_path_buf(),
                parent: parent.to_path_buf(),
                kind: source.kind(),
            }
        }
        _ => AssembleError::Io(crate::path_io::PathIoError::new(
            "cannot create",
            parent.to_path_buf(),
            source,
        )),
    })
}

/// Never destroy what akpkg did not make: what is at the prefix may be replaced only when it
/// is nothing, an empty directory, or a prefix with akpkg's manifest.
fn refuse_foreign_prefix(prefix: &Path) -> Result<(), AssembleError> {
    let refuse = |what: String| AssembleError::PrefixNotOurs {
        prefix: prefix.to_path_buf(),
        what,
        manifest: MANIFEST,
    };
    let metadata = match fs_err::symlink_metadata(prefix) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(AssembleError::io("cannot read", prefix)(error)),
    };
    if metadata.is_symlink() {
        return Err(refuse("a symbolic link".to_string()));
    }
    if !metadata.is_dir() {
        return Err(refuse("a file".to_string()));
    }
    if prefix.join(MANIFEST).is_file() {
        return Ok(());
    }
    let mut names: Vec<String> = fs_err::read_dir(prefix)
        .map_err(AssembleError::io("cannot read", prefix))?
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    names.sort();
    let count = names.len();
    let shown = names.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    let more = if count > 3 { ", …" } else { "" };
    let noun = if count == 1 { "entry" } else { "entries" };
    Err(refuse(format!(
        "a directory holding {count} {noun} ({shown}{more})"
    )))
}

/// The parent directory itself, locked (flock on a directory works on Linux): leaves no file.
fn lock_directory(directory: &Path) -> Result<fs_err::File, AssembleError> {
    let handle =
        fs_err::File::open(directory).map_err(AssembleError::io("cannot open", directory))?;
    rustix::fs::flock(handle.file(), rustix::fs::FlockOperation::LockExclusive).map_err(
        |error| {
            AssembleError::Io(crate::path_io::PathIoError::new(
                "cannot lock",
                directory.to_path_buf(),
                error.into(),
            ))
        },
    )?;
    Ok(handle)
}

/// Remove staging directories of earlier runs that died (their lock is free), so a killed
/// assemble leaves nothing behind once the next one starts. Stagings of live runs are kept.
fn remove_abandoned_stagings(parent: &Path, staging_prefix: &str) {
    crate::path_io::remove_abandoned(parent, staging_prefix, STAGING_LOCK);
}

/// Put `staged` at `prefix`: a plain rename when there is none yet; otherwise an atomic
/// exchange (renameat2 RENAME_EXCHANGE), so `prefix` is never missing, then the old one, now at
/// `staged`, is removed with the staging directory.
fn move_into_place(staged: &Path, prefix: &Path) -> Result<(), AssembleError> {
    if fs_err::symlink_metadata(prefix).is_err() {
        return fs_err::rename(staged, prefix)
            .map_err(AssembleError::io("cannot move the prefix to", prefix));
    }
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        staged,
        rustix::fs::CWD,
        prefix,
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .map_err(|error| {
        AssembleError::Io(crate::path_io::PathIoError::new(
            "cannot exchange the new prefix with",
            prefix.to_path_buf(),
            error.into(),
        ))
    })
}
