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

use crate::contained::{Contained, ContainedError, Existing, FileMode, contained_path};
use crate::limits::{ArchiveBudget, Budgeted};

/// Why an archive could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Io(#[from] crate::path_io::PathIoError),
    #[error("{archive}: refusing entry `{entry}`: {reason}")]
    Unsafe {
        archive: PathBuf,
        entry: String,
        reason: String,
    },
    #[error(transparent)]
    Contained(#[from] ContainedError),
    #[error("{path} is a device, socket or fifo; no tree akpkg archives or copies holds one")]
    SpecialFile { path: PathBuf },
    #[error("{path}: the name is not UTF-8; akpkg archives only UTF-8 names")]
    NotUtf8 { path: PathBuf },
    #[error(
        "{path} is a symbolic link that resolves outside the tree being copied (through the \
         links on its way, not just as written); no link of it was kept"
    )]
    LinkEscapes { path: PathBuf },
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError {
    crate::path_io::io(action, path)
}

/// The single top-level directory of `root`, as a forge's archive or an sdist wraps its tree
/// (`authentik-version-2025.12.4/`, `name-version/`): `None` when `root` holds anything else,
/// or when its one entry is a file or a link.
pub fn single_top_level_directory(root: &Path) -> Result<Option<PathBuf>, ArchiveError> {
    let mut entries = fs_err::read_dir(root).map_err(io_error("cannot read", root))?;
    let Some(first) = entries.next() else {
        return Ok(None);
    };
    let first = first.map_err(io_error("cannot read", root))?;
    if entries.next().is_some() {
        return Ok(None);
    }
    let kind = first
        .file_type()
        .map_err(io_error("cannot read", &first.path()))?;
    Ok(kind.is_dir().then(|| first.path()))
}

/// Unpack a tar archive (plain or gzip-compressed, told apart by its first bytes) into
/// `destination`, which must exist. Every write goes through [`Contained`]; the archive's size
/// bounds what it may unpack within `limits`.
pub fn unpack_tar(
    archive: &Path,
    destination: &Path,
    limits: &crate::limits::Limits,
) -> Result<(), ArchiveError> {
    let (stream, archive_bytes) = tar_stream(archive)?;
    let root = Contained::open(destination)?;
    let mut unpacker = Unpacker {
        archive: archive.to_path_buf(),
        root: &root,
        budget: ArchiveBudget::new(archive_bytes, limits),
        links: Vec::new(),
    };
    unpacker.unpack(stream)
}

/// A tar archive's entries, gunzipped when the file starts like gzip, and the file's size.
fn tar_stream(archive: &Path) -> Result<(Box<dyn Read>, u64), ArchiveError> {
    let file = fs_err::File::open(archive).map_err(io_error("cannot open", archive))?;
    let archive_bytes = file
        .metadata()
        .map_err(io_error("cannot read", archive))?
        .len();
    let mut reader = BufReader::new(file);
    let start =
        std::io::BufRead::fill_buf(&mut reader).map_err(io_error("cannot read", archive))?;
    if start.starts_with(&[0x1f, 0x8b]) {
        Ok((
            Box::new(flate2::read::GzDecoder::new(reader)),
            archive_bytes,
        ))
    } else {
        Ok((Box::new(reader), archive_bytes))
    }
}

/// The bytes of `TOP/name` in a tar archive, where TOP is its first entry's top-level
/// directory (an sdist's `name-version/`), read without unpacking anything else; `None` when
/// there is no such file or it is larger than `limit`.
pub fn read_top_level_file(
    archive: &Path,
    name: &str,
    limit: u64,
) -> Result<Option<Vec<u8>>, ArchiveError> {
    let (stream, _) = tar_stream(archive)?;
    let mut entries = tar::Archive::new(stream);
    let mut top = None;
    for entry in entries
        .entries()
        .map_err(io_error("cannot read", archive))?
    {
        let mut entry = entry.map_err(io_error("cannot read", archive))?;
        let path = entry
            .path()
            .map_err(io_error("cannot read", archive))?
            .into_owned();
        let mut components = path
            .components()
            .filter(|part| !matches!(part, Component::CurDir));
        let first = components.next().map(|part| part.as_os_str().to_owned());
        let top = top.get_or_insert(first.clone());
        let rest: PathBuf = components.collect();
        let is_file = entry.header().entry_type().is_file();
        if is_file && first == *top && rest == Path::new(name) {
            if entry.size() > limit {
                return Ok(None);
            }
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(io_error("cannot read", archive))?;
            return Ok(Some(bytes));
        }
    }
    Ok(None)
}

