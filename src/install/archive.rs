//! Unpack a wheel once into the cache, refusing hostile entries and checking RECORD.
//!
//! `CACHE/unpacked-v1/sha256/<wheel hash>/` holds `files/` (the wheel's entries) and
//! `manifest.json` (what was checked). It is built in a temporary sibling and renamed into place,
//! so a half-unpacked wheel is never visible under its final name.

use std::collections::{BTreeMap, HashSet};
use std::io::BufReader;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::InstallError;
use super::record::{RecordEntry, parse_record, record_hash_of_digest};
use crate::contained::{Contained, ContainedError, Existing, FileMode};
use crate::identity::Sha256;
use crate::limits::{ArchiveBudget, Budgeted};
use crate::tags::WheelFilename;

/// A wheel whose entries are on disk, checked.
#[derive(Debug, Clone)]
pub struct UnpackedWheel {
    /// The `.whl` file, for messages.
    pub wheel: PathBuf,
    pub filename: WheelFilename,
    /// The directory holding the wheel's entries.
    pub files_directory: PathBuf,
    /// Every file with its actual hash and size, sorted by path.
    pub files: Vec<RecordEntry>,
    /// `name-version.dist-info`.
    pub dist_info: String,
    /// RECORD disagreed with the contents and verification was off.
    pub record_relaxed: bool,
    /// RECORD rows that wrote their digest as hex instead of urlsafe base64, all of them equal
    /// to the file's digest (accepted, with a warning).
    pub hex_digests: usize,
}

/// What an unpacking checked, bound to the wheel it came from.
#[derive(Serialize, Deserialize)]
struct UnpackedManifest {
    /// The sha256 of the wheel these files came from.
    wheel_sha256: Sha256,
    dist_info: String,
    /// Whether RECORD was checked and agreed.
    verified: bool,
    record_relaxed: bool,
    #[serde(default)]
    hex_digests: usize,
    /// Path, RECORD hash, size, and the stamp of the file as unpacked.
    files: Vec<(String, String, u64, FileStamp)>,
}

/// A file's inode and modification time, as unpacked: any write or replacement since changes
/// one of them, so a matching stamp (with the size) says the bytes are the ones hashed.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
struct FileStamp {
    inode: u64,
    modified_nanoseconds: i128,
}

impl FileStamp {
    /// The stamp of a regular file (never through a link), with its size.
    fn of(path: &Path) -> Option<(FileStamp, u64)> {
        use std::os::unix::fs::MetadataExt;
        let metadata = std::fs::symlink_metadata(path).ok()?;
        if !metadata.is_file() {
            return None;
        }
        let modified =
            i128::from(metadata.mtime()) * 1_000_000_000 + i128::from(metadata.mtime_nsec());
        Some((
            FileStamp {
                inode: metadata.ino(),
                modified_nanoseconds: modified,
            },
            metadata.len(),
        ))
    }
}

/// Whether an unpacked entry is still what its manifest says: bound to this wheel, and every
/// file a regular file with its size and stamp.
fn still_intact(directory: &Path, manifest: &UnpackedManifest, sha256: &Sha256) -> bool {
    use rayon::prelude::*;
    let files = directory.join("files");
    manifest.wheel_sha256 == *sha256
        && manifest
            .files
            .par_iter()
            .all(|(path, _, size, stamp)| FileStamp::of(&files.join(path)) == Some((*stamp, *size)))
}

