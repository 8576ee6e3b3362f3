//! The source tree a build runs in: an sdist unpacked, or a copy of a directory, always in a
//! fresh temporary directory, so a build never writes into the user's tree or the cache.

use std::path::{Path, PathBuf};

use super::BuildError;

/// What to build from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceInput {
    /// A `.tar.gz` (or plain `.tar`) sdist.
    Sdist(PathBuf),
    /// A source tree: a workspace member, the project, a git checkout.
    Directory(PathBuf),
}

impl SourceInput {
    /// An sdist file or a directory, told apart by what `path` is.
    pub fn from_path(path: &Path) -> Result<SourceInput, BuildError> {
        let metadata = fs_err::metadata(path).map_err(BuildError::io("cannot read", path))?;
        if metadata.is_dir() {
            Ok(SourceInput::Directory(path.to_path_buf()))
        } else {
            let name = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned());
            match name {
                Some(name)
                    if name.ends_with(".tar.gz")
                        || name.ends_with(".tgz")
                        || name.ends_with(".tar") =>
                {
                    Ok(SourceInput::Sdist(path.to_path_buf()))
                }
                _ => Err(BuildError::Setup(format!(
                    "{}: expected an sdist (.tar.gz), a git archive (.tar.gz) or a source directory",
                    path.display()
                ))),
            }
        }
    }

    /// The identity of the source for the build cache: the sdist's sha256, or the git tree id
    /// of the directory's files.
    pub fn identity(&self) -> Result<String, BuildError> {
        match self {
            SourceInput::Sdist(path) => Ok(format!(
                "sha256:{}",
                crate::digest::sha256_hex_of_file(path)
                    .map_err(BuildError::io("cannot read", path))?
            )),
            SourceInput::Directory(path) => Ok(format!("tree:{}", crate::fetch::tree_id(path)?)),
        }
    }
}

/// The source's identity and build system read where the source is, without unpacking or
/// copying it: enough for a build cache lookup when the environment is locked. `None` when
/// they cannot be read that way (then the full preparation says why, or finds them).
///
/// A hit on the key made from these is a hit on the full preparation's key: the identity pins
/// the bytes (an sdist's sha256, a tree id that leaves out what the copy leaves out), and the
/// build system follows from the bytes.
pub fn peek(input: &SourceInput) -> Option<(String, super::pyproject::BuildSystem)> {
    match input {
        SourceInput::Sdist(path) => {
            let pyproject = crate::archive::read_top_level_file(path, "pyproject.toml", 1 << 20)
                .ok()
                .flatten()?;
            let text = String::from_utf8(pyproject).ok()?;
            let system =
                super::pyproject::BuildSystem::parse(&text, &path.join("pyproject.toml")).ok()?;
            Some((input.identity().ok()?, system))
        }
        SourceInput::Directory(path) => {
            let tree = crate::fetch::tree_id_without(path, COPY_EXCLUDES).ok()?;
            let system = super::pyproject::BuildSystem::read(path).ok()?;
            Some((format!("tree:{tree}"), system))
        }
    }
}

/// What a copy of a source directory leaves out: version control data and build leftovers are
/// not part of the source.
const COPY_EXCLUDES: &[&str] = &[".git", "__pycache__"];

/// Unpack or copy the source into `work` and return the tree's root: an sdist's single
/// top-level directory (`name-version/`), or the copy itself.
pub fn prepare(
    input: &SourceInput,
    work: &Path,
    limits: &crate::limits::Limits,
) -> Result<PathBuf, BuildError> {
    let root = work.join("source");
    fs_err::create_dir_all(&root).map_err(BuildError::io("cannot create", &root))?;
    match input {
        SourceInput::Sdist(path) => Ok(crate::archive::unpack_tree(path, &root, limits)?),
        SourceInput::Directory(path) => {
            crate::archive::copy_tree(path, &root, COPY_EXCLUDES)?;
            Ok(root)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::test_archives::raw_entries;

    const PYPROJECT: &[u8] =
        b"[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n";

    /// What the full preparation finds: the identity of the prepared tree and its backend.
    fn prepared(input: &SourceInput) -> (String, String) {
        let work = tempfile::tempdir().unwrap();
        let root = prepare(input, work.path(), &crate::limits::Limits::default()).unwrap();
        let identity = match input {
            SourceInput::Sdist(_) => input.identity().unwrap(),
            SourceInput::Directory(_) => SourceInput::Directory(root.clone()).identity().unwrap(),
        };
        let system = super::super::pyproject::BuildSystem::read(&root).unwrap();
        (identity, system.backend)
    }

    #[test]
    fn peeking_at_an_sdist_finds_what_unpacking_it_finds() {
        let directory = tempfile::tempdir().unwrap();
        let sdist = directory.path().join("demo-1.0.tar");
        let file = tar::EntryType::Regular;
        fs_err::write(
            &sdist,
            raw_entries(&[
                ("demo-1.0/PKG-INFO", file, None, b"Name: demo\n"),
                (
                    "demo-1.0/src/demo/pyproject.toml",
                    file,
                    None,
                    b"[nested]\n",
                ),
                ("demo-1.0/pyproject.toml", file, None, PYPROJECT),
            ]),
        )
        .unwrap();
        let input = SourceInput::Sdist(sdist);
        let (identity, system) = peek(&input).unwrap();
        assert_eq!((identity, system.backend), prepared(&input));
    }

    #[test]
    fn peeking_at_a_directory_leaves_out_what_its_copy_leaves_out() {
        let directory = tempfile::tempdir().unwrap();
        let tree = directory.path();
        fs_err::write(tree.join("pyproject.toml"), PYPROJECT).unwrap();
        fs_err::create_dir_all(tree.join("demo/__pycache__")).unwrap();
        fs_err::write(tree.join("demo/__init__.py"), b"").unwrap();
        fs_err::write(tree.join("demo/__pycache__/x.pyc"), b"stale").unwrap();
        fs_err::create_dir_all(tree.join(".git")).unwrap();
        fs_err::write(tree.join(".git/HEAD"), b"ref").unwrap();
        let input = SourceInput::Directory(tree.to_path_buf());
        let (identity, system) = peek(&input).unwrap();
        assert_eq!((identity, system.backend), prepared(&input));
    }

    #[test]
    fn an_sdist_without_a_pyproject_is_left_to_the_full_preparation() {
        let directory = tempfile::tempdir().unwrap();
        let sdist = directory.path().join("old-1.0.tar");
        let entries = [("old-1.0/setup.py", tar::EntryType::Regular, None, &b""[..])];
        fs_err::write(&sdist, raw_entries(&entries)).unwrap();
        assert!(peek(&SourceInput::Sdist(sdist)).is_none());
    }
}
