//! Step 4 of assemble: the source, copied or unpacked into the staging's `work/` and checked
//! against the recipe's pinned tree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{AssembleError, AssembleOptions, Recipe, SourceArgument, Warnings, error};
use crate::fetch;

/// The source in `work`, checked against the recipe's pin: its root and its tree id.
pub(super) fn stage_source(
    recipe: &Recipe,
    source_files: Option<&str>,
    options: &AssembleOptions,
    work: &Path,
    warnings: &mut Warnings,
) -> Result<(PathBuf, crate::identity::TreeId), AssembleError> {
    let root = work.join("source");
    fs_err::create_dir_all(&root).map_err(AssembleError::io("cannot create", &root))?;
    let given = match &options.source {
        SourceArgument::Path(path) => path.clone(),
        SourceArgument::FromRecipe => {
            let url = recipe.source.url.as_deref().ok_or_else(|| {
                AssembleError::Recipe("the recipe has no source URL; give --source".to_string())
            })?;
            let archive = work.join("source.tar.gz");
            fetch::download_unpinned(url, &archive, &options.fetch).map_err(|error| {
                AssembleError::SourceDownload {
                    url: url.to_string(),
                    detail: error.to_string(),
                }
            })?;
            archive
        }
    };
    if given.is_dir() {
        crate::archive::copy_tree(&given, &root, &[".git"])?;
    } else {
        crate::archive::unpack_tar(&given, &root, &options.fetch.network.limits)?;
    }
    // A forge's archive wraps the tree in one directory (`authentik-version-2025.12.4/`).
    let wrapped = if given.is_dir() {
        None
    } else {
        crate::archive::single_top_level_directory(&root)?
    };
    let source = wrapped.unwrap_or(root);
    let actual = fetch::tree_id(&source)?;
    if actual != recipe.source.tree {
        let difference = first_difference(&source, &recipe.source.entries, source_files)?;
        if options.allow_unverified_source {
            warnings.push(format!(
                "the source's tree is {actual}, not the recipe's {} ({difference}); built anyway (--allow-unverified-source)",
                recipe.source.tree
            ));
        } else {
            return Err(AssembleError::SourceMismatch(Box::new(
                error::SourceMismatch {
                    name: recipe.name.clone(),
                    version: recipe.version.clone(),
                    actual: actual.to_string(),
                    expected: recipe.source.tree.clone(),
                    difference,
                },
            )));
        }
    }
    Ok((source, actual))
}

/// The first file whose id differs from the release's listing, or that one side lacks; without
/// a listing, the first top-level entry that differs from the recipe's ids.
fn first_difference(
    source: &Path,
    expected: &BTreeMap<String, String>,
    listing: Option<&str>,
) -> Result<String, AssembleError> {
    let (actual, expected) = match listing {
        Some(listing) => (fetch::file_ids(source)?, parse_listing(listing)),
        None if expected.is_empty() => {
            return Ok("the recipe lists no entries to compare".to_string());
        }
        None => (fetch::top_level_ids(source)?, expected.clone()),
    };
    let names: std::collections::BTreeSet<&String> = actual.keys().chain(expected.keys()).collect();
    for name in names {
        match (actual.get(name), expected.get(name)) {
            (Some(a), Some(e)) if a == e => continue,
            (Some(_), Some(_)) => return Ok(format!("`{name}` differs")),
            (Some(_), None) => return Ok(format!("`{name}` is not in the release")),
            (None, _) => return Ok(format!("`{name}` is missing")),
        }
    }
    Ok("no entry differs (the pin is wrong)".to_string())
}

/// `git ls-tree -r` lines (`MODE blob ID<TAB>PATH`): path → `MODE blob ID`.
fn parse_listing(listing: &str) -> BTreeMap<String, String> {
    listing
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(object, path)| (path.to_string(), object.to_string()))
        .collect()
}
