//! Git sources: fetch exactly one commit, and check a source tree by its git tree id.
//!
//! The content hash of a source tree is the id git gives the tree, computed here from the files
//! themselves, so the same commit is accepted whatever route its files took (a clone, a release
//! archive, a bundle) and anything else is refused. The algorithm is git's:
//! - a file is a blob: `sha1("blob <size>\0" + content)`; a symbolic link is a blob of its
//!   target;
//! - a directory is a tree: `sha1("tree <size>\0" + entries)`, each entry
//!   `"<mode> <name>\0" + 20-byte id`, with mode `100644` (file), `100755` (executable),
//!   `120000` (link) or `40000` (directory), sorted by name as git sorts them (a directory's
//!   name compares as if it ended in `/`);
//! - empty directories do not exist in git and are skipped; `.git` is never part of the tree.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha1::{Digest, Sha1};

use super::FetchError;
use crate::identity::{GitCommit, TreeId};

/// The git tree id (40 hex digits) of the files below `directory`.
pub fn tree_id(directory: &Path) -> Result<TreeId, FetchError> {
    tree_id_without(directory, &[])
}

/// The tree id of `directory` as if the entries named `excluded` (at any depth) were not there,
/// as a copy without them would have.
pub fn tree_id_without(directory: &Path, excluded: &[&str]) -> Result<TreeId, FetchError> {
    let id = tree_object_id(directory, excluded)?
        .ok_or_else(|| FetchError::Git(format!("{} holds no files", directory.display())))?;
    crate::digest::hex(&id)
        .parse()
        .map_err(|error: crate::identity::IdentityError| FetchError::Git(error.to_string()))
}

/// The object id of each top-level entry of a tree (a blob for a file or link, a tree for a
/// directory), by name: two trees that differ can then say where.
pub fn top_level_ids(
    directory: &Path,
) -> Result<std::collections::BTreeMap<String, String>, FetchError> {
    Ok(entries_of(directory, &[])?
        .into_iter()
        .map(|(name, _, id)| {
            (
                String::from_utf8_lossy(&name).into_owned(),
                crate::digest::hex(&id),
            )
        })
        .collect())
}

/// Every file and link below `directory` (`.git` left out) as `git ls-tree -r` lists them:
/// path (with `/`) → `MODE blob ID`. A release's listing, compared with this, names the first
/// file that differs.
pub fn file_ids(
    directory: &Path,
) -> Result<std::collections::BTreeMap<String, String>, FetchError> {
    let mut files = std::collections::BTreeMap::new();
    collect_file_ids(directory, "", &mut files)?;
    Ok(files)
}

fn collect_file_ids(
    directory: &Path,
    prefix: &str,
    files: &mut std::collections::BTreeMap<String, String>,
) -> Result<(), FetchError> {
    for (name, mode, id) in entries_of(directory, &[])? {
        let name = String::from_utf8_lossy(&name).into_owned();
        let path = format!("{prefix}{name}");
        if mode == "40000" {
            collect_file_ids(&directory.join(&name), &format!("{path}/"), files)?;
        } else {
            files.insert(path, format!("{mode} blob {}", crate::digest::hex(&id)));
        }
    }
    Ok(())
}

/// A directory's tree id, or `None` when it holds no files at all (git does not record it).
fn tree_object_id(directory: &Path, excluded: &[&str]) -> Result<Option<[u8; 20]>, FetchError> {
    let entries = entries_of(directory, excluded)?;
    if entries.is_empty() {
        return Ok(None);
    }
    let mut body = Vec::new();
    for (name, mode, id) in &entries {
        body.extend_from_slice(mode.as_bytes());
        body.push(b' ');
        body.extend_from_slice(name);
        body.push(0);
        body.extend_from_slice(id);
    }
    Ok(Some(object_id("tree", &body)))
}

