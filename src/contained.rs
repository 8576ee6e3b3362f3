//! The one I/O edge for writes into a destination (a prefix, a staging tree, the cache, a bundle,
//! an extraction root): every path is resolved beneath a directory handle, so no `..`, absolute
//! path or symbolic link — one in the input, one an earlier entry created, or one already in the
//! destination — can make a write land outside it.
//!
//! The guarantee comes from the kernel, not from string checks: [`cap_std`] opens every path
//! relative to the destination's file descriptor (with `openat2(RESOLVE_BENEATH)` on Linux), and
//! any resolution that would leave the directory fails. On top of that:
//! - a file is written by creating a new inode (`O_CREAT | O_EXCL`): an existing entry is either
//!   refused or removed first, never written through, so a link planted at the final name
//!   (`bin/python` → the interpreter, `pyvenv.cfg` → `/etc/…`) is replaced, not followed;
//! - special files (fifos, devices, sockets) are never created or read;
//! - links akpkg makes to the host (the prefix's `bin/python` → the runtime interpreter) are
//!   created by [`Contained::host_link`] and are never followed by a write, since they leave the
//!   directory.
//!
//! Reads of inputs outside any destination (a wheel in the cache, a tarball given on the
//! command line) stay ordinary `fs_err` calls.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use cap_std::ambient_authority;
use std::os::unix::fs::PermissionsExt as _;

use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};

/// Why a contained write failed.
#[derive(Debug, thiserror::Error)]
pub enum ContainedError {
    #[error(transparent)]
    Io(#[from] crate::path_io::PathIoError),
    #[error("{}: refusing a path that leads outside {}", path.display(), root.display())]
    Escapes { path: PathBuf, root: PathBuf },
    #[error("{} already exists", path.display())]
    Exists { path: PathBuf },
}

/// What to do when the destination name is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Fail with [`ContainedError::Exists`].
    Refuse,
    /// Remove the entry (a file or a link, never a directory) and create a new one: nothing is
    /// ever written through what was there.
    Replace,
}

/// File modes akpkg writes: everything it creates is normalized to one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    Regular,
    Executable,
}

impl FileMode {
    pub fn from_executable(executable: bool) -> FileMode {
        if executable {
            FileMode::Executable
        } else {
            FileMode::Regular
        }
    }

    fn bits(self) -> u32 {
        match self {
            FileMode::Regular => 0o644,
            FileMode::Executable => 0o755,
        }
    }
}

/// How a file from outside (the unpack cache) reaches a destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LinkMode {
    /// An independent copy (the kernel may share extents where the file system can).
    #[default]
    Copy,
    /// A hard link to the source: fastest, but the two share an inode.
    Hardlink,
    /// A copy-on-write clone where the file system supports it, else a copy.
    Reflink,
}

/// A directory that writes cannot leave.
#[derive(Debug)]
pub struct Contained {
    directory: Dir,
    root: PathBuf,
}

impl Contained {
    /// Open an existing directory as a destination.
    pub fn open(root: &Path) -> Result<Contained, ContainedError> {
        let directory = Dir::open_ambient_dir(root, ambient_authority()).map_err(|source| {
            ContainedError::Io(crate::path_io::PathIoError::new(
                "cannot open the directory",
                root.to_path_buf(),
                source,
            ))
        })?;
        Ok(Contained {
            directory,
            root: root.to_path_buf(),
        })
    }

