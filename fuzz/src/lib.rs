//! What the fuzz targets check, shared between them.
//!
//! Extraction targets work in a fresh temporary directory and check, after each input:
//! - nothing appeared in the temporary directory outside the extraction's destination;
//! - no entry name that would land outside the temporary directory (absolute, or climbing out
//!   with `..`) created anything there that did not exist before;
//! - no symbolic link left in the destination points outside it.
//!
//! Panics are the findings: libFuzzer reports them with the input that caused them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use akpkg::lock::LockFileKind;

/// Parse `text` as a lock of `kind` read from a file named `file_name`.
pub fn parse_lock(kind: LockFileKind, file_name: &str, text: &str) {
    let path = Path::new("/fuzz").join(file_name);
    if let Ok(lock) = akpkg::lock::parse(kind, &path, text) {
        // Every distribution the reader accepted has a name to install it under.
        for package in &lock.packages {
            assert!(!package.name.as_ref().is_empty());
        }
    }
}

/// Unpack `bytes` as a wheel into a cache in a temporary directory.
pub fn extract_wheel(bytes: &[u8]) {
    let base = tempfile::tempdir().unwrap();
    let wheel = base.path().join("fuzz-1.0-py3-none-any.whl");
    std::fs::write(&wheel, bytes).unwrap();
    let cache = base.path().join("cache");
    // Entries land in CACHE/unpacked/sha256/<staging>/files/.
    let files = cache.join("unpacked/sha256/staging/files");
    let names = zip_entry_names(bytes);
    let outside = absent_targets_outside(base.path(), &files, &names);

    let sha256 = akpkg::digest::sha256_hex(bytes);
    let result = akpkg::install::unpack_cached(&wheel, None, &sha256, &cache, true);

    assert_still_absent(&outside);
    let unpacked = cache.join("unpacked/sha256").join(&sha256);
    let mut allowed = vec![
        wheel.clone(),
        cache.clone(),
        cache.join("unpacked"),
        cache.join("unpacked/sha256"),
    ];
    if result.is_ok() {
        allowed.push(unpacked.clone());
    }
    assert_only_within(base.path(), &allowed, &unpacked);
    assert_links_stay_within(&unpacked);
}

/// Unpack `bytes` as a tar archive into a destination in a temporary directory.
pub fn extract_tar(bytes: &[u8]) {
    extract_tar_checked(bytes, false);
}

/// Tar extraction into a destination that already holds links, two of them leading out (`up`
/// → the temporary directory, `root` → `/`) and one inside (`here` → `.`): no entry may be
/// written through the outward ones, whatever its name.
pub fn extract_tar_into_linked_destination(bytes: &[u8]) {
    extract_tar_checked(bytes, true);
}

fn extract_tar_checked(bytes: &[u8], plant_links: bool) {
    let base = tempfile::tempdir().unwrap();
    let archive = base.path().join("fuzz.tar");
    std::fs::write(&archive, bytes).unwrap();
    let destination = base.path().join("destination");
    std::fs::create_dir(&destination).unwrap();
    let planted = [("up", base.path()), ("root", Path::new("/"))];
    if plant_links {
        for (link, target) in planted {
            std::os::unix::fs::symlink(target, destination.join(link)).unwrap();
        }
        std::os::unix::fs::symlink(".", destination.join("here")).unwrap();
    }
    let names = tar_entry_names(bytes);
    let mut outside = absent_targets_outside(base.path(), &destination, &names);
    // Through the planted links: `up/x` is `base/x`, `root/x` is `/x`.
    if plant_links {
        for name in &names {
            for (link, target) in planted {
                if let Ok(rest) = name.strip_prefix(link)
                    && !rest.as_os_str().is_empty()
                {
                    let landing = lexically_normal(&target.join(rest));
                    if landing.symlink_metadata().is_err() {
                        outside.push(landing);
                    }
                }
            }
        }
    }

    let _ = akpkg::archive::unpack_tar(&archive, &destination);

    assert_still_absent(&outside);
    assert_only_within(
        base.path(),
        &[archive.clone(), destination.clone()],
        &destination,
    );
    // The planted links are the test's, not the archive's.
    if plant_links {
        for (link, _) in planted {
            let _ = std::fs::remove_file(destination.join(link));
        }
    }
    assert_links_stay_within(&destination);
}

fn zip_entry_names(bytes: &[u8]) -> Vec<PathBuf> {
    let Ok(mut archive) = zip::ZipArchive::new(std::io::Cursor::new(bytes)) else {
        return Vec::new();
    };
    (0..archive.len())
        .filter_map(|index| {
            let entry = archive.by_index_raw(index).ok()?;
            Some(PathBuf::from(OsStr::from_bytes(entry.name_raw())))
        })
        .collect()
}

fn tar_entry_names(bytes: &[u8]) -> Vec<PathBuf> {
    let mut names = Vec::new();
    let mut archive = tar::Archive::new(bytes);
    let Ok(entries) = archive.entries() else {
        return names;
    };
    for entry in entries {
        let Ok(mut entry) = entry else { break };
        names.push(PathBuf::from(OsStr::from_bytes(&entry.path_bytes())));
        if let Some(link) = entry.link_name_bytes() {
            names.push(PathBuf::from(OsStr::from_bytes(&link)));
        }
        let _ = std::io::copy(&mut entry.by_ref().take(u64::MAX), &mut std::io::sink());
    }
    names
}

/// Where each name would land if joined to `destination` without any check, for the names
/// that land outside `base` and name nothing that exists now.
fn absent_targets_outside(base: &Path, destination: &Path, names: &[PathBuf]) -> Vec<PathBuf> {
    names
        .iter()
        .map(|name| lexically_normal(&destination.join(name)))
        .filter(|target| !target.starts_with(base) && target.symlink_metadata().is_err())
        .collect()
}

fn assert_still_absent(targets: &[PathBuf]) {
    for target in targets {
        assert!(
            target.symlink_metadata().is_err(),
            "extraction created {} outside its directory",
            target.display()
        );
    }
}

/// Everything under `base` is one of `allowed`, or inside `tree`.
fn assert_only_within(base: &Path, allowed: &[PathBuf], tree: &Path) {
    for entry in walk(base) {
        assert!(
            allowed.contains(&entry) || entry.starts_with(tree),
            "extraction wrote {} outside its destination",
            entry.display()
        );
    }
}

/// Every symbolic link under `tree` resolves inside it.
fn assert_links_stay_within(tree: &Path) {
    for entry in walk(tree) {
        let Ok(metadata) = entry.symlink_metadata() else {
            continue;
        };
        if !metadata.file_type().is_symlink() {
            continue;
        }
        let target = std::fs::read_link(&entry).unwrap();
        let resolved = std::fs::canonicalize(&entry)
            .unwrap_or_else(|_| lexically_normal(&entry.parent().unwrap().join(&target)));
        let canonical_tree = std::fs::canonicalize(tree).unwrap();
        assert!(
            resolved.starts_with(&canonical_tree) || resolved.starts_with(tree),
            "link {} -> {} points outside {}",
            entry.display(),
            target.display(),
            tree.display()
        );
    }
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(directory) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&directory) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                pending.push(path.clone());
            }
            found.push(path);
        }
    }
    found
}

/// `path` with `.` and `..` applied to its text, as an unchecked join would resolve them.
fn lexically_normal(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    normal
}