/// A directory's entries as git records them: name, mode and object id, in git's order.
type TreeEntry = (Vec<u8>, &'static str, [u8; 20]);

fn entries_of(directory: &Path, excluded: &[&str]) -> Result<Vec<TreeEntry>, FetchError> {
    let io = |path: &Path| crate::path_io::io::<FetchError>("cannot read", path);
    let mut entries: Vec<TreeEntry> = Vec::new();
    for entry in fs_err::read_dir(directory).map_err(io(directory))? {
        let entry = entry.map_err(io(directory))?;
        let name = entry.file_name();
        if name == ".git" || excluded.iter().any(|excluded| name == *excluded) {
            continue;
        }
        let path = entry.path();
        let metadata = fs_err::symlink_metadata(&path).map_err(io(&path))?;
        let name = std::os::unix::ffi::OsStrExt::as_bytes(name.as_os_str()).to_vec();
        if metadata.is_symlink() {
            let target = fs_err::read_link(&path).map_err(io(&path))?;
            let target = std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()).to_vec();
            entries.push((name, "120000", object_id("blob", &target)));
        } else if metadata.is_dir() {
            if let Some(id) = tree_object_id(&path, excluded)? {
                entries.push((name, "40000", id));
            }
        } else if metadata.is_file() {
            let file = fs_err::File::open(&path).map_err(io(&path))?;
            let id = blob_id_of_stream(file, metadata.len()).map_err(io(&path))?;
            // Git records 100755 when the owner may execute (`ce_permissions`), else 100644.
            let mode = if metadata.permissions().mode() & 0o100 != 0 {
                "100755"
            } else {
                "100644"
            };
            entries.push((name, mode, id));
        } else {
            return Err(FetchError::Git(format!(
                "{} is neither a file, a directory nor a link",
                path.display()
            )));
        }
    }
    // Git sorts a tree's entries by name, a directory's name compared as if it ended in `/`.
    let sort_key = |(name, mode, _): &TreeEntry| {
        let mut key = name.clone();
        if *mode == "40000" {
            key.push(b'/');
        }
        key
    };
    entries.sort_by_key(sort_key);
    Ok(entries)
}

/// A file's git blob id (40 hexadecimal digits).
pub fn blob_id(path: &Path) -> std::io::Result<String> {
    let file = fs_err::File::open(path)?;
    let size = file.metadata()?.len();
    Ok(blob_id_of_stream(file, size)?
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

/// A blob's id from a stream of `size` bytes, never holding the file in memory. A file that
/// changes size while it is read is an error, not a wrong id.
fn blob_id_of_stream(mut reader: impl std::io::Read, size: u64) -> std::io::Result<[u8; 20]> {
    use sha1::Digest;
    let mut hasher = sha1::Sha1::new();
    hasher.update(format!("blob {size}\0").as_bytes());
    let mut buffer = vec![0u8; 64 * 1024];
    let mut read_total = 0u64;
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        read_total += read as u64;
        hasher.update(&buffer[..read]);
    }
    if read_total != size {
        return Err(std::io::Error::other(format!(
            "it changed while it was read ({size} bytes, then {read_total})"
        )));
    }
    Ok(hasher.finalize().into())
}

fn object_id(kind: &str, content: &[u8]) -> [u8; 20] {
    let mut hasher = Sha1::new();
    hasher.update(format!("{kind} {}\0", content.len()).as_bytes());
    hasher.update(content);
    hasher.finalize().into()
}

/// The tree id recorded beside a cached checkout, if it is one.
fn recorded_tree(tree_file: &Path) -> Option<TreeId> {
    fs_err::read_to_string(tree_file).ok()?.trim().parse().ok()
}

/// A commit's files, checked out in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitCheckout {
    pub directory: PathBuf,
    pub tree_id: TreeId,
}

/// Fetch exactly `commit` of `repository` with the `git` CLI into `CACHE/git-v1/<commit>/`
/// (shallow where the server allows), check the files' tree id against the commit's, and reuse
/// an earlier checkout.
pub fn fetch_commit(
    repository: &str,
    commit: &GitCommit,
    cache: &crate::cache::Cache,
) -> Result<GitCheckout, FetchError> {
    let parent = cache.bucket(crate::cache::Bucket::Git);
    let directory = parent.join(commit);
    let tree_file = parent.join(format!("{commit}.tree"));
    if let (true, Some(tree_id)) = (directory.is_dir(), recorded_tree(&tree_file)) {
        return Ok(GitCheckout { directory, tree_id });
    }
    let staging = crate::cache::incoming_dir_in(&parent)
        .map_err(FetchError::io("cannot create a directory in", &parent))?;
    let work = staging.path().join("checkout");
    let git = |arguments: &[&str]| run_git(&work, arguments);
    fs_err::create_dir_all(&work).map_err(FetchError::io("cannot create", &work))?;
    git(&["init", "--quiet"])?;
    git(&["remote", "add", "origin", repository])?;
    // Servers that allow fetching a commit by id take the shallow route; others need history.
    if git(&["fetch", "--quiet", "--depth", "1", "origin", commit]).is_err() {
        git(&["fetch", "--quiet", "origin"])?;
    }
    git(&[
        "-c",
        "advice.detachedHead=false",
        "checkout",
        "--quiet",
        commit,
    ])?;
    let expected = git(&["rev-parse", &format!("{commit}^{{tree}}")])?;
    let work_tree = work.clone();
    fs_err::remove_dir_all(work.join(".git"))
        .map_err(FetchError::io("cannot remove", &work.join(".git")))?;
    let actual = tree_id(&work_tree)?;
    if actual != expected {
        return Err(FetchError::Git(format!(
            "{repository} at {commit}: the checked-out files hash to tree {actual}, but the commit's tree is {expected}"
        )));
    }
    store_checkout(&work_tree, directory, &tree_file, actual)
}

