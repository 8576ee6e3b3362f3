//! Tar archives, shared by the stages that read them (git archives, sdists) and write them
//! (bundles, layers).
//!
//! Reading is safe whatever the archive holds: an entry is refused, with its name, when its path
//! is absolute or climbs out with `..`, when a symbolic or hard link would point outside the
//! destination, or when it is a device, a fifo or another special file. Nothing is written
//! outside the destination, ever. Writing is deterministic: entries sorted by path (a
//! directory before its contents), owner 0:0, a fixed mtime and normalized modes.

use std::io::{BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Why an archive could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{archive}: refusing entry `{entry}`: {reason}")]
    Unsafe {
        archive: PathBuf,
        entry: String,
        reason: &'static str,
    },
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError {
    let path = path.to_path_buf();
    move |source| ArchiveError::Io {
        action,
        path,
        source,
    }
}

/// Unpack a tar archive (plain or gzip-compressed, told apart by its first bytes) into
/// `destination`, which must exist.
pub fn unpack_tar(archive: &Path, destination: &Path) -> Result<(), ArchiveError> {
    let file = fs_err::File::open(archive).map_err(io_error("cannot open", archive))?;
    let mut reader = BufReader::new(file);
    let is_gzip = {
        let start =
            std::io::BufRead::fill_buf(&mut reader).map_err(io_error("cannot read", archive))?;
        start.starts_with(&[0x1f, 0x8b])
    };
    if is_gzip {
        unpack_tar_stream(flate2::read::GzDecoder::new(reader), archive, destination)
    } else {
        unpack_tar_stream(reader, archive, destination)
    }
}

/// The path of an entry below the destination, or `None` when it is absolute or climbs out.
fn contained(entry: &Path) -> Option<PathBuf> {
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

fn unpack_tar_stream(
    reader: impl Read,
    archive_path: &Path,
    destination: &Path,
) -> Result<(), ArchiveError> {
    let read_error = io_error("cannot read", archive_path);
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(read_error)?;
    for entry in entries {
        let mut entry = entry.map_err(io_error("cannot read", archive_path))?;
        let name = entry
            .path()
            .map_err(io_error("cannot read", archive_path))?
            .into_owned();
        let refuse = |reason: &'static str| ArchiveError::Unsafe {
            archive: archive_path.to_path_buf(),
            entry: name.display().to_string(),
            reason,
        };
        let kind = entry.header().entry_type();
        // Metadata entries carry no file (pax headers of `git archive` hold the commit id).
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        // An entry's name may not climb out, and it may not start with `/`.
        if name.is_absolute() {
            return Err(refuse("its path is absolute"));
        }
        let Some(relative) = contained(&name) else {
            return Err(refuse("its path leaves the destination through `..`"));
        };
        if relative.as_os_str().is_empty() {
            continue;
        }
        let target = destination.join(&relative);
        if let Some(parent) = target.parent() {
            fs_err::create_dir_all(parent).map_err(io_error("cannot create", parent))?;
        }
        if kind.is_dir() {
            fs_err::create_dir_all(&target).map_err(io_error("cannot create", &target))?;
        } else if kind.is_file() {
            let mode = entry.header().mode().unwrap_or(0o644);
            // An earlier entry of the same name (or a link) is replaced, never written through.
            let _ = fs_err::remove_file(&target);
            let mut file =
                fs_err::File::create(&target).map_err(io_error("cannot create", &target))?;
            std::io::copy(&mut entry, &mut file).map_err(io_error("cannot write", &target))?;
            let normalized = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
            fs_err::set_permissions(&target, std::fs::Permissions::from_mode(normalized))
                .map_err(io_error("cannot set the mode of", &target))?;
        } else if kind.is_symlink() {
            let link = entry
                .link_name()
                .map_err(io_error("cannot read", archive_path))?
                .ok_or_else(|| refuse("a symbolic link without a target"))?
                .into_owned();
            // The target is resolved from the link's own directory and must stay inside.
            let from = relative.parent().unwrap_or(Path::new(""));
            if link.is_absolute() || contained(&from.join(&link)).is_none() {
                return Err(refuse(
                    "a symbolic link that points outside the destination",
                ));
            }
            let _ = fs_err::remove_file(&target);
            std::os::unix::fs::symlink(&link, &target)
                .map_err(io_error("cannot create the link", &target))?;
        } else if kind.is_hard_link() {
            let link = entry
                .link_name()
                .map_err(io_error("cannot read", archive_path))?
                .ok_or_else(|| refuse("a hard link without a target"))?
                .into_owned();
            // A hard link names another entry of the archive, by its path from the root.
            let Some(source) = contained(&link).filter(|path| !path.as_os_str().is_empty()) else {
                return Err(refuse("a hard link that points outside the destination"));
            };
            let source = destination.join(source);
            let metadata = fs_err::symlink_metadata(&source)
                .map_err(|_| refuse("a hard link to a file not (yet) in the archive"))?;
            if !metadata.is_file() {
                return Err(refuse("a hard link to something that is not a file"));
            }
            let _ = fs_err::remove_file(&target);
            fs_err::hard_link(&source, &target).map_err(io_error("cannot link", &target))?;
        } else {
            return Err(refuse(
                "it is a device, fifo or other special file, which no source tree needs",
            ));
        }
    }
    Ok(())
}

/// Write the tree below `directory` as a deterministic tar: sorted paths, directories before
/// their contents, owner 0:0, mtime `mtime`, modes 0755 (directories and executables) or 0644,
/// symbolic links kept as links.
pub fn write_tree_tar<W: std::io::Write>(
    directory: &Path,
    writer: W,
    mtime: u64,
) -> Result<W, ArchiveError> {
    let mut builder = tar::Builder::new(writer);
    for entry in walkdir::WalkDir::new(directory)
        .min_depth(1)
        .sort_by_file_name()
        .follow_links(false)
    {
        let entry = entry.map_err(|error| ArchiveError::Io {
            action: "cannot read",
            path: error.path().unwrap_or(directory).to_path_buf(),
            source: error.into(),
        })?;
        let path = entry.path();
        let name = path.strip_prefix(directory).unwrap_or(path);
        let metadata = fs_err::symlink_metadata(path).map_err(io_error("cannot read", path))?;
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime);
        let append_error = io_error("cannot append to the archive", path);
        if metadata.is_symlink() {
            let link = fs_err::read_link(path).map_err(io_error("cannot read", path))?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            builder
                .append_link(&mut header, name, &link)
                .map_err(append_error)?;
        } else if metadata.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            builder
                .append_data(&mut header, name, std::io::empty())
                .map_err(append_error)?;
        } else {
            let executable = metadata.permissions().mode() & 0o111 != 0;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(if executable { 0o755 } else { 0o644 });
            header.set_size(metadata.len());
            let file = fs_err::File::open(path).map_err(io_error("cannot open", path))?;
            builder
                .append_data(&mut header, name, file)
                .map_err(append_error)?;
        }
    }
    builder
        .into_inner()
        .map_err(io_error("cannot finish the archive of", directory))
}

