//! Step 8 of assemble: what the prefix carries besides the installed wheels: the recipe's
//! `copy` paths from the source (authentik's lifecycle/, blueprints/, web/icons/ …), the web
//! UI, the Go server, and `bin/ak`.

use std::path::Path;

use super::server::{self, ServerPlan};
use super::web::{self, WebInputs, WebPlan, WebRecord};
use super::{AssembleError, AssembleOptions, Recipe, Warnings};
use crate::contained::{Contained, LinkMode};
use crate::install::{self, Layout};
use crate::server::BuiltServer;
use crate::web::BuiltWeb;

/// What step 8 placed that the manifest records.
pub struct Placed {
    pub web: Option<WebRecord>,
    /// `bin/authentik`, relative to the prefix.
    pub server_binary: Option<String>,
}

/// The web UI the run built, with what it was built from.
pub struct WebBuilt<'a> {
    pub plan: &'a WebPlan<'a>,
    pub inputs: &'a WebInputs,
    pub built: &'a BuiltWeb,
}

/// Copy everything into the staged prefix at `layout.root`.
pub fn copy(
    recipe: &Recipe,
    source: &Path,
    layout: &Layout,
    options: &AssembleOptions,
    web: Option<WebBuilt<'_>>,
    server: Option<(&ServerPlan<'_>, &BuiltServer)>,
    warnings: &mut Warnings<'_>,
) -> Result<Placed, AssembleError> {
    let staged = &layout.root;
    application_tree(recipe, source, staged)?;
    let web = match (&options.web_dist, web) {
        (Some(web_dist), _) => {
            let to = staged.join("web/dist");
            fs_err::create_dir_all(&to).map_err(AssembleError::io("cannot create", &to))?;
            crate::archive::copy_tree(web_dist, &to, &[])?;
            None
        }
        (None, Some(web)) => {
            let placed = web::place(web.plan, web.built, staged)?;
            Some(web::record(web.plan, web.inputs, web.built, placed))
        }
        (None, None) => {
            warnings.push(
                "no web UI assets (web/dist): the recipe builds none or --no-web was given; give --web-dist DIR with a built web UI. The API and workers work without it".to_string(),
            );
            None
        }
    };
    let server_binary = match server {
        Some((plan, built)) => Some(server::place(plan, built, staged)?),
        None => None,
    };
    // authentik's own `ak` console script needs lifecycle/ inside site-packages; this one
    // finds the application tree at the prefix's root.
    install::replace_installed_file(
        layout,
        &layout.scheme.scripts.join("ak"),
        super::ak_launcher(recipe)?.as_bytes(),
        0o755,
    )?;
    Ok(Placed { web, server_binary })
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