    /// Create a directory (and its parents) outside any destination, then open it.
    pub fn create(root: &Path) -> Result<Contained, ContainedError> {
        fs_err::create_dir_all(root).map_err(|source| {
            ContainedError::Io(crate::path_io::PathIoError::new(
                "cannot create",
                root.to_path_buf(),
                source,
            ))
        })?;
        Contained::open(root)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The text of the regular file `relative`, read beneath this directory: a link on the
    /// way that leads outside fails, as does a FIFO, device or directory (checked before it is
    /// opened, so a FIFO is never waited on).
    pub fn read_to_string(&self, relative: &Path) -> Result<String, ContainedError> {
        self.check(relative)?;
        let metadata = self
            .directory
            .metadata(relative)
            .map_err(self.error("cannot read", relative))?;
        if !metadata.is_file() {
            return Err(ContainedError::Io(crate::path_io::PathIoError::new(
                "cannot read",
                self.path(relative),
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
            )));
        }
        self.directory
            .read_to_string(relative)
            .map_err(self.error("cannot read", relative))
    }

    /// The directory `relative` beneath this one (created when missing), as a destination of
    /// its own: opened through this one, so a link already there cannot move it outside.
    pub fn subdirectory(&self, relative: &Path) -> Result<Contained, ContainedError> {
        self.create_dir_all(relative)?;
        let directory = self
            .directory
            .open_dir(relative)
            .map_err(self.error("cannot open the directory", relative))?;
        Ok(Contained {
            directory,
            root: self.path(relative),
        })
    }

    /// The full path of `relative`, for messages and for readers outside this module.
    pub fn path(&self, relative: &Path) -> PathBuf {
        self.root.join(relative)
    }

    /// Refuse what is not a plain relative path before the kernel sees it: the kernel would
    /// refuse it too, but this names the cause.
    fn check(&self, relative: &Path) -> Result<(), ContainedError> {
        let plain = relative
            .components()
            .all(|component| matches!(component, Component::Normal(_) | Component::CurDir));
        if plain && !relative.as_os_str().is_empty() {
            Ok(())
        } else {
            Err(ContainedError::Escapes {
                path: relative.to_path_buf(),
                root: self.root.clone(),
            })
        }
    }

    fn error(
        &self,
        action: &'static str,
        relative: &Path,
    ) -> impl FnOnce(std::io::Error) -> ContainedError {
        let path = self.path(relative);
        let root = self.root.clone();
        move |source| {
            // cap-std's refusal of a resolution that leaves the directory.
            if source.kind() == std::io::ErrorKind::PermissionDenied
                && source.to_string().contains("outside of the filesystem")
            {
                ContainedError::Escapes { path, root }
            } else {
                ContainedError::Io(crate::path_io::PathIoError::new(action, path, source))
            }
        }
    }

    /// Create a directory and its parents.
    pub fn create_dir_all(&self, relative: &Path) -> Result<(), ContainedError> {
        self.check(relative)?;
        self.directory
            .create_dir_all(relative)
            .map_err(self.error("cannot create", relative))
    }

    /// The entry at `relative` without following a final link, if there is one.
    pub fn entry_type(&self, relative: &Path) -> Option<cap_std::fs::FileType> {
        self.check(relative).ok()?;
        self.directory
            .symlink_metadata(relative)
            .ok()
            .map(|metadata| metadata.file_type())
    }

    /// Remove a file or link (never a directory); a missing entry is fine.
    pub fn remove_file(&self, relative: &Path) -> Result<(), ContainedError> {
        self.check(relative)?;
        match self.directory.remove_file(relative) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(self.error("cannot remove", relative)(error)),
        }
    }

    /// Create a new file at `relative` (its parent must exist) and return it for writing.
    pub fn create_file(
        &self,
        relative: &Path,
        mode: FileMode,
        existing: Existing,
    ) -> Result<std::fs::File, ContainedError> {
        self.check(relative)?;
        if existing == Existing::Replace
            && self.entry_type(relative).is_some_and(|kind| !kind.is_dir())
        {
            self.remove_file(relative)?;
        }
        let mut options = OpenOptions::new();
        options.write(true).create_new(true).mode(mode.bits());
        let file = self
            .directory
            .open_with(relative, &options)
            .map_err(|error| {
                if error.kind() == std::io::ErrorKind::AlreadyExists {
                    ContainedError::Exists {
                        path: self.path(relative),
                    }
                } else {
                    self.error("cannot create", relative)(error)
                }
            })?
            .into_std();
        // The umask must not decide the mode: set it on the open file, not by path.
        file.set_permissions(std::fs::Permissions::from_mode(mode.bits()))
            .map_err(self.error("cannot set the mode of", relative))?;
        Ok(file)
    }

    /// Write `content` as a new file, creating its parents.
    pub fn write(
        &self,
        relative: &Path,
        content: &[u8],
        mode: FileMode,
        existing: Existing,
    ) -> Result<(), ContainedError> {
        self.create_parent(relative)?;
        let mut file = self.create_file(relative, mode, existing)?;
        file.write_all(content)
            .map_err(self.error("cannot write", relative))
    }

