//! Step 5 of assemble: everything the builds and the install read, fetched and checked: the
//! lock's artifacts and git sources, the Go server's modules and the web UI's npm tarballs
//! (each skipped when the build it feeds is already cached).

use std::path::Path;

use super::server::ServerPlan;
use super::web::{WebInputs, WebPlan};
use super::{AssembleError, AssembleOptions, LoadedRecipe};
use crate::fetch::{self, FetchOptions, FetchedArtifact, GitCheckout, GoModuleTree};
use crate::identity::TreeId;
use crate::patch::PatchReport;
use crate::progress::Progress;

/// What step 5 fetched.
pub struct Inputs {
    /// The run's fetch options, with the lock's git trees.
    pub fetch_options: FetchOptions,
    pub fetched: Vec<FetchedArtifact>,
    pub checkouts: Vec<GitCheckout>,
    pub module_tree: Option<GoModuleTree>,
    pub server_from_remote_cache: bool,
    pub web: Option<WebInputs>,
}

/// The patched source the server and web builds read.
pub struct PatchedSource<'a> {
    pub root: &'a Path,
    pub tree: &'a TreeId,
    pub applied: &'a [PatchReport],
}

/// Fetch every input of the run.
pub fn fetch(
    loaded: &LoadedRecipe,
    options: &AssembleOptions,
    source: &PatchedSource<'_>,
    server_plan: Option<&ServerPlan<'_>>,
    web_plan: Option<&WebPlan<'_>>,
    progress: &dyn Progress,
) -> Result<Inputs, AssembleError> {
    let lock = &loaded.lock;
    let fetch_set = crate::pipeline::FetchSet::of_akpkg_lock(lock);
    let mut fetch_options = options.fetch.clone();
    for git in &lock.git {
        fetch_options
            .git_trees
            .entry(git.commit.clone())
            .or_insert_with(|| git.tree.clone());
    }
    let fetched = fetch::fetch_all(&fetch_set.artifacts, &fetch_options, &Downloads(progress))?;
    let checkouts = fetch::fetch_git_sources(&fetch_set.git, &fetch_options)?;
    let (module_tree, server_from_remote_cache) = match server_plan {
        Some(plan) => {
            let (tree, from_remote_cache) = super::server::fetch_modules(
                plan,
                source.root,
                source.tree,
                source.applied,
                options,
                &fetch_options,
                &Downloads(progress),
            )?;
            (Some(tree), from_remote_cache)
        }
        None => (None, false),
    };
    let web = match web_plan {
        Some(plan) => Some(super::web::fetch(
            plan,
            source.root,
            lock.web.as_ref(),
            loaded.recipe.source.commit.as_deref(),
            options,
            &Downloads(progress),
        )?),
        None => None,
    };
    Ok(Inputs {
        fetch_options,
        fetched,
        checkouts,
        module_tree,
        server_from_remote_cache,
        web,
    })
}

impl Inputs {
    /// Files downloaded (not cache hits), the npm tarballs included.
    pub fn downloaded(&self) -> usize {
        self.fetched
            .iter()
            .filter(|artifact| artifact.downloaded)
            .count()
            + self
                .web
                .as_ref()
                .map_or(0, |inputs| inputs.tarballs.downloaded)
    }

    pub fn downloaded_from_remote_cache(&self) -> usize {
        self.fetched
            .iter()
            .filter(|artifact| artifact.from_remote_cache)
            .count()
    }

    /// Bytes of the lock's artifacts downloaded.
    pub fn bytes(&self) -> u64 {
        self.fetched
            .iter()
            .filter(|artifact| artifact.downloaded)
            .filter_map(|artifact| fs_err::metadata(&artifact.path).ok().map(|m| m.len()))
            .sum()
    }

    /// The fetch stage's line.
    pub fn detail(&self) -> String {
        let mut detail = format!(
            "{} files, {} downloaded{}",
            self.fetched.len(),
            self.downloaded(),
            super::remote_cache_note(self.downloaded_from_remote_cache()),
        );
        if let Some(tree) = &self.module_tree {
            detail.push_str(&format!(
                "; {} Go module files, {} fetched",
                tree.files, tree.fetched
            ));
        }
        if let Some(inputs) = &self.web {
            detail.push_str(&format!(
                "; {} npm tarballs, {} downloaded",
                inputs.tarballs.tarballs, inputs.tarballs.downloaded
            ));
        }
        detail
    }
}

/// A stage's downloads, reported as its items: each file when it is in the cache.
struct Downloads<'a>(&'a dyn Progress);

impl crate::fetch::DownloadProgress for Downloads<'_> {
    fn start(&self, files: usize, bytes: u64) {
        self.0.set_total(files);
        // The lock gives sizes for some files only; a total of 0 says nothing.
        let size = if bytes > 0 {
            format!(" ({:.1} MB)", bytes as f64 / 1e6)
        } else {
            String::new()
        };
        self.0.step(&format!("downloading {files} files{size}"));
    }

    fn file_done(&self, filename: &str) {
        self.0.item_finished(filename);
    }
}
