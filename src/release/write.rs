//! Step 9: the new release's recipe, file listing and patch directory, made from the previous
//! release's. The recipe's text is kept (comments, order): its version is replaced throughout,
//! then the pin, dates, paths and overrides are set with toml_edit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table, value};

use super::ReleaseError;
use crate::assemble::{Recipe, RecipeFiles};
use crate::contained::{Contained, Existing, FileMode};
use crate::identity::TreeId;

pub struct NewFiles<'a> {
    pub previous: &'a Recipe,
    pub previous_files: &'a RecipeFiles,
    pub version: &'a str,
    pub commit: Option<&'a str>,
    pub tree: &'a TreeId,
    pub entries: &'a BTreeMap<String, String>,
    pub listing: &'a BTreeMap<String, String>,
    pub source_date_epoch: u64,
    /// Overrides the new release no longer needs, left out.
    pub unneeded_overrides: &'a [String],
    /// Holds `lockfiles/` and `patches/`.
    pub output: &'a Path,
}

pub struct Written {
    pub recipe: PathBuf,
    pub listing: PathBuf,
    pub patch_directory: PathBuf,
    pub lock: PathBuf,
}

/// Write the recipe, the listing and the patches; refuse to replace any file.
pub fn write(new: &NewFiles) -> Result<Written, ReleaseError> {
    let stem = format!("{}-{}", new.previous.name, new.version);
    let patch_directory = format!("patches/{stem}");
    let patch_names: Vec<(String, &str)> = new
        .previous_files
        .patches
        .iter()
        .map(|(relative, text)| {
            let file = relative.rsplit('/').next().unwrap_or(relative);
            (format!("{patch_directory}/{file}"), text.as_str())
        })
        .collect();
    let recipe = recipe_text(new, &stem, &patch_names)?;
    let listing: String = new
        .listing
        .iter()
        .map(|(path, object)| format!("{object}\t{path}\n"))
        .collect();

    let files: Vec<(String, &[u8])> = [
        (format!("lockfiles/{stem}.recipe.toml"), recipe.as_bytes()),
        (format!("lockfiles/{stem}.files"), listing.as_bytes()),
    ]
    .into_iter()
    .chain(
        patch_names
            .iter()
            .map(|(path, text)| (path.clone(), text.as_bytes())),
    )
    .collect();
    for (path, _) in &files {
        let path = new.output.join(path);
        if path.symlink_metadata().is_ok() {
            return Err(ReleaseError::Exists { path });
        }
    }
    fs_err::create_dir_all(new.output).map_err(ReleaseError::io("cannot create", new.output))?;
    let destination = Contained::open(new.output)?;
    for (path, bytes) in &files {
        let path = Path::new(path);
        if let Some(parent) = path.parent() {
            destination.create_dir_all(parent)?;
        }
        destination.write(path, bytes, FileMode::Regular, Existing::Refuse)?;
    }
    Ok(Written {
        recipe: new.output.join(format!("lockfiles/{stem}.recipe.toml")),
        listing: new.output.join(format!("lockfiles/{stem}.files")),
        patch_directory: new.output.join(&patch_directory),
        lock: new.output.join(format!("lockfiles/{stem}.lock")),
    })
}

/// The previous recipe's text, made the new release's.
fn recipe_text(
    new: &NewFiles,
    stem: &str,
    patches: &[(String, &str)],
) -> Result<String, ReleaseError> {
    let origin = new.previous_files.name.clone();
    let text = new
        .previous_files
        .text
        .replace(&new.previous.version, new.version);
    let mut document: DocumentMut =
        text.parse()
            .map_err(|error: toml_edit::TomlError| ReleaseError::RecipeText {
                origin: origin.clone(),
                message: error.message().to_string(),
            })?;
    document["lock"] = value(format!("{stem}.lock"));
    // One patch a line, as the built-in recipes write them.
    let mut patch_paths = toml_edit::Array::new();
    for (path, _) in patches {
        let mut entry = toml_edit::Value::from(format!("../{path}"));
        entry.decor_mut().set_prefix("\n    ");
        patch_paths.push_formatted(entry);
    }
    patch_paths.set_trailing_comma(true);
    patch_paths.set_trailing("\n");
    document["patches"] = value(patch_paths);
    set_source(&mut document, new, stem, &origin)?;
    if let Some(overrides) = document
        .get_mut("web")
        .and_then(|web| web.get_mut("override"))
        .and_then(Item::as_array_of_tables_mut)
    {
        overrides.retain(|table| {
            let package = table.get("package").and_then(Item::as_str);
            !package
                .is_some_and(|package| new.unneeded_overrides.iter().any(|name| name == package))
        });
    }
    Ok(document.to_string())
}

fn set_source(
    document: &mut DocumentMut,
    new: &NewFiles,
    stem: &str,
    origin: &str,
) -> Result<(), ReleaseError> {
    let source = document
        .get_mut("source")
        .and_then(Item::as_table_mut)
        .ok_or_else(|| ReleaseError::RecipeText {
            origin: origin.to_string(),
            message: "it has no [source] table".to_string(),
        })?;
    match new.commit {
        Some(commit) => source["commit"] = value(commit),
        None => {
            source.remove("commit");
        }
    }
    source["source-date-epoch"] = value(i64::try_from(new.source_date_epoch).unwrap_or(i64::MAX));
    if let Some(mut key) = source.key_mut("source-date-epoch") {
        key.leaf_decor_mut().set_prefix(format!(
            "# The commit's date, {}: SOURCE_DATE_EPOCH of every build and layer of it.\n",
            crate::timestamp::rfc3339(new.source_date_epoch)
        ));
    }
    source["tree"] = value(new.tree.to_string());
    source["files"] = value(format!("{stem}.files"));
    let mut entries = Table::new();
    for (name, id) in new.entries {
        entries[name.as_str()] = value(id.as_str());
    }
    source["entries"] = Item::Table(entries);
    Ok(())
}
