//! Recipes: what to assemble for one application release.
//!
//! A recipe (next to akpkg's locks in `lockfiles/`) names the source and its pin, akpkg's
//! lock, the patches in order, the files of the application tree to copy into the prefix, and
//! the Django settings module `verify` loads. Paths inside it are relative to the recipe's own
//! directory. The built-in releases' recipes, locks and patches ([`RELEASES`]) are compiled into
//! the binary, so `assemble --release VERSION` needs no file of akpkg's beside it; without
//! `--release` or `--recipe`, the newest is built.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::AssembleError;
use crate::lock::AkpkgLock;
use crate::patch::Patch;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Recipe {
    pub name: String,
    pub version: String,
    /// akpkg's lock, relative to the recipe.
    pub lock: String,
    pub source: SourcePin,
    /// Patch files in the order they apply, relative to the recipe.
    #[serde(default)]
    pub patches: Vec<String>,
    /// Files and directories of the source tree that the application needs beside its Python
    /// packages, copied into the prefix at the same relative paths.
    #[serde(default)]
    pub copy: Vec<crate::identity::RelativePath>,
    /// The Django settings module `verify` loads (`django.setup()`), if any.
    #[serde(default)]
    pub settings_module: Option<String>,
    /// Variables `verify` sets for that, such as a placeholder secret key.
    #[serde(default)]
    pub verify_environment: BTreeMap<String, String>,
    /// Overrides (`NAME=SPEC`, as `--override` takes them) that `akpkg lock --recipe` applies.
    #[serde(default)]
    pub overrides: Vec<String>,
    /// The application's Go server, built from the same source (its modules pinned by the
    /// lock's `[go]`).
    #[serde(default)]
    pub server: Option<crate::server::ServerRecipe>,
    /// The application's web UI, built from the same source with the pinned Node and npm.
    #[serde(default)]
    pub web: Option<crate::web::WebRecipe>,
    /// Paths (relative to site-packages) that two distributions ship: `expected` (resolved
    /// without a warning) or `error` (the install stops). See `install::shared`.
    #[serde(default)]
    pub shared_files: crate::install::SharedFileRules,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SourcePin {
    /// Where to download the source archive when none is given.
    #[serde(default)]
    pub url: Option<String>,
    /// The commit the release was tagged at, for people and manifests.
    #[serde(default)]
    pub commit: Option<String>,
    /// The release commit's date (Unix time): the default `SOURCE_DATE_EPOCH` of everything
    /// built from this source, instead of 1980.
    #[serde(default)]
    pub source_date_epoch: Option<u64>,
    /// The git tree id of the source's files: the check.
    pub tree: String,
    /// Tree ids of the top-level entries, so a mismatch can name what differs.
    #[serde(default)]
    pub entries: BTreeMap<String, String>,
    /// A listing of every file of the release (`git ls-tree -r` of its tag, beside the
    /// recipe), so a mismatch can name the first file that differs.
    #[serde(default)]
    pub files: Option<String>,
}

/// Where a recipe's relative paths are read from.
#[derive(Debug, Clone)]
enum Base {
    Directory(PathBuf),
    /// Compiled into the binary: path (relative to `lockfiles/`) → text.
    Embedded(&'static [(&'static str, &'static str)]),
}

/// A recipe with everything it names, read.
#[derive(Debug, Clone)]
pub struct LoadedRecipe {
    pub recipe: Recipe,
    /// Where it came from, for messages and manifests.
    pub origin: String,
    pub lock: AkpkgLock,
    pub patches: Vec<Patch>,
    /// The sha256 of the recipe file's text, for the input digest.
    pub recipe_sha256: crate::identity::Sha256,
    /// The release's file listing (`source.files`), when the recipe names one.
    pub source_files: Option<String>,
}

/// The files of the built-in releases, by their path relative to `lockfiles/`.
macro_rules! embedded {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../lockfiles/", $path)))),*]
    };
}

/// Every built-in release's recipe and everything it names.
const EMBEDDED: &[(&str, &str)] = embedded![
    "authentik-2025.12.4.recipe.toml",
    "authentik-2025.12.4.lock",
    "authentik-2025.12.4.files",
    "../patches/authentik-2025.12.4/10-settings-paths.toml",
    "../patches/authentik-2025.12.4/20-config-prefix-uri.diff",
    "../patches/authentik-2025.12.4/30-default-yml-paths.toml",
    "../patches/authentik-2025.12.4/40-email-logo.toml",
    "../patches/authentik-2025.12.4/50-file-backend-mount.toml",
    "../patches/authentik-2025.12.4/60-static-backend-paths.toml",
    "../patches/authentik-2025.12.4/70-api-client-templates.toml",
    "authentik-2026.2.2.recipe.toml",
    "authentik-2026.2.2.lock",
    "authentik-2026.2.2.files",
    "../patches/authentik-2026.2.2/10-settings-paths.toml",
    "../patches/authentik-2026.2.2/20-config-prefix-uri.diff",
    "../patches/authentik-2026.2.2/30-default-yml-paths.toml",
    "../patches/authentik-2026.2.2/40-email-logo.toml",
    "../patches/authentik-2026.2.2/50-file-backend-mount.toml",
    "../patches/authentik-2026.2.2/60-static-backend-paths.toml",
    "../patches/authentik-2026.2.2/70-api-client-templates.toml",
];

/// The releases built into akpkg, oldest first: (version, recipe file in `lockfiles/`).
pub const RELEASES: &[(&str, &str)] = &[
    ("2025.12.4", "authentik-2025.12.4.recipe.toml"),
    ("2026.2.2", "authentik-2026.2.2.recipe.toml"),
];

/// The recipe a default `assemble` builds: the newest built-in release.
pub const DEFAULT_RECIPE: &str = "authentik-2026.2.2.recipe.toml";

/// Which recipe to read: a file, or a built-in release (the newest when none is named).
#[derive(Debug, Clone, Copy)]
pub enum RecipeChoice<'a> {
    File(&'a Path),
    Release(Option<&'a str>),
}

impl<'a> RecipeChoice<'a> {
    /// `--recipe FILE` or `--release VERSION` (clap keeps them apart).
    pub fn of(file: Option<&'a Path>, release: Option<&'a str>) -> RecipeChoice<'a> {
        match file {
            Some(path) => RecipeChoice::File(path),
            None => RecipeChoice::Release(release),
        }
    }
}

/// The built-in release `version`'s recipe file, or an error listing those that exist.
fn built_in_recipe(version: Option<&str>) -> Result<&'static str, AssembleError> {
    let Some(version) = version else {
        return Ok(DEFAULT_RECIPE);
    };
    RELEASES
        .iter()
        .find(|(release, _)| *release == version)
        .map(|(_, recipe)| *recipe)
        .ok_or_else(|| AssembleError::UnknownRelease {
            release: version.to_string(),
            known: RELEASES
                .iter()
                .map(|(release, _)| *release)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

impl Base {
    fn read(&self, relative: &str) -> Result<(String, String), AssembleError> {
        match self {
            Base::Directory(directory) => {
                let path = directory.join(relative);
                let text = fs_err::read_to_string(&path)
                    .map_err(AssembleError::io("cannot read", &path))?;
                Ok((path.display().to_string(), text))
            }
            Base::Embedded(files) => files
                .iter()
                .find(|(name, _)| *name == relative)
                .map(|(name, text)| (format!("(built in) lockfiles/{name}"), text.to_string()))
                .ok_or_else(|| {
                    AssembleError::Recipe(format!(
                        "the built-in recipe names {relative}, which is not built in"
                    ))
                }),
        }
    }
}

/// A recipe and its patches, without its lock: what `akpkg lock` needs to make that lock.
pub struct RecipeWithoutLock {
    pub recipe: Recipe,
    pub patches: Vec<Patch>,
}

impl RecipeWithoutLock {
    pub fn load(choice: RecipeChoice) -> Result<RecipeWithoutLock, AssembleError> {
        let (base, name) = recipe_base(choice)?;
        let (_, recipe) = read_recipe(&base, &name)?;
        let patches = read_patches(&base, &recipe)?;
        Ok(RecipeWithoutLock { recipe, patches })
    }
}

/// Where a recipe's relative paths point, and the recipe's own file name there.
fn recipe_base(choice: RecipeChoice) -> Result<(Base, String), AssembleError> {
    Ok(match choice {
        RecipeChoice::File(path) => (
            Base::Directory(
                path.parent()
                    .filter(|parent| !parent.as_os_str().is_empty())
                    .unwrap_or(Path::new("."))
                    .to_path_buf(),
            ),
            path.file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
        RecipeChoice::Release(version) => (
            Base::Embedded(EMBEDDED),
            built_in_recipe(version)?.to_string(),
        ),
    })
}

fn read_recipe(base: &Base, name: &str) -> Result<(String, Recipe), AssembleError> {
    let (origin, text) = base.read(name)?;
    let recipe: Recipe = toml::from_str(&text)
        .map_err(|error| AssembleError::Recipe(format!("{origin}: {}", error.message().trim())))?;
    Ok((origin, recipe))
}

/// The sha256 of a recipe file's text.
fn recipe_sha256(base: &Base, name: &str) -> Result<crate::identity::Sha256, AssembleError> {
    let (_, text) = base.read(name)?;
    Ok(crate::identity::Sha256::of_bytes(text.as_bytes()))
}

fn read_patches(base: &Base, recipe: &Recipe) -> Result<Vec<Patch>, AssembleError> {
    recipe
        .patches
        .iter()
        .map(|relative| {
            // Messages name the patch as the recipe does, not by where it was read.
            let (_, text) = base.read(relative)?;
            Ok(Patch::parse(relative.trim_start_matches("../"), &text)?)
        })
        .collect()
}

/// A recipe's own files as text, for writing the next release's from them.
#[derive(Debug, Clone)]
pub struct RecipeFiles {
    /// The recipe's file name.
    pub name: String,
    pub text: String,
    /// Each patch as the recipe names it, with its text.
    pub patches: Vec<(String, String)>,
    /// The release's file listing (`source.files`), when the recipe names one.
    pub listing: Option<String>,
}

/// The chosen recipe's text, its patches' and its file listing's.
pub fn recipe_files(choice: RecipeChoice) -> Result<RecipeFiles, AssembleError> {
    let (base, name) = recipe_base(choice)?;
    let (_, recipe) = read_recipe(&base, &name)?;
    let (_, text) = base.read(&name)?;
    let patches = recipe
        .patches
        .iter()
        .map(|relative| Ok((relative.clone(), base.read(relative)?.1)))
        .collect::<Result<_, AssembleError>>()?;
    let listing = match &recipe.source.files {
        Some(relative) => Some(base.read(relative)?.1),
        None => None,
    };
    Ok(RecipeFiles {
        name,
        text,
        patches,
        listing,
    })
}

impl LoadedRecipe {
    /// The chosen recipe; `lock_override` replaces its lock.
    pub fn load(
        choice: RecipeChoice,
        lock_override: Option<&Path>,
    ) -> Result<LoadedRecipe, AssembleError> {
        let (base, name) = recipe_base(choice)?;
        let (origin, recipe) = read_recipe(&base, &name)?;
        let lock = match lock_override {
            Some(path) => AkpkgLock::read(path)?,
            None => {
                let (lock_origin, lock_text) = base.read(&recipe.lock)?;
                AkpkgLock::parse(Path::new(&lock_origin), &lock_text)?
            }
        };
        let patches = read_patches(&base, &recipe)?;
        let source_files = match &recipe.source.files {
            Some(relative) => Some(base.read(relative)?.1),
            None => None,
        };
        Ok(LoadedRecipe {
            recipe_sha256: recipe_sha256(&base, &name)?,
            source_files,
            recipe,
            origin,
            lock,
            patches,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recipe_path_that_climbs_out_is_refused_when_the_recipe_is_read() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("hostile.recipe.toml");
        fs_err::write(
            &path,
            "name = \"x\"\nversion = \"1\"\nlock = \"x.lock\"\ncopy = [\"lifecycle\", \"../../home\"]\n\n[source]\ntree = \"8d34171533313f85b340e547cb94c0bdf9b47f63\"\n",
        )
        .unwrap();
        let error = LoadedRecipe::load(RecipeChoice::File(&path), None).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("hostile.recipe.toml"), "{message}");
        assert!(
            message.contains("`../../home` is not a relative path"),
            "{message}"
        );
    }

    #[test]
    fn the_built_in_recipe_loads_with_its_lock_and_patches() {
        let loaded = LoadedRecipe::load(RecipeChoice::Release(Some("2025.12.4")), None).unwrap();
        assert_eq!(
            (loaded.recipe.name.as_str(), loaded.recipe.version.as_str()),
            ("authentik", "2025.12.4")
        );
        assert_eq!(
            loaded.recipe.source.tree,
            "8d34171533313f85b340e547cb94c0bdf9b47f63"
        );
        assert_eq!(loaded.patches.len(), 7);
        assert_eq!(loaded.lock.build.len(), 10);
        // The web UI: its seven overrides, and the lock's pins of every tarball it downloads.
        let web = loaded.recipe.web.as_ref().unwrap();
        assert_eq!(web.overrides.len(), 7);
        assert_eq!(loaded.lock.web.as_ref().unwrap().packages.len(), 1315);
        assert_eq!(
            loaded.recipe.settings_module.as_deref(),
            Some("authentik.root.settings")
        );
    }
}
