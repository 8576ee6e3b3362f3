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

/// Unpack or copy the source into `work` and return the tree's root: an sdist's single
/// top-level directory (`name-version/`), or the copy itself.
pub fn prepare(input: &SourceInput, work: &Path) -> Result<PathBuf, BuildError> {
    let root = work.join("source");
    fs_err::create_dir_all(&root).map_err(BuildError::io("cannot create", &root))?;
    match input {
        SourceInput::Sdist(path) => {
            crate::archive::unpack_tar(path, &root)?;
            let entries: Vec<PathBuf> = fs_err::read_dir(&root)
                .map_err(BuildError::io("cannot read", &root))?
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .collect();
            match entries.as_slice() {
                [only] if only.is_dir() => Ok(only.clone()),
                _ => Ok(root),
            }
        }
        SourceInput::Directory(path) => {
            // Version control data and build leftovers are not part of the source.
            crate::archive::copy_tree(path, &root, &[".git", "__pycache__"])?;
            Ok(root)
        }
    }
}