    /// Stream `reader` into a new file (parents created), returning the bytes written.
    pub fn write_from(
        &self,
        relative: &Path,
        reader: &mut impl Read,
        mode: FileMode,
        existing: Existing,
    ) -> Result<u64, ContainedError> {
        self.create_parent(relative)?;
        let file = self.create_file(relative, mode, existing)?;
        let mut writer = std::io::BufWriter::with_capacity(128 * 1024, file);
        let written =
            std::io::copy(reader, &mut writer).map_err(self.error("cannot write", relative))?;
        writer
            .flush()
            .map_err(self.error("cannot write", relative))?;
        Ok(written)
    }

    /// Copy the outside file `source` to `relative` (replacing what is there), hashing it on the
    /// way; when its bytes do not hash to `expected`, nothing of it is kept and the actual
    /// digest is returned.
    pub fn copy_verified(
        &self,
        source: &Path,
        relative: &Path,
        expected: &crate::identity::Sha256,
    ) -> Result<Option<crate::identity::Sha256>, ContainedError> {
        let file = crate::path_io::open_regular(source).map_err(|error| {
            ContainedError::Io(crate::path_io::PathIoError::new(
                "cannot read",
                source.to_path_buf(),
                error,
            ))
        })?;
        let mut hashing = crate::digest::HashingReader::new(file);
        self.write_from(relative, &mut hashing, FileMode::Regular, Existing::Replace)?;
        let actual = hashing.finish();
        if actual == *expected {
            return Ok(None);
        }
        self.remove_file(relative)?;
        Ok(Some(actual))
    }

