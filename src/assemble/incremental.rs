//! Whether an existing prefix already is what this assemble would make, so that a rerun with
//! nothing changed returns at once.
//!
//! Two digests, both written into the manifest:
//! - the **input digest**: every input that determines the prefix (akpkg's version, the recipe
//!   file, akpkg's lock, each patch, the source archive's bytes or the recipe's pin, the target
//!   interpreter, and the options that change the output). Any change in any of them is a
//!   different digest, so the prefix is rebuilt.
//! - the **tree stamp**: every entry of the prefix (but the manifest) with its path, type, mode,
//!   size, inode and change time (ctime, nanoseconds), taken after verification. Any write,
//!   replacement, removal, `chmod` or new file inside the prefix changes some entry's ctime or
//!   inode or the list itself, and the kernel sets ctime: it cannot be set back by hand. So a
//!   matching stamp says the tree is the one that was verified, without reading its 600 MB;
//!   contents are not re-hashed (`akpkg verify` does that).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sha2::Digest;

use super::{AssembleError, AssembleOptions, LoadedRecipe, MANIFEST, SourceArgument};
use crate::identity::Sha256;
use crate::target::Target;

/// The digest of every input of an assemble, or `None` when an input cannot be known without
/// fetching it (an unverified source from the recipe's URL): then the prefix is always rebuilt.
pub fn input_digest(
    loaded: &LoadedRecipe,
    target: &Target,
    options: &AssembleOptions,
) -> Result<Option<Sha256>, AssembleError> {
    let source = match &options.source {
        SourceArgument::Path(path) if path.is_file() => format!(
            "archive {}",
            Sha256::of_file(path).map_err(AssembleError::io("cannot read", path))?
        ),
        // A directory is stamped like a prefix: any change to it changes some entry's ctime.
        SourceArgument::Path(directory) => format!(
            "directory {} {}",
            directory.display(),
            tree_stamp(directory)?
        ),
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
    let patches: Vec<&str> = loaded
        .patches
        .iter()
        .map(|patch| patch.sha256.as_str())
        .collect();
    let lines = [
        format!("akpkg {}", env!("CARGO_PKG_VERSION")),
        format!("recipe {}", loaded.recipe_sha256),
        format!(
            "lock {}",
            Sha256::of_bytes(loaded.lock.to_toml().as_bytes())
        ),
        format!("patches {}", patches.join(" ")),
        format!("source {source}"),
        format!(
            "target {} {} {:?}",
            target.python_version, target.platform, interpreter
        ),
        format!("runtime-python {:?}", options.runtime_python),
        format!("web-dist {web_dist}"),
        format!("compile {}", options.compile),
        format!("config-settings {:?}", options.config_settings),
        format!(
            "source-date-epoch {}",
            crate::timestamp::source_date_epoch()
        ),
    ];
    Ok(Some(Sha256::of_bytes(lines.join("\n").as_bytes())))
}

/// The stamp of every entry below `directory` but the manifest (see the module's
/// documentation), in path order.
pub fn tree_stamp(directory: &Path) -> Result<Sha256, AssembleError> {
    let mut hasher = sha2::Sha256::new();
    let walk = walkdir::WalkDir::new(directory)
        .min_depth(1)
        .sort_by_file_name()
        .follow_links(false);
    for entry in walk {
        let entry = entry.map_err(|error| AssembleError::Io {
            action: "cannot read",
            path: error.path().unwrap_or(directory).to_path_buf(),
            source: error.into(),
        })?;
        let relative = entry.path().strip_prefix(directory).unwrap_or(entry.path());
        if relative == Path::new(MANIFEST) {
            continue;
        }
        let metadata = entry.metadata().map_err(|error| AssembleError::Io {
            action: "cannot read",
            path: entry.path().to_path_buf(),
            source: error.into(),
        })?;
        hasher.update(relative.as_os_str().as_encoded_bytes());
        hasher.update(
            format!(
                "\0{:o} {} {} {}.{}\n",
                metadata.mode(),
                metadata.len(),
                metadata.ino(),
                metadata.ctime(),
                metadata.ctime_nsec()
            )
            .as_bytes(),
        );
    }
    Ok(Sha256::from_digest(&hasher.finalize().into()))
}

/// The two digests a prefix's manifest records, if it has them.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Recorded {
    input_digest: Option<Sha256>,
    tree_stamp: Option<Sha256>,
}

/// Whether `prefix` holds what an assemble with `digest` would make: its manifest records the
/// same input digest, and its tree still has the stamp taken when it was verified.
pub fn is_up_to_date(prefix: &Path, digest: &Sha256) -> bool {
    let Ok(text) = fs_err::read_to_string(prefix.join(MANIFEST)) else {
        return false;
    };
    let recorded: Recorded = serde_json::from_str(&text).unwrap_or_default();
    recorded.input_digest.as_ref() == Some(digest)
        && recorded
            .tree_stamp
            .is_some_and(|stamp| tree_stamp(prefix).is_ok_and(|now| now == stamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stamp_sees_every_change_but_the_manifest() {
        let directory = tempfile::tempdir().unwrap();
        let tree = directory.path();
        fs_err::create_dir_all(tree.join("lib")).unwrap();
        fs_err::write(tree.join("lib/a.py"), "a = 1\n").unwrap();
        fs_err::write(tree.join(MANIFEST), "{}").unwrap();
        let before = tree_stamp(tree).unwrap();
        assert_eq!(tree_stamp(tree).unwrap(), before);
        // The manifest is left out: it is rewritten with the stamp in it.
        fs_err::write(tree.join(MANIFEST), "{\"tree-stamp\": \"…\"}").unwrap();
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
