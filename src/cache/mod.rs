//! akpkg's cache: the one place that knows its layout, and the only way to write into it.
//!
//! Modelled on uv-cache. Each kind of entry lives in a [`Bucket`] whose directory name carries
//! the bucket's format version (`built-v1`, `npm-v1`): when an entry's format changes, the
//! version goes up and a new bucket starts empty, instead of an old entry being misread.
//!
//! Entries are written beside their final name (an `.incoming-*` file or directory in the same
//! bucket, so the rename stays on one file system) and then published by one rename:
//! [`publish_file`] and [`publish_dir`]. A reader sees a whole entry or none. Builders that share
//! a cache race for the same key; the rename that loses is not an error when the entry it lost
//! to is whole, since two builds of one key are the same build.
//!
//! The cache's root carries `CACHEDIR.TAG` ([`mark_cache`]), akpkg's own, so that backup tools
//! skip it and `cache clean` deletes only a directory akpkg marked.

use std::io;
use std::path::{Path, PathBuf};

/// The kinds of entries in the cache, each under its own versioned directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Downloaded artifacts (wheels, sdists, jars), named by their sha256.
    Artifacts,
    /// Wheels unpacked and checked against their RECORD, named by the wheel's sha256.
    Unpacked,
    /// Compiled bytecode, by the source's hash, the interpreter and the optimization level.
    Bytecode,
    /// The sha256 of local wheel files, by the file's identity (device, inode, size, times).
    FileHashes,
    /// Interpreter probe reports, by the interpreter's path and identity.
    Interpreters,
    /// Wheels akpkg built from sdists and git sources, by build key.
    Built,
    /// Isolated build environments, by the hash of their pinned wheels.
    BuildEnvironments,
    /// Git checkouts, by commit, with their checked tree id.
    Git,
    /// Go modules in the module proxy's layout.
    GoProxy,
    /// npm tarballs, by their sha512.
    Npm,
    /// Go server binaries, by build key.
    GoServer,
    /// Web UI builds, by build key.
    Web,
    /// Go's own module cache (`GOMODCACHE`) for the server build.
    GoModuleCache,
    /// Go's own build cache (`GOCACHE`), unless the caller set one.
    GoBuildCache,
    /// Go's `GOPATH`.
    GoPath,
    /// The logs of PEP 517 builds, by package.
    BuildLogs,
    /// What each prefix was assembled from (for the incremental assemble), and import proofs.
    Assembled,
}

impl Bucket {
    /// Every bucket, for listing and cleaning.
    pub const ALL: [Bucket; 17] = [
        Bucket::Artifacts,
        Bucket::Unpacked,
        Bucket::Bytecode,
        Bucket::FileHashes,
        Bucket::Interpreters,
        Bucket::Built,
        Bucket::BuildEnvironments,
        Bucket::Git,
        Bucket::GoProxy,
        Bucket::Npm,
        Bucket::GoServer,
        Bucket::Web,
        Bucket::GoModuleCache,
        Bucket::GoBuildCache,
        Bucket::GoPath,
        Bucket::BuildLogs,
        Bucket::Assembled,
    ];

    /// The bucket's directory under the cache root: its name and its format version.
    pub const fn directory_name(self) -> &'static str {
        match self {
            Bucket::Artifacts => "artifacts-v1",
            Bucket::Unpacked => "unpacked-v1",
            Bucket::Bytecode => "bytecode-v1",
            Bucket::FileHashes => "file-hashes-v1",
            Bucket::Interpreters => "interpreters-v1",
            Bucket::Built => "built-v1",
            Bucket::BuildEnvironments => "build-envs-v1",
            Bucket::Git => "git-v1",
            Bucket::GoProxy => "go-proxy-v1",
            Bucket::Npm => "npm-v1",
            Bucket::GoServer => "go-server-v1",
            Bucket::Web => "web-v1",
            Bucket::GoModuleCache => "go-module-cache-v1",
            Bucket::GoBuildCache => "go-build-cache-v1",
            Bucket::GoPath => "go-path-v1",
            Bucket::BuildLogs => "build-logs-v1",
            Bucket::Assembled => "assembled-v1",
        }
    }
}