/// Unpack `wheel` (whose sha256 is `sha256`) into the cache, or reuse an earlier unpacking.
pub fn unpack_cached(
    wheel: &Path,
    filename: Option<&str>,
    sha256: &Sha256,
    cache: &crate::cache::Cache,
    verify_record: bool,
    limits: &crate::limits::Limits,
) -> Result<UnpackedWheel, InstallError> {
    let filename = wheel_filename(wheel, filename)?;
    let parent = cache.bucket(crate::cache::Bucket::Unpacked).join("sha256");
    let final_directory = parent.join(sha256);

    // Reuse what an earlier run checked at least as strictly, if nothing changed since.
    if let Some(manifest) = read_manifest(&final_directory)
        && (manifest.verified || !verify_record)
    {
        if still_intact(&final_directory, &manifest, sha256) {
            return Ok(from_manifest(wheel, filename, &final_directory, manifest));
        }
        tracing::warn!(
            wheel = %wheel.display(),
            "its unpacked copy in the cache changed since it was checked; unpacking it again"
        );
        fs_err::remove_dir_all(&final_directory)
            .map_err(InstallError::io("cannot remove stale", &final_directory))?;
    }

    // The wheel's bytes are read only on a miss: check first that they are the pinned ones.
    let actual = Sha256::of_file(wheel).map_err(InstallError::io("cannot read", wheel))?;
    if actual != *sha256 {
        return Err(InstallError::ChangedWheel {
            wheel: wheel.to_path_buf(),
            expected: sha256.clone(),
            actual,
        });
    }

    let staging = crate::cache::incoming_dir_in(&parent)
        .map_err(InstallError::io("cannot create a directory in", &parent))?;
    let files_directory = staging.path().join("files");
    let extracted = extract(wheel, &files_directory, limits)?;
    let dist_info = find_dist_info(wheel, &filename, &extracted)?;
    let RecordCheck {
        relaxed: record_relaxed,
        hex_digests,
    } = check_record(
        wheel,
        &files_directory,
        &dist_info,
        &extracted,
        verify_record,
    )?;

    let files = extracted
        .iter()
        .map(|entry| {
            let (stamp, size) =
                FileStamp::of(&files_directory.join(&entry.path)).ok_or_else(|| {
                    InstallError::InvalidWheel {
                        wheel: wheel.to_path_buf(),
                        message: format!("`{}` vanished while it was unpacked", entry.path),
                    }
                })?;
            Ok((entry.path.clone(), entry.hash.clone(), size, stamp))
        })
        .collect::<Result<_, InstallError>>()?;
    let manifest = UnpackedManifest {
        wheel_sha256: sha256.clone(),
        dist_info,
        verified: verify_record,
        record_relaxed,
        hex_digests,
        files,
    };
    let manifest_json =
        serde_json::to_vec(&manifest).map_err(|error| InstallError::InvalidWheel {
            wheel: wheel.to_path_buf(),
            message: error.to_string(),
        })?;
    Contained::open(staging.path())?.write(
        Path::new("manifest.json"),
        &manifest_json,
        FileMode::Regular,
        Existing::Refuse,
    )?;

    // A stale, less strictly checked unpacking is replaced; a concurrent one that finished
    // first is as good as ours.
    if final_directory.exists() {
        if read_manifest(&final_directory).is_some_and(|existing| {
            (existing.verified || !verify_record)
                && still_intact(&final_directory, &existing, sha256)
        }) {
            return Ok(from_manifest(wheel, filename, &final_directory, manifest));
        }
        fs_err::remove_dir_all(&final_directory)
            .map_err(InstallError::io("cannot remove stale", &final_directory))?;
    }
    // Another process that published its copy first: that one is used, ours dropped.
    crate::cache::publish_dir(staging, &final_directory, |entry| {
        read_manifest(entry).is_some()
    })
    .map_err(InstallError::io("cannot move into place", &final_directory))?;
    Ok(from_manifest(wheel, filename, &final_directory, manifest))
}