/// One tar extraction: the destination, what it has unpacked, and the links it made.
struct Unpacker<'a> {
    archive: PathBuf,
    root: &'a Contained,
    budget: ArchiveBudget,
    /// Symbolic links this archive created, checked for real once it is complete; no later
    /// entry may be written through one.
    links: Vec<(String, PathBuf)>,
}

impl Unpacker<'_> {
    fn refuse(&self, entry: &Path, reason: impl Into<String>) -> ArchiveError {
        ArchiveError::Unsafe {
            archive: self.archive.clone(),
            entry: entry.display().to_string(),
            reason: reason.into(),
        }
    }

    fn unpack(&mut self, reader: impl Read) -> Result<(), ArchiveError> {
        let unpacked = self.unpack_entries(reader);
        // Links are judged on the tree as it stands, complete or cut short by a refusal: a later
        // entry can change what an earlier link resolves to. One that leads outside is removed
        // either way, so not even a failed extraction leaves a way out behind.
        let mut escaping = None;
        for (name, relative) in &self.links {
            if self.root.check_link(relative).is_err() {
                self.root.remove_file(relative)?;
                escaping.get_or_insert_with(|| name.clone());
            }
        }
        unpacked?;
        match escaping {
            Some(name) => Err(self.refuse(
                Path::new(&name),
                "a symbolic link that resolves outside the destination",
            )),
            None => Ok(()),
        }
    }

    fn unpack_entries(&mut self, reader: impl Read) -> Result<(), ArchiveError> {
        let mut archive = tar::Archive::new(reader);
        let entries = archive
            .entries()
            .map_err(io_error("cannot read", &self.archive))?;
        for entry in entries {
            let entry = entry.map_err(io_error("cannot read", &self.archive))?;
            self.entry(entry)?;
        }
        Ok(())
    }

    fn entry(&mut self, mut entry: tar::Entry<impl Read>) -> Result<(), ArchiveError> {
        let name = entry
            .path()
            .map_err(io_error("cannot read", &self.archive))?
            .into_owned();
        let kind = entry.header().entry_type();
        // Metadata entries carry no file (pax headers of `git archive` hold the commit id).
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            return Ok(());
        }
        self.budget
            .entry()
            .map_err(|error| self.refuse(&name, error.to_string()))?;
        if name.is_absolute() {
            return Err(self.refuse(&name, "its path is absolute"));
        }
        let Some(relative) = contained_path(&name) else {
            return Err(self.refuse(&name, "its path leaves the destination through `..`"));
        };
        if relative.as_os_str().is_empty() {
            return Ok(());
        }
        if let Some((link, _)) = self
            .links
            .iter()
            .find(|(_, link)| relative.starts_with(link) && relative != *link)
        {
            return Err(self.refuse(
                &name,
                format!("its path passes through the symbolic link `{link}` the archive made"),
            ));
        }
        if let Some(parent) = relative
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            self.root.create_dir_all(parent)?;
        }
        if kind.is_dir() {
            self.root.create_dir_all(&relative)?;
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            self.file(&name, &relative, &mut entry)?;
        } else if kind.is_symlink() {
            let link = self.link_name(&name, &entry, "a symbolic link without a target")?;
            self.root.remove_file(&relative)?;
            self.root
                .symlink(&relative, &link)
                .map_err(|error| match error {
                    ContainedError::Escapes { .. } => {
                        self.refuse(&name, "a symbolic link that points outside the destination")
                    }
                    other => other.into(),
                })?;
            self.links.push((name.display().to_string(), relative));
        } else if kind.is_hard_link() {
            let link = self.link_name(&name, &entry, "a hard link without a target")?;
            self.hard_link(&name, &relative, &link)?;
        } else {
            return Err(self.refuse(
                &name,
                "it is a device, fifo or other special file, which no source tree needs",
            ));
        }
        Ok(())
    }

    fn link_name(
        &self,
        name: &Path,
        entry: &tar::Entry<impl Read>,
        missing: &'static str,
    ) -> Result<PathBuf, ArchiveError> {
        Ok(entry
            .link_name()
            .map_err(io_error("cannot read", &self.archive))?
            .ok_or_else(|| self.refuse(name, missing))?
            .into_owned())
    }

    fn file(
        &mut self,
        name: &Path,
        relative: &Path,
        entry: &mut tar::Entry<impl Read>,
    ) -> Result<(), ArchiveError> {
        let mode = entry.header().mode().unwrap_or(0o644);
        let mut budgeted = Budgeted {
            inner: entry,
            budget: &mut self.budget,
            exceeded: None,
        };
        // An earlier entry of the same name (or a link) is replaced, never written through.
        let written = self.root.write_from(
            relative,
            &mut budgeted,
            FileMode::from_executable(mode & 0o111 != 0),
            Existing::Replace,
        );
        if let Some(limit) = budgeted.exceeded {
            return Err(self.refuse(name, limit.to_string()));
        }
        written?;
        Ok(())
    }

    /// A hard link names another entry of the archive, by its path from the root.
    fn hard_link(&self, name: &Path, relative: &Path, link: &Path) -> Result<(), ArchiveError> {
        let Some(source) = contained_path(link).filter(|path| !path.as_os_str().is_empty()) else {
            return Err(self.refuse(name, "a hard link that points outside the destination"));
        };
        if self.links.iter().any(|(_, link)| source.starts_with(link)) {
            return Err(self.refuse(name, "a hard link through a symbolic link"));
        }
        if !self
            .root
            .entry_type(&source)
            .is_some_and(|kind| kind.is_file())
        {
            return Err(self.refuse(name, "a hard link to a file not (yet) in the archive"));
        }
        self.root.remove_file(relative)?;
        self.root.hard_link_within(&source, relative)?;
        Ok(())
    }
}

