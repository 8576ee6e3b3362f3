//! The shape of an application build beside the wheels: the Go server (`server`), the web UI
//! (`web`), and whatever comes next. Each is one module whose stage implements [`AppStage`],
//! and one line in [`app_stages`]; the run (`run.rs`) walks the list at each of its numbered
//! steps and knows none of them by name. A stage keeps what it made between the steps (its
//! plan, its inputs, its build, where it placed it, its record).

use std::path::Path;

use super::inputs::PatchedSource;
use super::record::StageSections;
use super::run::Run;
use super::{AssembleError, AssembleOptions, AssembleSummary, LoadedRecipe, Stages, Warnings};
use crate::fetch::{DownloadProgress, FetchOptions};

/// What every step after the source is staged gives a stage: the run, the patched source, and
/// the staged prefix's root.
#[derive(Clone, Copy)]
pub(super) struct Step<'a> {
    pub run: Run<'a>,
    pub source: &'a PatchedSource<'a>,
    pub staged: &'a Path,
}

/// How step 5 fetches: the run's fetch options (with the lock's git trees), and where
/// downloads are reported.
#[derive(Clone, Copy)]
pub(super) struct Fetch<'a> {
    pub options: &'a FetchOptions,
    pub downloads: &'a dyn DownloadProgress,
}

/// Where a stage reports as it goes: its stage line, its warnings.
pub(super) struct Report<'r, 'p> {
    pub stages: &'r mut Stages<'p>,
    pub warnings: &'r mut Warnings<'p>,
}

type StepResult<T = ()> = Result<T, AssembleError>;

/// One application build; each method is called at the run step its name says.
pub(super) trait AppStage {
    /// Step 1: the toolchain it builds with, `(name, version)`, which the no-op check and the
    /// manifest's input digest name (found before the no-op check, so a new toolchain is a
    /// new build).
    fn toolchain(&self) -> Option<(&'static str, &str)> {
        None
    }

    /// Step 3, after the no-op check and before anything is fetched: what the build needs of
    /// this machine that costs time to find (starting java).
    fn check(&mut self, _run: Run<'_>) -> StepResult {
        Ok(())
    }

    /// Step 5: its inputs fetched and checked (skipped when its output is cached already);
    /// its part of the fetch line, if it fetched anything.
    fn fetch(&mut self, step: Step<'_>, fetch: Fetch<'_>) -> StepResult<Option<String>>;

    /// Step 6: built under its key, or taken from the build cache or the remote cache; the
    /// stage reports its own line.
    fn build(&mut self, step: Step<'_>, report: Report<'_, '_>) -> StepResult;

    /// Step 8: what it built placed into the staged prefix.
    fn place(&mut self, step: Step<'_>, warnings: &mut Warnings<'_>) -> StepResult;

    /// Step 10: its section of the manifest (the SBOM is made from the manifest).
    fn record(&mut self, sections: &mut StageSections) -> StepResult;

    /// Its part of the run's summary.
    fn summarize(&self, summary: &mut AssembleSummary);
}

/// The application builds a run may have, in the order they fetch, build and place. The server
/// is left out of the list when the recipe has none or `--no-server` is given; the web stage is
/// always in it, since it also places `--web-dist` and says when a prefix has no web UI.
pub(super) fn app_stages<'a>(
    loaded: &'a LoadedRecipe,
    options: &'a AssembleOptions,
) -> Result<Vec<Box<dyn AppStage + 'a>>, AssembleError> {
    let stages: [Option<Box<dyn AppStage + 'a>>; 2] = [
        super::server::stage(loaded, options)?,
        super::web::stage(loaded),
    ];
    Ok(stages.into_iter().flatten().collect())
}