fn wheel_filename(wheel: &Path, given: Option<&str>) -> Result<WheelFilename, InstallError> {
    let name = match given {
        Some(name) => name.to_string(),
        None => wheel
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    name.parse().map_err(
        |error: crate::tags::WheelFilenameError| InstallError::InvalidWheel {
            wheel: wheel.to_path_buf(),
            message: error.to_string(),
        },
    )
}

fn read_manifest(directory: &Path) -> Option<UnpackedManifest> {
    let text = fs_err::read(directory.join("manifest.json")).ok()?;
    serde_json::from_slice(&text).ok()
}

fn from_manifest(
    wheel: &Path,
    filename: WheelFilename,
    directory: &Path,
    manifest: UnpackedManifest,
) -> UnpackedWheel {
    UnpackedWheel {
        wheel: wheel.to_path_buf(),
        filename,
        files_directory: directory.join("files"),
        files: manifest
            .files
            .into_iter()
            .map(|(path, hash, size, _)| RecordEntry {
                path,
                hash,
                size: Some(size),
            })
            .collect(),
        dist_info: manifest.dist_info,
        record_relaxed: manifest.record_relaxed,
        hex_digests: manifest.hex_digests,
    }
}

/// Why an entry name is refused, if it is.
fn unsafe_entry_reason(name: &str) -> Option<&'static str> {
    if name.starts_with('/') || name.starts_with('\\') {
        return Some("absolute path");
    }
    if name.contains('\\') {
        return Some("backslash in path");
    }
    if name.contains('\0') {
        return Some("NUL byte in path");
    }
    let path = Path::new(name);
    for component in path.components() {
        match component {
            Component::ParentDir => return Some("`..` component escapes the destination"),
            Component::RootDir | Component::Prefix(_) => return Some("absolute path"),
            Component::CurDir | Component::Normal(_) => {}
        }
    }
    None
}

/// Extract every entry of `wheel` into `destination`, hashing as it writes. Every write goes
/// through [`Contained`]; the wheel's size bounds what it may unpack.
fn extract(
    wheel: &Path,
    destination: &Path,
    limits: &crate::limits::Limits,
) -> Result<Vec<RecordEntry>, InstallError> {
    let zip_error = |error: zip::result::ZipError| InstallError::Zip {
        wheel: wheel.to_path_buf(),
        message: error.to_string(),
    };
    let file = fs_err::File::open(wheel).map_err(InstallError::io("cannot open", wheel))?;
    let wheel_bytes = file
        .metadata()
        .map_err(InstallError::io("cannot read", wheel))?
        .len();
    let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(zip_error)?;
    if archive.has_duplicate_names() {
        return Err(InstallError::DuplicateEntry {
            wheel: wheel.to_path_buf(),
            entry: first_duplicate_name(wheel).unwrap_or_else(|| "(unknown)".to_string()),
        });
    }
    let root = Contained::create(destination)?;
    let mut budget = ArchiveBudget::new(wheel_bytes, limits);
    let mut extracted = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(zip_error)?;
        let name = entry.name().map_err(zip_error)?.into_owned();
        let refuse = |reason: String| InstallError::UnsafeEntry {
            wheel: wheel.to_path_buf(),
            entry: name.clone(),
            reason,
        };
        budget.entry().map_err(|error| refuse(error.to_string()))?;
        if let Some(reason) = unsafe_entry_reason(&name) {
            return Err(refuse(reason.to_string()));
        }
        if entry.is_symlink() {
            return Err(refuse(
                "symbolic links are not allowed in wheels".to_string(),
            ));
        }
        if entry.is_dir() {
            continue;
        }
        // Regular files only: no devices, FIFOs or sockets, whatever the zip claims.
        let mode = entry.unix_mode().unwrap_or(0o644);
        let file_type = mode & 0o170000;
        if file_type != 0 && file_type != 0o100000 {
            return Err(refuse(
                "only regular files are allowed in wheels".to_string(),
            ));
        }
        let mut budgeted = Budgeted {
            inner: &mut entry,
            budget: &mut budget,
            exceeded: None,
        };
        let mut hashing = crate::digest::HashingReader::new(&mut budgeted);
        let written = root.write_from(
            Path::new(&name),
            &mut hashing,
            FileMode::from_executable(mode & 0o111 != 0),
            Existing::Refuse,
        );
        let hash = hashing.digest();
        if let Some(limit) = budgeted.exceeded {
            return Err(refuse(limit.to_string()));
        }
        let size = written.map_err(|error| match error {
            ContainedError::Io(crate::path_io::PathIoError { source, .. })
                if source.kind() == std::io::ErrorKind::InvalidData
                    || source.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                InstallError::Zip {
                    wheel: wheel.to_path_buf(),
                    message: format!("cannot extract `{name}`: {source}"),
                }
            }
            other => other.into(),
        })?;
        extracted.push(RecordEntry {
            path: name,
            hash: record_hash_of_digest(&hash),
            size: Some(size),
        });
    }
    extracted.sort();
    Ok(extracted)
}