/// Take a commit's files from an archive (`.tar`, `.tar.gz`, or a directory) instead of a
/// clone: the files must hash to `expected_tree`, the tree id recorded for the commit. Archives
/// from a forge wrap the tree in one top-level directory (`repo-<commit>/`); both the archive's
/// root and that directory are tried against the pin.
pub fn import_archive(
    archive: &Path,
    commit: &GitCommit,
    expected_tree: Option<&TreeId>,
    cache: &crate::cache::Cache,
    limits: &crate::limits::Limits,
) -> Result<GitCheckout, FetchError> {
    let parent = cache.bucket(crate::cache::Bucket::Git);
    let directory = parent.join(commit);
    let tree_file = parent.join(format!("{commit}.tree"));
    let staging = crate::cache::incoming_dir_in(&parent)
        .map_err(FetchError::io("cannot create a directory in", &parent))?;
    let root = staging.path().join("files");
    fs_err::create_dir_all(&root).map_err(FetchError::io("cannot create", &root))?;
    if archive.is_dir() {
        crate::archive::copy_tree(archive, &root, &[".git"])?;
    } else {
        crate::archive::unpack_tar(archive, &root, limits)?;
    }
    let mut candidates = vec![root.clone()];
    if let Some(only) = crate::archive::single_top_level_directory(&root)? {
        candidates.push(only);
    }
    let mut computed = Vec::new();
    for candidate in &candidates {
        let actual = tree_id(candidate)?;
        if expected_tree == Some(&actual) {
            return store_checkout(candidate, directory, &tree_file, actual);
        }
        computed.push(actual);
    }
    let computed = computed.join(" (or, inside its top-level directory, ")
        + if computed.len() > 1 { ")" } else { "" };
    Err(FetchError::Git(match expected_tree {
        Some(expected) => format!(
            "{}: the files hash to tree {computed}, but commit {commit} has tree {expected}; this archive is not that commit",
            archive.display()
        ),
        None => format!(
            "{}: no tree id is recorded for commit {commit}, so its files (tree {computed}) cannot be checked; compare with `git rev-parse {commit}^{{tree}}` in a clone you trust and pass --git-tree {commit}=TREE, or use a lock written by `akpkg lock`",
            archive.display()
        ),
    }))
}

/// Move checked files to `CACHE/git-v1/<commit>/`, then record their tree id beside them (the
/// record last: a directory without it is not trusted).
fn store_checkout(
    files: &Path,
    directory: PathBuf,
    tree_file: &Path,
    tree_id: TreeId,
) -> Result<GitCheckout, FetchError> {
    // Another process that stored the same commit first writes its tree file too.
    if let Err(source) = crate::cache::publish_path(files, &directory, Path::is_dir) {
        return Err(FetchError::Io(crate::path_io::PathIoError::new(
            "cannot move into place",
            directory,
            source,
        )));
    }
    crate::cache::publish_bytes(tree_file, format!("{tree_id}\n").as_bytes()).map_err(
        |source| {
            FetchError::Io(crate::path_io::PathIoError::new(
                "cannot write",
                tree_file.to_path_buf(),
                source,
            ))
        },
    )?;
    Ok(GitCheckout { directory, tree_id })
}

