//! Step 5 of assemble: everything the builds and the install read, fetched and checked: the
//! lock's artifacts and git sources, then each application stage's own inputs (the Go
//! server's modules, the web UI's npm tarballs: each skipped when the build it feeds is
//! already cached).

use std::path::Path;

use super::AssembleError;
use super::stage::AppStage;
use crate::fetch::{self, FetchOptions, FetchedArtifact, GitCheckout};
use crate::identity::TreeId;
use crate::patch::PatchReport;
use crate::progress::Progress;

/// What step 5 fetched.
pub struct Inputs {
    /// The run's fetch options, with the lock's git trees.
    pub fetch_options: FetchOptions,
    pub fetched: Vec<FetchedArtifact>,
    pub checkouts: Vec<GitCheckout>,
    /// The application stages' parts of the fetch line.
    details: Vec<String>,
}

/// The patched source the server and web builds read.
pub struct PatchedSource<'a> {
    pub root: &'a Path,
    pub tree: &'a TreeId,
    pub applied: &'a [PatchReport],
}

/// Fetch every input of the run: the lock's, then each application stage's.
pub fn fetch(
    step: super::stage::Step<'_>,
    app_stages: &mut [Box<dyn AppStage + '_>],
) -> Result<Inputs, AssembleError> {
    let run = step.run;
    let lock = &run.loaded.lock;
    let fetch_set = crate::pipeline::FetchSet::of_akpkg_lock(lock);
    let mut fetch_options = run.options.fetch.clone();
    for git in &lock.git {
        fetch_options
            .git_trees
            .entry(git.commit.clone())
            .or_insert_with(|| git.tree.clone());
    }
    let downloads = Downloads(run.progress);
    let fetched = fetch::fetch_all(&fetch_set.artifacts, &fetch_options, &downloads)?;
    let checkouts = fetch::fetch_git_sources(&fetch_set.git, &fetch_options)?;
    let mut details = Vec::new();
    let fetch = super::stage::Fetch {
        options: &fetch_options,
        downloads: &downloads,
    };
    for stage in app_stages {
        details.extend(stage.fetch(step, fetch)?);
    }
    Ok(Inputs {
        fetch_options,
        fetched,
        checkouts,
        details,
    })
}

impl Inputs {
    /// The lock's artifacts downloaded (not cache hits).
    pub fn downloaded(&self) -> usize {
        self.fetched
            .iter()
            .filter(|artifact| artifact.downloaded)
            .count()
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
        for part in &self.details {
            detail.push_str("; ");
            detail.push_str(part);
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