    fn create_parent(&self, relative: &Path) -> Result<(), ContainedError> {
        match relative.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => self.create_dir_all(parent),
            _ => Ok(()),
        }
    }

    /// Place the outside file `source` at `relative` (parent must exist, name must be free),
    /// executable when the source is.
    pub fn place(
        &self,
        source: &Path,
        relative: &Path,
        link_mode: LinkMode,
    ) -> Result<(), ContainedError> {
        self.check(relative)?;
        if link_mode == LinkMode::Hardlink && self.hard_link_from(source, relative).is_ok() {
            return Ok(());
        }
        let mut input = std::fs::File::open(source).map_err(|error| {
            ContainedError::Io(crate::path_io::PathIoError::new(
                "cannot read",
                source.to_path_buf(),
                error,
            ))
        })?;
        let executable = input
            .metadata()
            .map_err(|error| {
                ContainedError::Io(crate::path_io::PathIoError::new(
                    "cannot read",
                    source.to_path_buf(),
                    error,
                ))
            })?
            .permissions()
            .mode()
            & 0o111
            != 0;
        let mut output = self.create_file(
            relative,
            FileMode::from_executable(executable),
            Existing::Refuse,
        )?;
        if link_mode == LinkMode::Reflink && rustix::fs::ioctl_ficlone(&output, &input).is_ok() {
            return Ok(());
        }
        // `io::copy` between two files uses copy_file_range, which shares extents where it can.
        std::io::copy(&mut input, &mut output)
            .map(|_| ())
            .map_err(self.error("cannot copy into", relative))
    }

    /// Give the entry `from` the name `to` (both inside), replacing a file of that name
    /// atomically: how a cache publishes what it has checked.
    pub fn rename_within(&self, from: &Path, to: &Path) -> Result<(), ContainedError> {
        self.check(from)?;
        self.check(to)?;
        self.directory
            .rename(from, &self.directory, to)
            .map_err(self.error("cannot move into place", to))
    }

    /// A fresh name for a temporary entry, starting with `prefix`: unique in this process and
    /// unlikely in any other (process id, a counter and the time).
    pub fn temporary_name(prefix: &str) -> PathBuf {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanoseconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        PathBuf::from(format!(
            "{prefix}{}-{}-{nanoseconds}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// Hard-link an outside file into the destination: the new name is resolved beneath the
    /// directory (its parent opened contained), the source is taken as given.
    fn hard_link_from(&self, source: &Path, relative: &Path) -> Result<(), ContainedError> {
        let (parent, name) = split_parent(relative);
        let parent_directory = self
            .directory
            .open_dir(if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            })
            .map_err(self.error("cannot open", parent))?;
        rustix::fs::linkat(
            rustix::fs::CWD,
            source,
            &parent_directory,
            name,
            rustix::fs::AtFlags::empty(),
        )
        .map_err(|errno| self.error("cannot link", relative)(errno.into()))
    }

    /// A hard link from one entry of the destination to another; the source must be a
    /// regular file inside.
    pub fn hard_link_within(&self, source: &Path, relative: &Path) -> Result<(), ContainedError> {
        self.check(source)?;
        self.check(relative)?;
        if !self.entry_type(source).is_some_and(|kind| kind.is_file()) {
            return Err(ContainedError::Io(crate::path_io::PathIoError::new(
                "cannot link to",
                self.path(source),
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "it is not a regular file in the destination",
                ),
            )));
        }
        self.directory
            .hard_link(source, &self.directory, relative)
            .map_err(self.error("cannot link", relative))
    }

    /// A symbolic link whose target must resolve inside the destination, checked again (for
    /// real, through every link on the way) by [`Contained::check_link`] once the tree is
    /// complete.
    pub fn symlink(&self, relative: &Path, target: &Path) -> Result<(), ContainedError> {
        self.check(relative)?;
        let parent = relative.parent().unwrap_or(Path::new(""));
        if target.is_absolute() || !lexically_inside(&parent.join(target)) {
            return Err(ContainedError::Escapes {
                path: self.path(relative),
                root: self.root.clone(),
            });
        }
        self.directory
            .symlink(target, relative)
            .map_err(self.error("cannot create the link", relative))
    }

    /// A link akpkg itself makes to a file on the host (the prefix's `bin/python`). Writes never
    /// follow it, since it leaves the directory.
    pub fn host_link(&self, relative: &Path, target: &Path) -> Result<(), ContainedError> {
        self.check(relative)?;
        self.directory
            .symlink_contents(target, relative)
            .map_err(self.error("cannot create the link", relative))
    }

    /// Whether the link at `relative`, followed through every link on its way, stays inside.
    /// A target that does not exist (yet) is judged by the part that does: that part must
    /// resolve inside, and the rest may not climb with `..`.
    pub fn check_link(&self, relative: &Path) -> Result<(), ContainedError> {
        let escapes = || ContainedError::Escapes {
            path: self.path(relative),
            root: self.root.clone(),
        };
        let target = self
            .directory
            .read_link_contents(relative)
            .map_err(self.error("cannot read the link", relative))?;
        if target.is_absolute() {
            return Err(escapes());
        }
        let parent = relative.parent().unwrap_or(Path::new(""));
        let components: Vec<Component> = target.components().collect();
        for existing in (0..=components.len()).rev() {
            let prefix: PathBuf = parent
                .iter()
                .map(Component::Normal)
                .chain(components[..existing].iter().copied())
                .collect();
            let probe = if prefix.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                prefix
            };
            match self.directory.canonicalize(&probe) {
                Ok(_) => {
                    let rest_climbs = components[existing..]
                        .iter()
                        .any(|component| matches!(component, Component::ParentDir));
                    return if rest_climbs { Err(escapes()) } else { Ok(()) };
                }
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(_) => return Err(escapes()),
            }
        }
        Err(escapes())
    }
}

/// A relative path's parent and last component.
fn split_parent(relative: &Path) -> (&Path, &std::ffi::OsStr) {
    (
        relative.parent().unwrap_or(Path::new("")),
        relative.file_name().unwrap_or(relative.as_os_str()),
    )
}