/// How [`write_tree_tar`] names and stamps entries.
#[derive(Debug, Clone, Default)]
pub struct TarOptions {
    /// Where the tree sits in the archive (`opt/authentik`, without slashes at the ends): its
    /// parent directories and itself get entries, and every name starts with it. Empty: the
    /// tree's contents are at the archive's root.
    pub root: String,
    /// Owner and group of every entry.
    pub owner: (u64, u64),
    /// Every entry's mtime.
    pub mtime: u64,
}

/// Write the tree below `directory` as a deterministic tar: sorted paths, each directory before
/// its contents (named with a trailing `/`), owner and mtime from `options`, modes 0755
/// (directories and executables), 0644 (other files) or 0777 (links), symbolic links kept as
/// links and hard links as hard links (the first path of an inode holds the data). Devices,
/// fifos and sockets are refused, and so are names that are not UTF-8 (two of them could become
/// one name in the archive). Returns the writer and the number of entries.
pub fn write_tree_tar<W: std::io::Write>(
    directory: &Path,
    writer: W,
    options: &TarOptions,
) -> Result<(W, usize), ArchiveError> {
    let mut builder = tar::Builder::new(writer);
    builder.follow_symlinks(false);
    let header_for = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_uid(options.owner.0);
        header.set_gid(options.owner.1);
        header.set_mtime(options.mtime);
        header
    };
    let mut entries = 0;
    let append_error =
        |path: &Path| crate::path_io::io::<ArchiveError>("cannot append to the archive", path);
    // The tree's parents in the archive: `opt/`, then `opt/authentik/` below.
    let parts: Vec<&str> = options
        .root
        .split('/')
        .filter(|part| !part.is_empty())
        .collect();
    for depth in 1..parts.len() {
        let mut header = header_for(tar::EntryType::Directory, 0o755, 0);
        let name = format!("{}/", parts[..depth].join("/"));
        builder
            .append_data(&mut header, name, std::io::empty())
            .map_err(append_error(directory))?;
        entries += 1;
    }
    let mut first_paths: std::collections::HashMap<(u64, u64), String> =
        std::collections::HashMap::new();
    let walk = walkdir::WalkDir::new(directory)
        .min_depth(usize::from(parts.is_empty()))
        .sort_by_file_name()
        .follow_links(false);
    for entry in walk {
        let entry = entry.map_err(|error| {
            ArchiveError::Io(crate::path_io::PathIoError::new(
                "cannot read",
                error.path().unwrap_or(directory).to_path_buf(),
                error.into(),
            ))
        })?;
        let path = entry.path();
        let name = archive_name(directory, path, &options.root)?;
        let metadata = fs_err::symlink_metadata(path).map_err(io_error("cannot read", path))?;
        if metadata.is_symlink() {
            let target = fs_err::read_link(path).map_err(io_error("cannot read", path))?;
            let mut header = header_for(tar::EntryType::Symlink, 0o777, 0);
            builder
                .append_link(&mut header, &name, &target)
                .map_err(append_error(path))?;
        } else if metadata.is_dir() {
            let mut header = header_for(tar::EntryType::Directory, 0o755, 0);
            builder
                .append_data(&mut header, format!("{name}/"), std::io::empty())
                .map_err(append_error(path))?;
        } else if metadata.is_file() {
            use std::os::unix::fs::MetadataExt;
            let key = (metadata.dev(), metadata.ino());
            if metadata.nlink() > 1 {
                if let Some(first) = first_paths.get(&key) {
                    let mut header = header_for(tar::EntryType::Link, 0o644, 0);
                    builder
                        .append_link(&mut header, &name, first)
                        .map_err(append_error(path))?;
                    entries += 1;
                    continue;
                }
                first_paths.insert(key, name.clone());
            }
            let executable = metadata.permissions().mode() & 0o111 != 0;
            let mut header = header_for(
                tar::EntryType::Regular,
                if executable { 0o755 } else { 0o644 },
                metadata.len(),
            );
            let file = fs_err::File::open(path).map_err(io_error("cannot open", path))?;
            builder
                .append_data(&mut header, &name, file)
                .map_err(append_error(path))?;
        } else {
            return Err(ArchiveError::SpecialFile {
                path: path.to_path_buf(),
            });
        }
        entries += 1;
    }
    let writer = builder
        .into_inner()
        .map_err(io_error("cannot finish the archive of", directory))?;
    Ok((writer, entries))
}

