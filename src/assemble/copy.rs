//! Step 8 of assemble, besides what the application stages place (the web UI, the Go
//! server): the recipe's `copy` paths from the source (authentik's lifecycle/, blueprints/,
//! web/icons/ …) and `bin/ak`.

use std::path::Path;

use super::{AssembleError, Recipe};
use crate::contained::{Contained, LinkMode};
use crate::install::{self, Layout};

/// Copy the application tree into the staged prefix at `layout.root`, and write `bin/ak`.
pub fn copy(recipe: &Recipe, source: &Path, layout: &Layout) -> Result<(), AssembleError> {
    application_tree(recipe, source, &layout.root)?;
    // authentik's own `ak` console script needs lifecycle/ inside site-packages; this one
    // finds the application tree at the prefix's root.
    install::replace_installed_file(
        layout,
        &layout.scheme.scripts.join("ak"),
        super::ak_launcher(recipe)?.as_bytes(),
        0o755,
    )?;
    Ok(())
}

/// The recipe's `copy` paths, from the source into the staged prefix.
fn application_tree(recipe: &Recipe, source: &Path, staged: &Path) -> Result<(), AssembleError> {
    // Each destination is opened beneath the staged prefix (the recipe's paths are typed
    // relative paths), never joined first; the source's own links were resolved for real when
    // it was copied in, so nothing here is read through one that leaves it.
    for relative in &recipe.copy {
        let relative_path = Path::new(relative.as_str());
        let from = source.join(relative_path);
        let kind = fs_err::symlink_metadata(&from).map(|metadata| metadata.file_type());
        if kind.as_ref().is_ok_and(std::fs::FileType::is_dir) {
            crate::archive::copy_tree_under(&from, staged, relative_path, &["__pycache__"])?;
        } else if kind.as_ref().is_ok_and(std::fs::FileType::is_file) {
            let staging = Contained::open(staged)?;
            if let Some(parent) = relative_path.parent()
                && !parent.as_os_str().is_empty()
            {
                staging.create_dir_all(parent)?;
            }
            staging.place(&from, relative_path, LinkMode::Copy)?;
        } else if kind.is_ok() {
            return Err(AssembleError::Recipe(format!(
                "the recipe copies `{relative}`, which in the source is a symbolic link or a \
                 special file; name the directory or file it stands for"
            )));
        } else {
            return Err(AssembleError::Recipe(format!(
                "the recipe copies `{relative}`, which the source does not have"
            )));
        }
    }
    Ok(())
}