/// Copy a directory's files, symbolic links and executable bits into `to` (which must exist),
/// leaving out entries with the names in `skip` at any depth.
pub fn copy_tree(from: &Path, to: &Path, skip: &[&str]) -> Result<(), ArchiveError> {
    let walk = walkdir::WalkDir::new(from)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| {
            !skip
                .iter()
                .any(|name| entry.file_name() == std::ffi::OsStr::new(name))
        });
    for entry in walk {
        let entry = entry.map_err(|error| ArchiveError::Io {
            action: "cannot read",
            path: error.path().unwrap_or(from).to_path_buf(),
            source: error.into(),
        })?;
        let relative = entry.path().strip_prefix(from).unwrap_or(entry.path());
        let target = to.join(relative);
        let kind = entry.file_type();
        if kind.is_symlink() {
            let link =
                fs_err::read_link(entry.path()).map_err(io_error("cannot read", entry.path()))?;
            std::os::unix::fs::symlink(link, &target)
                .map_err(io_error("cannot create", &target))?;
        } else if kind.is_dir() {
            fs_err::create_dir_all(&target).map_err(io_error("cannot create", &target))?;
        } else {
            fs_err::copy(entry.path(), &target).map_err(io_error("cannot copy to", &target))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar with one raw entry, its name written into the header as is (the `tar` crate's
    /// builder refuses `..`, which is what a hostile archive would carry).
    fn raw_tar(name: &str, kind: tar::EntryType, link: Option<&str>) -> Vec<u8> {
        let mut header = tar::Header::new_gnu();
        {
            let bytes = header.as_old_mut();
            bytes.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(link) = link {
                bytes.linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
        }
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(if kind.is_file() { 2 } else { 0 });
        header.set_cksum();
        let mut archive = header.as_bytes().to_vec();
        if kind.is_file() {
            let mut block = vec![0u8; 512];
            block[..2].copy_from_slice(b"hi");
            archive.extend(block);
        }
        archive.extend(vec![0u8; 1024]);
        archive
    }

    fn unpack_bytes(bytes: &[u8]) -> (tempfile::TempDir, Result<(), ArchiveError>) {
        let directory = tempfile::tempdir().unwrap();
        let archive = directory.path().join("a.tar");
        fs_err::write(&archive, bytes).unwrap();
        let destination = directory.path().join("out");
        fs_err::create_dir(&destination).unwrap();
        let result = unpack_tar(&archive, &destination);
        (directory, result)
    }

    #[test]
    fn hostile_entries_are_refused_and_nothing_lands_outside() {
        let mut messages = Vec::new();
        for (name, kind, link, reason) in [
            ("../evil", tar::EntryType::Regular, None, "`..`"),
            ("/etc/evil", tar::EntryType::Regular, None, "absolute"),
            ("a/../../evil", tar::EntryType::Regular, None, "`..`"),
            (
                "link",
                tar::EntryType::Symlink,
                Some("../../etc"),
                "outside",
            ),
            (
                "link",
                tar::EntryType::Symlink,
                Some("/etc/passwd"),
                "outside",
            ),
            ("hard", tar::EntryType::Link, Some("../x"), "outside"),
            ("dev", tar::EntryType::Char, None, "device"),
        ] {
            let (directory, result) = unpack_bytes(&raw_tar(name, kind, link));
            let error = result.unwrap_err().to_string();
            assert!(
                error.contains(reason) && error.contains(name),
                "{name}: {error}"
            );
            assert!(!directory.path().join("evil").exists());
            messages.push(error.replace(&directory.path().display().to_string(), "[TMP]"));
        }
        insta::assert_snapshot!(messages.join("\n"), @r#"
        [TMP]/a.tar: refusing entry `../evil`: its path leaves the destination through `..`
        [TMP]/a.tar: refusing entry `/etc/evil`: its path is absolute
        [TMP]/a.tar: refusing entry `a/../../evil`: its path leaves the destination through `..`
        [TMP]/a.tar: refusing entry `link`: a symbolic link that points outside the destination
        [TMP]/a.tar: refusing entry `link`: a symbolic link that points outside the destination
        [TMP]/a.tar: refusing entry `hard`: a hard link that points outside the destination
        [TMP]/a.tar: refusing entry `dev`: it is a device, fifo or other special file, which no source tree needs
        "#);
    }

    #[test]
    fn a_link_inside_is_kept() {
        let (directory, result) =
            unpack_bytes(&raw_tar("a/link", tar::EntryType::Symlink, Some("../b")));
        result.unwrap();
        assert_eq!(
            fs_err::read_link(directory.path().join("out/a/link")).unwrap(),
            Path::new("../b")
        );
    }

    #[test]
    fn written_trees_round_trip_and_are_deterministic() {
        let directory = tempfile::tempdir().unwrap();
        let tree = directory.path().join("tree");
        fs_err::create_dir_all(tree.join("pkg/sub")).unwrap();
        fs_err::write(tree.join("pkg/sub/m.py"), "x = 1\n").unwrap();
        fs_err::write(tree.join("run"), "#!/bin/sh\n").unwrap();
        fs_err::set_permissions(tree.join("run"), std::fs::Permissions::from_mode(0o775)).unwrap();
        std::os::unix::fs::symlink("pkg/sub/m.py", tree.join("link")).unwrap();

        let mut first = Vec::new();
        write_tree_tar(&tree, &mut first, 0).unwrap();
        // The same files with other timestamps and umask give the same bytes.
        fs_err::set_permissions(tree.join("pkg"), std::fs::Permissions::from_mode(0o700)).unwrap();
        let mut second = Vec::new();
        write_tree_tar(&tree, &mut second, 0).unwrap();
        assert_eq!(first, second);

        let (unpacked, result) = unpack_bytes(&first);
        result.unwrap();
        let out = unpacked.path().join("out");
        assert_eq!(
            fs_err::read_to_string(out.join("pkg/sub/m.py")).unwrap(),
            "x = 1\n"
        );
        let mode = fs_err::metadata(out.join("run"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            fs_err::read_link(out.join("link")).unwrap(),
            Path::new("pkg/sub/m.py")
        );
        let names: Vec<String> = tar::Archive::new(first.as_slice())
            .entries()
            .unwrap()
            .map(|entry| entry.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["link", "pkg", "pkg/sub", "pkg/sub/m.py", "run"]);
    }
}