/// An entry's name in the archive: `root/relative`, UTF-8 only.
fn archive_name(directory: &Path, path: &Path, root: &str) -> Result<String, ArchiveError> {
    let relative = path.strip_prefix(directory).unwrap_or(path);
    let Some(relative) = relative.to_str() else {
        return Err(ArchiveError::NotUtf8 {
            path: path.to_path_buf(),
        });
    };
    let root = root.trim_matches('/');
    Ok(match (root.is_empty(), relative.is_empty()) {
        (true, _) => relative.to_string(),
        (false, true) => root.to_string(),
        (false, false) => format!("{root}/{relative}"),
    })
}

/// Unpack `archive` into `into` and return its tree: the one top-level directory a forge's or
/// an sdist's archive wraps it in, else `into` itself. The one unpack-and-find-the-tree for
/// the stages that take a source archive (lock, release new, build-wheel).
pub fn unpack_tree(
    archive: &Path,
    into: &Path,
    limits: &crate::limits::Limits,
) -> Result<PathBuf, ArchiveError> {
    unpack_tar(archive, into, limits)?;
    Ok(single_top_level_directory(into)?.unwrap_or_else(|| into.to_path_buf()))
}

/// Copy a directory's files, symbolic links and executable bits into `to` (which must exist),
/// leaving out entries with the names in `skip` at any depth. Links must stay inside the copy,
/// resolved for real once the copy is complete (as the tar extractor does: a chain of links that
/// descends and climbs back passes a textual check); fifos, devices and sockets are refused
/// (reading a fifo would wait forever). Nothing is read through a link: the walk does not
/// follow them.
pub fn copy_tree(from: &Path, to: &Path, skip: &[&str]) -> Result<(), ArchiveError> {
    copy_tree_under(from, to, Path::new(""), skip)
}