/// Whether a relative path stays below its start when `..` is taken lexically.
pub fn lexically_inside(path: &Path) -> bool {
    let mut depth = 0usize;
    for component in path.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                if depth == 0 {
                    return false;
                }
                depth -= 1;
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// The path below a destination that an entry name means: `.` dropped, `..` taken lexically;
/// `None` when it is absolute or climbs out.
pub fn contained_path(entry: &Path) -> Option<PathBuf> {
    let mut inside = PathBuf::new();
    for component in entry.components() {
        match component {
            Component::Normal(part) => inside.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !inside.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(inside)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination() -> (tempfile::TempDir, Contained) {
        let directory = tempfile::tempdir().unwrap();
        fs_err::create_dir(directory.path().join("root")).unwrap();
        let contained = Contained::open(&directory.path().join("root")).unwrap();
        (directory, contained)
    }

    #[test]
    fn writes_never_follow_a_link_out() {
        let (directory, root) = destination();
        let outside = directory.path().join("outside");
        fs_err::write(&outside, "precious").unwrap();
        std::os::unix::fs::symlink(&outside, directory.path().join("root/file")).unwrap();
        std::os::unix::fs::symlink(directory.path(), directory.path().join("root/up")).unwrap();

        // A link at the final name is replaced, never written through.
        root.write(
            Path::new("file"),
            b"new",
            FileMode::Regular,
            Existing::Replace,
        )
        .unwrap();
        assert_eq!(fs_err::read_to_string(&outside).unwrap(), "precious");
        assert_eq!(
            fs_err::read_to_string(directory.path().join("root/file")).unwrap(),
            "new"
        );
        // Refused where the name is taken.
        let error = root
            .write(Path::new("file"), b"x", FileMode::Regular, Existing::Refuse)
            .unwrap_err();
        assert!(matches!(error, ContainedError::Exists { .. }), "{error}");
        // A link in the middle of the path that leaves is never followed.
        root.write(
            Path::new("up/outside"),
            b"x",
            FileMode::Regular,
            Existing::Replace,
        )
        .unwrap_err();
        let error = root
            .create_file(Path::new("up/new"), FileMode::Regular, Existing::Replace)
            .unwrap_err();
        assert!(matches!(error, ContainedError::Escapes { .. }), "{error}");
        assert_eq!(fs_err::read_to_string(&outside).unwrap(), "precious");
        assert!(!directory.path().join("new").exists());
        // `..` and absolute paths never reach the kernel.
        for bad in ["../x", "/tmp/x", "a/../../x"] {
            let error = root
                .write(Path::new(bad), b"x", FileMode::Regular, Existing::Replace)
                .unwrap_err();
            assert!(
                matches!(error, ContainedError::Escapes { .. }),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn links_are_checked_through_every_link_on_the_way() {
        let (_directory, root) = destination();
        root.create_dir_all(Path::new("d1/d2")).unwrap();
        // `d1/d2/a` → `..` is d1: inside. `x` → `d1/d2/a/../..` looks like `d1` lexically but
        // is the root's parent for real.
        root.symlink(Path::new("d1/d2/a"), Path::new("..")).unwrap();
        root.check_link(Path::new("d1/d2/a")).unwrap();
        root.symlink(Path::new("x"), Path::new("d1/d2/a/../.."))
            .unwrap();
        assert!(matches!(
            root.check_link(Path::new("x")),
            Err(ContainedError::Escapes { .. })
        ));
        // Dangling targets are judged by what exists.
        root.symlink(Path::new("later"), Path::new("d1/missing/file"))
            .unwrap();
        root.check_link(Path::new("later")).unwrap();
        root.symlink(Path::new("climbs"), Path::new("d1/missing/../.."))
            .unwrap();
        assert!(root.check_link(Path::new("climbs")).is_err());
        // Lexically outside is refused when it is made.
        assert!(root.symlink(Path::new("out"), Path::new("../x")).is_err());
        assert!(root.symlink(Path::new("abs"), Path::new("/etc")).is_err());
    }

    #[test]
    fn modes_do_not_depend_on_the_umask() {
        use std::os::unix::fs::PermissionsExt as _;
        let (directory, root) = destination();
        root.write(
            Path::new("a/run"),
            b"#!/bin/sh\n",
            FileMode::Executable,
            Existing::Refuse,
        )
        .unwrap();
        let mode = fs_err::metadata(directory.path().join("root/a/run"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }

    #[test]
    fn lexical_helpers() {
        assert!(lexically_inside(Path::new("a/../b")));
        assert!(!lexically_inside(Path::new("a/../../b")));
        assert_eq!(
            contained_path(Path::new("./a/./b")),
            Some(PathBuf::from("a/b"))
        );
        assert_eq!(contained_path(Path::new("/a")), None);
    }
}