/// Name the first entry that appears twice, reading the local headers in order.
fn first_duplicate_name(wheel: &Path) -> Option<String> {
    let mut file = BufReader::new(fs_err::File::open(wheel).ok()?);
    let mut seen = HashSet::new();
    while let Ok(Some(mut entry)) = zip::read::read_zipfile_from_stream(&mut file) {
        let name = entry.name().ok()?.into_owned();
        std::io::copy(&mut entry, &mut std::io::sink()).ok()?;
        if !seen.insert(name.clone()) {
            return Some(name);
        }
    }
    None
}

/// The one top-level `.dist-info` directory, which must match the file name.
fn find_dist_info(
    wheel: &Path,
    filename: &WheelFilename,
    files: &[RecordEntry],
) -> Result<String, InstallError> {
    let mut directories: Vec<&str> = files
        .iter()
        .filter_map(|entry| entry.path.split_once('/'))
        .map(|(top, _)| top)
        .filter(|top| top.ends_with(".dist-info"))
        .collect();
    directories.dedup();
    let invalid = |message: String| InstallError::InvalidWheel {
        wheel: wheel.to_path_buf(),
        message,
    };
    let [dist_info] = directories[..] else {
        return Err(invalid(format!(
            "expected exactly one top-level .dist-info directory, found {}",
            if directories.is_empty() {
                "none".to_string()
            } else {
                directories.join(", ")
            }
        )));
    };
    // `Foo_Bar-1.0.dist-info` must name the same distribution as `foo_bar-1.0-…whl`.
    let stem = dist_info.trim_end_matches(".dist-info");
    let matches = stem.rsplit_once('-').is_some_and(|(name, version)| {
        pep508_rs::PackageName::new(name.to_string()).is_ok_and(|name| name == filename.name)
            && version
                .parse::<pep440_rs::Version>()
                .is_ok_and(|version| version == filename.version)
    });
    if !matches {
        return Err(invalid(format!(
            "its metadata directory `{dist_info}` does not match the file name's {} {}",
            filename.name, filename.version
        )));
    }
    Ok(dist_info.to_string())
}

/// What checking a RECORD found besides agreement.
struct RecordCheck {
    /// A disagreement was let through (`verify` off).
    relaxed: bool,
    /// Rows whose digest was hex, equal to the file's.
    hex_digests: usize,
}