/// [`copy_tree`] into `root/under`, with links allowed anywhere inside `root` (a tree copied
/// beside its siblings, whose links point at them: authentik's `website/static/blueprints`).
pub fn copy_tree_under(
    from: &Path,
    root: &Path,
    under: &Path,
    skip: &[&str],
) -> Result<(), ArchiveError> {
    let root = Contained::open(root)?;
    if !under.as_os_str().is_empty() {
        root.create_dir_all(under)?;
    }
    let walk = walkdir::WalkDir::new(from)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| {
            !skip
                .iter()
                .any(|name| entry.file_name() == std::ffi::OsStr::new(name))
        });
    let mut links = Vec::new();
    let copied = copy_entries(walk, from, &root, under, &mut links);
    // Judged on the tree as it stands, complete or cut short: a later entry can change what an
    // earlier link resolves to. Every escaping link is removed, so no failure leaves one.
    let mut escaping = None;
    for (source, relative) in &links {
        if root.check_link(relative).is_err() {
            root.remove_file(relative)?;
            escaping.get_or_insert_with(|| source.clone());
        }
    }
    copied?;
    match escaping {
        Some(path) => Err(ArchiveError::LinkEscapes { path }),
        None => Ok(()),
    }
}

/// The walk's entries into `root/under`; each link made is noted in `links` (its source path
/// and its place in `root`).
fn copy_entries(
    walk: impl Iterator<Item = walkdir::Result<walkdir::DirEntry>>,
    from: &Path,
    root: &Contained,
    under: &Path,
    links: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<(), ArchiveError> {
    for entry in walk {
        let entry = entry.map_err(|error| {
            ArchiveError::Io(crate::path_io::PathIoError::new(
                "cannot read",
                error.path().unwrap_or(from).to_path_buf(),
                error.into(),
            ))
        })?;
        let relative = under.join(entry.path().strip_prefix(from).unwrap_or(entry.path()));
        let kind = entry.file_type();
        if kind.is_symlink() {
            let link =
                fs_err::read_link(entry.path()).map_err(io_error("cannot read", entry.path()))?;
            root.symlink(&relative, &link)?;
            links.push((entry.path().to_path_buf(), relative));
        } else if kind.is_dir() {
            root.create_dir_all(&relative)?;
        } else if kind.is_file() {
            root.place(entry.path(), &relative, crate::contained::LinkMode::Copy)?;
        } else {
            return Err(ArchiveError::SpecialFile {
                path: entry.path().to_path_buf(),
            });
        }
    }
    Ok(())
}

/// Hand-made tar archives for tests: the `tar` crate's builder refuses the hostile names and
/// links that tests need.
#[cfg(test)]
pub(crate) mod test_archives {
    /// One raw tar entry: name, kind, link target, content.
    pub type RawEntry<'a> = (&'a str, tar::EntryType, Option<&'a str>, &'a [u8]);

    /// A tar of raw entries.
    pub fn raw_entries(entries: &[RawEntry]) -> Vec<u8> {
        let mut archive = Vec::new();
        for (name, kind, link, content) in entries {
            let mut header = tar::Header::new_gnu();
            {
                let bytes = header.as_old_mut();
                bytes.name[..name.len()].copy_from_slice(name.as_bytes());
                if let Some(link) = link {
                    bytes.linkname[..link.len()].copy_from_slice(link.as_bytes());
                }
            }
            header.set_entry_type(*kind);
            header.set_mode(0o644);
            header.set_size(content.len() as u64);
            header.set_cksum();
            archive.extend_from_slice(header.as_bytes());
            archive.extend_from_slice(content);
            archive.extend(vec![0u8; (512 - content.len() % 512) % 512]);
        }
        archive.extend(vec![0u8; 1024]);
        archive
    }
}

#[cfg(test)]
mod tests {
    use super::test_archives::{RawEntry, raw_entries};
    use super::*;