fn run_git(directory: &Path, arguments: &[&str]) -> Result<String, FetchError> {
    let output = Command::new("git")
        .arg("-C")
        .arg(directory)
        .args(arguments)
        // No prompts in a build: a repository that needs credentials must get them from config.
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|error| {
            FetchError::Git(format!(
                "cannot run git: {error}; install git to fetch git sources"
            ))
        })?;
    if !output.status.success() {
        return Err(FetchError::Git(format!(
            "git {} failed: {}",
            arguments.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// git with a fixed identity, through the stage's own runner.
    fn git(directory: &Path, arguments: &[&str]) -> String {
        let identity = ["-c", "user.name=t", "-c", "user.email=t@t"];
        let signing = ["-c", "commit.gpgsign=false"];
        run_git(directory, &[&identity[..], &signing, arguments].concat()).unwrap()
    }

    /// A repository with nested directories, an executable, a link and names that sort
    /// differently as directories (`a` vs `a.txt`, `a/`).
    fn repository(directory: &Path) -> String {
        fs_err::create_dir_all(directory.join("a/b")).unwrap();
        fs_err::create_dir_all(directory.join("empty")).unwrap();
        fs_err::write(directory.join("a.txt"), "top\n").unwrap();
        fs_err::write(directory.join("a/b/deep.py"), "x = 1\n").unwrap();
        fs_err::write(directory.join("a-b"), "dash\n").unwrap();
        fs_err::write(directory.join("run.sh"), "#!/bin/sh\n").unwrap();
        fs_err::set_permissions(
            directory.join("run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("a.txt", directory.join("link")).unwrap();
        git(directory, &["init", "--quiet"]);
        git(directory, &["add", "."]);
        git(directory, &["commit", "--quiet", "-m", "one"]);
        git(directory, &["rev-parse", "HEAD"])
    }

    #[test]
    fn tree_ids_match_git() {
        let directory = tempfile::tempdir().unwrap();
        repository(directory.path());
        let expected = git(directory.path(), &["rev-parse", "HEAD^{tree}"]);
        assert_eq!(tree_id(directory.path()).unwrap(), expected);
        // Any change of content or mode changes the id.
        fs_err::set_permissions(
            directory.path().join("a.txt"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        assert_ne!(tree_id(directory.path()).unwrap(), expected);
    }

    #[test]
    fn fetches_one_commit_and_reuses_it() {
        let directory = tempfile::tempdir().unwrap();
        let origin = directory.path().join("origin");
        fs_err::create_dir_all(&origin).unwrap();
        let commit = repository(&origin);
        let tree = git(&origin, &["rev-parse", "HEAD^{tree}"]);
        // A later commit must not be what is checked out.
        fs_err::write(origin.join("a.txt"), "changed\n").unwrap();
        git(&origin, &["commit", "--quiet", "-am", "two"]);

        let cache = crate::cache::Cache::new(directory.path().join("cache"));
        let url = format!("file://{}", origin.display());
        let commit: GitCommit = commit.parse().unwrap();
        let checkout = fetch_commit(&url, &commit, &cache).unwrap();
        assert_eq!(checkout.tree_id, tree);
        assert_eq!(
            fs_err::read_to_string(checkout.directory.join("a.txt")).unwrap(),
            "top\n"
        );
        assert!(!checkout.directory.join(".git").exists());

        // The second time comes from the cache, even with the origin gone.
        fs_err::remove_dir_all(&origin).unwrap();
        assert_eq!(fetch_commit(&url, &commit, &cache).unwrap(), checkout);
        let missing = fetch_commit(&url, &"0".repeat(40).parse().unwrap(), &cache).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("git fetch --quiet origin failed"),
            "{missing}"
        );
    }

    /// `fetch --git-archive` with a hostile archive: refused before its tree id is computed,
    /// and nothing lands outside the cache.
    #[test]
    fn a_hostile_git_archive_is_refused_before_its_tree_is_checked() {
        let directory = tempfile::tempdir().unwrap();
        let archive = crate::archive::test_archives::raw_entries(&[
            ("a", tar::EntryType::Symlink, Some("."), b""),
            ("a/a/a/x", tar::EntryType::Symlink, Some("../../.."), b""),
            ("a/a/a/x/evil", tar::EntryType::Regular, None, b"pwned"),
        ]);
        let path = directory.path().join("hostile.tar");
        fs_err::write(&path, archive).unwrap();
        let cache = crate::cache::Cache::new(directory.path().join("deep/cache"));
        let commit: GitCommit = "0".repeat(40).parse().unwrap();
        let tree: TreeId = "1".repeat(40).parse().unwrap();
        let error = import_archive(
            &path,
            &commit,
            Some(&tree),
            &cache,
            &crate::limits::Limits::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("passes through the symbolic link"),
            "{error}"
        );
        let mut outside: Vec<String> = walkdir::WalkDir::new(directory.path())
            .into_iter()
            .map(|entry| entry.unwrap().path().display().to_string())
            .filter(|path| path.ends_with("evil"))
            .collect();
        outside.sort();
        assert!(outside.is_empty(), "{outside:?}");
    }
}