/// Check every file against RECORD: same set, same hashes and sizes. A digest written as hex
/// (some backends do, uv's among them) counts when it is the file's digest.
fn check_record(
    wheel: &Path,
    files_directory: &Path,
    dist_info: &str,
    files: &[RecordEntry],
    verify: bool,
) -> Result<RecordCheck, InstallError> {
    let record_path = format!("{dist_info}/RECORD");
    let mismatch = |entry: &str, problem: String| InstallError::RecordMismatch {
        wheel: wheel.to_path_buf(),
        entry: entry.to_string(),
        problem,
    };
    let record_file = files_directory.join(&record_path);
    let text = fs_err::read(&record_file).map_err(|_| InstallError::InvalidWheel {
        wheel: wheel.to_path_buf(),
        message: format!("it has no {record_path}"),
    })?;
    let record = parse_record(&text).map_err(|message| InstallError::InvalidWheel {
        wheel: wheel.to_path_buf(),
        message,
    })?;
    let listed: BTreeMap<&str, &RecordEntry> = record
        .iter()
        .map(|entry| (entry.path.as_str(), entry))
        .collect();
    // "RECORD.jws and RECORD.p7s are not mentioned in RECORD" (signatures), nor RECORD's hash.
    let unhashed = [
        record_path.clone(),
        format!("{dist_info}/RECORD.jws"),
        format!("{dist_info}/RECORD.p7s"),
    ];

    let mut problems = Vec::new();
    let mut hex_digests = 0;
    for file in files {
        if unhashed.contains(&file.path) {
            continue;
        }
        let hex = listed
            .get(file.path.as_str())
            .is_some_and(|entry| is_hex_of(&entry.hash, &file.hash));
        hex_digests += usize::from(hex);
        match listed.get(file.path.as_str()) {
            None => problems.push(mismatch(&file.path, "the file is not listed".to_string())),
            Some(entry) if entry.hash != file.hash && !hex => problems.push(mismatch(
                &file.path,
                format!(
                    "RECORD says {}, the file has {}",
                    display_hash(&entry.hash),
                    file.hash
                ),
            )),
            Some(entry) if entry.size.is_some_and(|size| Some(size) != file.size) => {
                problems.push(mismatch(
                    &file.path,
                    format!(
                        "RECORD says {} bytes, the file has {}",
                        entry.size.unwrap_or_default(),
                        file.size.unwrap_or_default()
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    let present: HashSet<&str> = files.iter().map(|file| file.path.as_str()).collect();
    for entry in &record {
        if !entry.hash.is_empty() && !present.contains(entry.path.as_str()) {
            problems.push(mismatch(
                &entry.path,
                "listed, but not in the archive".to_string(),
            ));
        }
    }
    let relaxed = match problems.into_iter().next() {
        None => false,
        Some(first) if verify => return Err(first),
        Some(first) => {
            tracing::warn!(wheel = %wheel.display(), "installing despite a RECORD mismatch: {first}");
            true
        }
    };
    Ok(RecordCheck {
        relaxed,
        hex_digests,
    })
}

/// Whether `listed` is `sha256=<hex>` of the digest that `actual` (`sha256=<urlsafe base64>`,
/// as akpkg computes it) gives.
fn is_hex_of(listed: &str, actual: &str) -> bool {
    use base64::Engine;
    let (Some(hex), Some(encoded)) = (
        listed.strip_prefix("sha256="),
        actual.strip_prefix("sha256="),
    ) else {
        return false;
    };
    hex.len() == 64
        && base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded)
            .is_ok_and(|digest| hex.eq_ignore_ascii_case(&crate::digest::hex(&digest)))
}

fn display_hash(hash: &str) -> &str {
    if hash.is_empty() { "no hash" } else { hash }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_checked() {
        assert_eq!(unsafe_entry_reason("pkg/__init__.py"), None);
        assert_eq!(unsafe_entry_reason("./pkg/x.py"), None);
        assert_eq!(unsafe_entry_reason("/etc/passwd"), Some("absolute path"));
        assert_eq!(
            unsafe_entry_reason("pkg/../../x"),
            Some("`..` component escapes the destination")
        );
        assert_eq!(unsafe_entry_reason("..\\x"), Some("backslash in path"));
    }

    #[test]
    fn a_wheel_that_changed_since_it_was_pinned_is_not_unpacked() {
        let directory = tempfile::tempdir().unwrap();
        let wheel = directory.path().join("tiny-1.0-py3-none-any.whl");
        fs_err::write(&wheel, b"not the pinned bytes").unwrap();
        let pinned: Sha256 = "0".repeat(64).parse().unwrap();
        let error = unpack_cached(
            &wheel,
            None,
            &pinned,
            &crate::cache::Cache::new(directory.path()),
            true,
            &crate::limits::Limits::default(),
        )
        .unwrap_err()
        .to_string()
        .replace(&directory.path().display().to_string(), "[TMP]");
        insta::assert_snapshot!(error, @"[TMP]/tiny-1.0-py3-none-any.whl: its sha256 is efceeaf5fb56a1ccd6fa9bc35662058ea2af228ad6f8275d2b697ced3244d795, not the pinned 0000000000000000000000000000000000000000000000000000000000000000: the file changed after it was fetched. `akpkg cache verify` removes changed files from the cache; run again to download it anew");
        assert!(!directory.path().join("unpacked-v1").exists());
    }
}