/// The cache's root directory; every path into the cache comes from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    pub fn new(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of `bucket` (not created).
    pub fn bucket(&self, bucket: Bucket) -> PathBuf {
        self.root.join(bucket.directory_name())
    }

    /// The entry `key` of `bucket` (not created).
    pub fn entry(&self, bucket: Bucket, key: impl AsRef<Path>) -> PathBuf {
        self.bucket(bucket).join(key)
    }

    /// A new, empty directory beside `bucket`'s entries, to be filled and then published with
    /// [`publish_dir`]; dropped unpublished, it is removed.
    pub fn incoming_dir(&self, bucket: Bucket) -> io::Result<tempfile::TempDir> {
        incoming_dir_in(&self.bucket(bucket))
    }
}

/// The file that marks a directory as akpkg's cache (the Cache Directory Tagging
/// specification's name, which backup tools honour too).
pub const CACHE_MARKER: &str = "CACHEDIR.TAG";

const CACHE_MARKER_CONTENT: &str = "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by akpkg.\n# For information about cache directory tags see https://bford.info/cachedir/\n";

/// Mark `cache` as akpkg's cache (creating it), so `cache clean` knows it may delete it.
pub fn mark_cache(cache: &Cache) -> Result<(), crate::contained::ContainedError> {
    if is_marked_cache(cache.root()) {
        return Ok(());
    }
    // Written aside and renamed into place: processes sharing a new cache may all mark it.
    let root = crate::contained::Contained::create(cache.root())?;
    let temporary = crate::contained::Contained::temporary_name(".cachedir-");
    root.write(
        &temporary,
        CACHE_MARKER_CONTENT.as_bytes(),
        crate::contained::FileMode::Regular,
        crate::contained::Existing::Refuse,
    )?;
    root.rename_within(&temporary, Path::new(CACHE_MARKER))?;
    Ok(())
}

/// Whether a directory carries akpkg's cache marker.
pub fn is_marked_cache(directory: &Path) -> bool {
    // akpkg's own tag, not any tool's: `cache clean` must not delete another cache.
    crate::path_io::read_regular_to_string(&directory.join(CACHE_MARKER)).is_ok_and(|text| {
        text.starts_with("Signature: 8a477f597d28d172789f06886806bc55")
            && text.contains("created by akpkg")
    })
}

/// A new, empty directory in `parent` (created when missing), for an entry of `parent`.
pub fn incoming_dir_in(parent: &Path) -> io::Result<tempfile::TempDir> {
    fs_err::create_dir_all(parent)?;
    tempfile::Builder::new()
        .prefix(INCOMING_PREFIX)
        .tempdir_in(parent)
        .map_err(|error| with_path(error, "cannot create a directory in", parent))
}

/// A new, empty file in `parent` (created when missing), for an entry of `parent`.
pub fn incoming_file_in(parent: &Path) -> io::Result<tempfile::NamedTempFile> {
    fs_err::create_dir_all(parent)?;
    tempfile::Builder::new()
        .prefix(INCOMING_PREFIX)
        .tempfile_in(parent)
        .map_err(|error| with_path(error, "cannot create a file in", parent))
}

/// The prefix of entries still being written: never a key, so never mistaken for an entry.
pub const INCOMING_PREFIX: &str = ".incoming-";

/// Who holds the published entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Our rename put the entry in place.
    Ours,
    /// Another process published the same key first, and its entry is whole; ours is gone.
    Theirs,
}

/// Give the filled directory `incoming` its final name `entry`, atomically. When the rename
/// fails and `is_whole(entry)` holds, another process published the key first: `incoming` is
/// removed and theirs is kept. Any other failure removes `incoming` and is returned.
pub fn publish_dir(
    incoming: tempfile::TempDir,
    entry: &Path,
    is_whole: impl FnOnce(&Path) -> bool,
) -> io::Result<Published> {
    publish_path(&incoming.keep(), entry, is_whole)
}

/// [`publish_dir`] for a filled directory that is not a [`tempfile::TempDir`] of its own (a
/// subdirectory of one, or a directory another tool filled).
pub fn publish_path(
    incoming: &Path,
    entry: &Path,
    is_whole: impl FnOnce(&Path) -> bool,
) -> io::Result<Published> {
    match fs_err::rename(incoming, entry) {
        Ok(()) => Ok(Published::Ours),
        Err(error) => {
            // Best effort: an unremovable leftover is only an `.incoming-*` to clean later.
            let _ = fs_err::remove_dir_all(incoming);
            if is_whole(entry) {
                Ok(Published::Theirs)
            } else {
                Err(error)
            }
        }
    }
}