    #[test]
    fn only_a_lone_real_directory_is_a_top_level_directory() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(single_top_level_directory(root.path()).unwrap(), None);
        let wrapped = root.path().join("name-1.0");
        fs_err::create_dir(&wrapped).unwrap();
        assert_eq!(
            single_top_level_directory(root.path()).unwrap(),
            Some(wrapped.clone())
        );
        fs_err::write(root.path().join("PKG-INFO"), "").unwrap();
        assert_eq!(single_top_level_directory(root.path()).unwrap(), None);
        let linked = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&wrapped, linked.path().join("link")).unwrap();
        assert_eq!(single_top_level_directory(linked.path()).unwrap(), None);
    }

    /// A tar with one raw entry, its name written into the header as is (the `tar` crate's
    /// builder refuses `..`, which is what a hostile archive would carry).
    fn raw_tar(name: &str, kind: tar::EntryType, link: Option<&str>) -> Vec<u8> {
        let content: &[u8] = if kind.is_file() { b"hi" } else { b"" };
        raw_entries(&[(name, kind, link, content)])
    }

    fn unpack_bytes(bytes: &[u8]) -> (tempfile::TempDir, Result<(), ArchiveError>) {
        let directory = tempfile::tempdir().unwrap();
        let archive = directory.path().join("a.tar");
        fs_err::write(&archive, bytes).unwrap();
        let destination = directory.path().join("out");
        fs_err::create_dir(&destination).unwrap();
        let result = unpack_tar(&archive, &destination, &crate::limits::Limits::default());
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
        write_tree_tar(&tree, &mut first, &TarOptions::default()).unwrap();
        // The same files with other timestamps and umask give the same bytes.
        fs_err::set_permissions(tree.join("pkg"), std::fs::Permissions::from_mode(0o700)).unwrap();
        let mut second = Vec::new();
        write_tree_tar(&tree, &mut second, &TarOptions::default()).unwrap();
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
        assert_eq!(names, ["link", "pkg/", "pkg/sub/", "pkg/sub/m.py", "run"]);
    }

    /// Every path below `directory`, relative, sorted.
    fn listing(directory: &Path) -> Vec<String> {
        let mut names: Vec<String> = walkdir::WalkDir::new(directory)
            .min_depth(1)
            .into_iter()
            .map(|entry| {
                let entry = entry.unwrap();
                entry
                    .path()
                    .strip_prefix(directory)
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_chain_of_links_cannot_carry_a_later_entry_outside() {
        use tar::EntryType::{Link, Regular, Symlink};
        // `a` → `.`, so `a/a/a` is the root, and `a/a/a/x` → `../../..` looks inside lexically
        // (three levels down, three up) but is the destination's grandparent for real.
        let hostile: [&[RawEntry]; 5] = [
            &[
                ("a", Symlink, Some("."), b""),
                ("a/a/a/x", Symlink, Some("../../.."), b""),
                ("a/a/a/x/evil", Regular, None, b"pwned"),
            ],
            &[
                ("a", Symlink, Some("."), b""),
                ("a/a/a/x", Symlink, Some("../../.."), b""),
            ],
            &[
                ("d", Symlink, Some("."), b""),
                ("d/evil", Regular, None, b"pwned"),
            ],
            &[
                ("f", Regular, None, b"data"),
                ("l", Symlink, Some("."), b""),
                ("h", Link, Some("l/f"), b""),
            ],
            // No entry passes through a link, but `x` resolves through `d1/d2/a` (→ `d1`).
            &[
                ("d1/d2/keep", Regular, None, b""),
                ("d1/d2/a", Symlink, Some(".."), b""),
                ("x", Symlink, Some("d1/d2/a/../.."), b""),
            ],
        ];
        let mut messages = Vec::new();
        for entries in hostile {
            let (directory, result) = unpack_bytes(&raw_entries(entries));
            let error = result.unwrap_err().to_string();
            messages.push(error.replace(&directory.path().display().to_string(), "[TMP]"));
            // Nothing beside the archive and the destination, nothing named evil anywhere.
            let outside = listing(directory.path());
            assert!(
                outside
                    .iter()
                    .all(|name| name == "a.tar" || name.starts_with("out")),
                "{outside:?}"
            );
            assert!(
                !outside.iter().any(|name| name.ends_with("evil")),
                "{outside:?}"
            );
        }
        insta::assert_snapshot!(messages.join("\n"), @r"
        [TMP]/a.tar: refusing entry `a/a/a/x`: its path passes through the symbolic link `a` the archive made
        [TMP]/a.tar: refusing entry `a/a/a/x`: its path passes through the symbolic link `a` the archive made
        [TMP]/a.tar: refusing entry `d/evil`: its path passes through the symbolic link `d` the archive made
        [TMP]/a.tar: refusing entry `h`: a hard link through a symbolic link
        [TMP]/a.tar: refusing entry `x`: a symbolic link that resolves outside the destination
        ");
    }

    #[test]
    fn an_archive_that_inflates_without_bound_is_cut_off() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        {
            let mut builder = tar::Builder::new(&mut gz);
            let mut header = tar::Header::new_gnu();
            header.set_size(80 * 1024 * 1024);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(
                    &mut header,
                    "zeros",
                    std::io::repeat(0).take(80 * 1024 * 1024),
                )
                .unwrap();
            builder.finish().unwrap();
        }
        let bytes = gz.finish().unwrap();
        let (directory, result) = unpack_bytes(&bytes);
        let error = result.unwrap_err().to_string();
        assert!(error.contains("--max-compression-ratio"), "{error}");
        let written = fs_err::metadata(directory.path().join("out/zeros"))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(
            written <= crate::limits::RATIO_FLOOR + 1024 * 1024,
            "{written}"
        );
    }

    #[test]
    fn copying_a_tree_refuses_fifos_instead_of_waiting_on_them() {
        let directory = tempfile::tempdir().unwrap();
        let tree = directory.path().join("tree");
        fs_err::create_dir_all(&tree).unwrap();
        fs_err::write(tree.join("a.py"), "x").unwrap();
        crate::path_io::make_fifo(&tree.join("pipe"));
        let to = directory.path().join("to");
        fs_err::create_dir_all(&to).unwrap();
        let error = copy_tree(&tree, &to, &[]).unwrap_err().to_string();
        assert!(error.contains("device, socket or fifo"), "{error}");
        let mut tar = Vec::new();
        let error = write_tree_tar(&tree, &mut tar, &TarOptions::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("device, socket or fifo"), "{error}");
    }

    #[test]
    fn names_that_are_not_utf8_are_refused_in_archives() {
        use std::os::unix::ffi::OsStrExt;
        let directory = tempfile::tempdir().unwrap();
        let tree = directory.path().join("tree");
        fs_err::create_dir_all(&tree).unwrap();
        fs_err::write(tree.join(std::ffi::OsStr::from_bytes(b"a\xff")), "1").unwrap();
        fs_err::write(tree.join(std::ffi::OsStr::from_bytes(b"a\xfe")), "2").unwrap();
        let error = write_tree_tar(&tree, Vec::new(), &TarOptions::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("not UTF-8"), "{error}");
    }

    #[test]
    fn a_chain_of_links_that_climbs_back_out_is_not_copied() {
        let directory = tempfile::tempdir().unwrap();
        fs_err::write(directory.path().join("secret"), "outside").unwrap();
        let tree = directory.path().join("tree");
        fs_err::create_dir_all(&tree).unwrap();
        // `sub/../secret` is `secret` as written, inside; through `sub` (→ `.`) it is the
        // tree's parent's `secret`.
        std::os::unix::fs::symlink(".", tree.join("sub")).unwrap();
        std::os::unix::fs::symlink("sub/../secret", tree.join("leak")).unwrap();
        std::os::unix::fs::symlink("sub", tree.join("fine")).unwrap();
        let to = directory.path().join("to");
        fs_err::create_dir_all(&to).unwrap();
        let error = copy_tree(&tree, &to, &[]).unwrap_err();
        assert!(matches!(error, ArchiveError::LinkEscapes { .. }), "{error}");
        assert!(error.to_string().contains("tree/leak"), "{error}");
        assert!(fs_err::symlink_metadata(to.join("leak")).is_err());
        assert!(fs_err::symlink_metadata(to.join("fine")).is_ok());
    }

    /// Every link in `root`, followed for real, stays inside it (or leads nowhere).
    fn links_stay_inside(root: &Path) -> Result<(), String> {
        let real_root = fs_err::canonicalize(root).unwrap();
        for entry in walkdir::WalkDir::new(root).min_depth(1) {
            let entry = entry.unwrap();
            if entry.file_type().is_symlink()
                && let Ok(real) = fs_err::canonicalize(entry.path())
                && !real.starts_with(&real_root)
            {
                return Err(format!("{} → {}", entry.path().display(), real.display()));
            }
        }
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 256, ..Default::default() })]
        /// Whatever chain of relative links a directory holds, a copy keeps none that leads
        /// outside the copy when followed, and writes nothing outside it.
        #[test]
        fn no_chain_of_links_in_a_copied_tree_leads_outside(links in proptest::collection::vec(
            (
                proptest::sample::select(vec!["a", "b", "d/a", "d/b", "d/e/a", "c"]),
                proptest::sample::select(vec![".", "..", "../..", "a", "../a", "d", "d/..", "a/..", "a/../..", "b/../x", "d/e", "../x", "x", "c/../../x"]),
            ),
            1..10,
        )) {
            let sandbox = tempfile::tempdir().unwrap();
            fs_err::write(sandbox.path().join("x"), "outside").unwrap();
            let tree = sandbox.path().join("one/tree");
            fs_err::create_dir_all(tree.join("d/e")).unwrap();
            for (name, target) in &links {
                let _ = std::os::unix::fs::symlink(target, tree.join(name));
            }
            let to = sandbox.path().join("one/to");
            fs_err::create_dir_all(&to).unwrap();
            let _ = copy_tree(&tree, &to, &[]);
            proptest::prop_assert!(links_stay_inside(&to).is_ok(), "{:?}", links_stay_inside(&to));
            proptest::prop_assert_eq!(fs_err::read_to_string(sandbox.path().join("x")).unwrap(), "outside");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 256, ..Default::default() })]
        /// Whatever sequence of files, directories, symbolic and hard links an archive holds,
        /// with whatever relative or absolute targets, nothing appears outside the root.
        #[test]
        fn no_sequence_of_entries_writes_outside(entries in proptest::collection::vec(
            (
                proptest::sample::select(vec!["a", "b", "a/b", "a/a", "b/a/c", "x", "a/x", "../x", "a/../x", "a/a/a/x", "b/../../x"]),
                0u8..4,
                proptest::sample::select(vec![".", "..", "../..", "a", "../a", "/tmp", "/", "a/..", "../../..", "b/../..", "x", "a/x"]),
            ),
            1..12,
        )) {
            let raw: Vec<RawEntry> = entries
                .iter()
                .map(|(name, kind, target)| match kind {
                    0 => (*name, tar::EntryType::Regular, None, &b"escaped"[..]),
                    1 => (*name, tar::EntryType::Directory, None, &b""[..]),
                    2 => (*name, tar::EntryType::Symlink, Some(*target), &b""[..]),
                    _ => (*name, tar::EntryType::Link, Some(*target), &b""[..]),
                })
                .collect();
            let sandbox = tempfile::tempdir().unwrap();
            // The extraction root sits two levels down, so `..` and `../..` land in the sandbox.
            let inner = sandbox.path().join("one/two");
            fs_err::create_dir_all(inner.join("out")).unwrap();
            let archive = inner.join("a.tar");
            fs_err::write(&archive, raw_entries(&raw)).unwrap();
            let _ = unpack_tar(
                &archive,
                &inner.join("out"),
                &crate::limits::Limits::default(),
            );
            let everything = listing(sandbox.path());
            proptest::prop_assert!(
                everything.iter().all(|name| name == "one" || name == "one/two" || name == "one/two/a.tar" || name.starts_with("one/two/out")),
                "{everything:?}"
            );
        }
    }
}