/// Give the written file `incoming` its final name `entry`, atomically (a rename replaces an
/// entry another process published first: both hold the same bytes).
pub fn publish_file(incoming: tempfile::TempPath, entry: &Path) -> io::Result<()> {
    incoming
        .persist(entry)
        .map_err(|error| with_path(error.error, "cannot rename a file to", entry))
}

/// Write `bytes` as the file `entry`: an incoming file beside it, then one rename.
pub fn publish_bytes(entry: &Path, bytes: &[u8]) -> io::Result<()> {
    let parent = entry
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut incoming = incoming_file_in(parent)?;
    io::Write::write_all(&mut incoming, bytes)
        .map_err(|error| with_path(error, "cannot write", incoming.path()))?;
    publish_file(incoming.into_temp_path(), entry)
}

/// `error` with the path it concerns, as fs-err words its own errors.
fn with_path(error: io::Error, action: &str, path: &Path) -> io::Error {
    io::Error::new(
        error.kind(),
        format!("{action} `{}`: {error}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_processes_may_mark_one_new_cache_at_once() {
        let cache = tempfile::tempdir().unwrap();
        let directory = cache.path().join("new");
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| mark_cache(&Cache::new(&directory)).unwrap());
            }
        });
        assert!(is_marked_cache(&directory));
        let leftovers: Vec<_> = fs_err::read_dir(&directory)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .filter(|name| name != CACHE_MARKER)
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn every_bucket_has_its_own_versioned_directory() {
        let names: std::collections::BTreeSet<_> = Bucket::ALL
            .iter()
            .map(|bucket| bucket.directory_name())
            .collect();
        assert_eq!(names.len(), Bucket::ALL.len());
        for name in names {
            let (_, version) = name.rsplit_once("-v").expect("a version suffix");
            assert!(version.parse::<u32>().is_ok(), "{name}");
        }
    }

    #[test]
    fn a_published_directory_is_whole_under_its_key() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(root.path());
        let incoming = cache.incoming_dir(Bucket::Built).unwrap();
        fs_err::write(incoming.path().join("record"), "one").unwrap();
        let entry = cache.entry(Bucket::Built, "key");
        let published = publish_dir(incoming, &entry, |_| false).unwrap();
        assert_eq!(published, Published::Ours);
        assert_eq!(fs_err::read_to_string(entry.join("record")).unwrap(), "one");
        assert_eq!(leftovers(&cache.bucket(Bucket::Built)), ["key"]);
    }

    #[test]
    fn a_lost_race_keeps_the_whole_entry_and_removes_ours() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(root.path());
        let entry = cache.entry(Bucket::Web, "key");
        fs_err::create_dir_all(entry.join("output")).unwrap();
        fs_err::write(entry.join("output").join("first"), "").unwrap();
        let incoming = cache.incoming_dir(Bucket::Web).unwrap();
        fs_err::create_dir_all(incoming.path().join("output")).unwrap();
        fs_err::write(incoming.path().join("output").join("second"), "").unwrap();
        let published = publish_dir(incoming, &entry, |entry| entry.join("output").is_dir());
        assert_eq!(published.unwrap(), Published::Theirs);
        assert!(entry.join("output/first").is_file());
        assert_eq!(leftovers(&cache.bucket(Bucket::Web)), ["key"]);
    }

    #[test]
    fn a_failed_publish_that_finds_no_whole_entry_is_an_error_and_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(root.path());
        let entry = cache.entry(Bucket::GoServer, "key");
        // A non-empty directory in the way, which the check does not accept as whole.
        fs_err::create_dir_all(entry.join("half")).unwrap();
        let incoming = cache.incoming_dir(Bucket::GoServer).unwrap();
        fs_err::write(incoming.path().join("authentik"), "").unwrap();
        let error =
            publish_dir(incoming, &entry, |entry| entry.join("authentik").is_file()).unwrap_err();
        assert!(error.to_string().contains("key"), "{error}");
        assert_eq!(leftovers(&cache.bucket(Bucket::GoServer)), ["key"]);
    }

    #[test]
    fn published_bytes_replace_an_entry_atomically() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(root.path());
        let entry = cache.entry(Bucket::FileHashes, "identity");
        publish_bytes(&entry, b"first").unwrap();
        publish_bytes(&entry, b"second").unwrap();
        assert_eq!(fs_err::read_to_string(&entry).unwrap(), "second");
        assert_eq!(leftovers(&cache.bucket(Bucket::FileHashes)), ["identity"]);
    }

    fn leftovers(directory: &Path) -> Vec<String> {
        let mut names: Vec<_> = fs_err::read_dir(directory)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}
