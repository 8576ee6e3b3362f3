//! One assemble run, in the module's numbered steps: a short orchestrator over the step
//! functions below, the step modules (`source`, `inputs`, `wheels`, `copy`, `record`,
//! `staging`) and the application stages (`stage`: the Go server, the web UI), each taking
//! typed values and returning them.

use std::path::PathBuf;

use crate::install::Layout;
use crate::interpreter::Target;

use super::stage::{self, AppStage};
use super::{
    AssembleError, AssembleOptions, AssembleSummary, LoadedRecipe, MANIFEST, NativeAudit, Progress,
    SBOM, Stages, VerifySummary, Warnings, check_target, copy, incremental, inputs, local_state,
    native, record, source, staging, wheels,
};

/// What every step of one run reads.
#[derive(Clone, Copy)]
pub(super) struct Run<'a> {
    pub loaded: &'a LoadedRecipe,
    pub target: &'a Target,
    pub options: &'a AssembleOptions,
    pub progress: &'a dyn Progress,
}

/// The application stages of a run, in [`stage::app_stages`]'s order.
type AppStages<'a> = Vec<Box<dyn AppStage + 'a>>;

/// What steps 4 to 9 made, which the record step and the summary read.
struct Made<'a> {
    source_tree: &'a crate::identity::TreeId,
    applied: &'a [crate::patch::PatchReport],
    fetched: &'a inputs::Inputs,
    wheels: &'a [crate::pep517::BuiltWheel],
    installed: &'a wheels::Installed,
    layout: &'a Layout,
    closure: &'a crate::closure::ClosureReport,
}

/// Step 1, also for [`super::up_to_date`]: the interpreter fits the lock; the application
/// stages the recipe and the options ask for, each with the toolchain it builds with found.
pub(super) fn check_stages<'a>(run: Run<'a>) -> Result<AppStages<'a>, AssembleError> {
    check_target(&run.loaded.lock, run.target)?;
    stage::app_stages(run.loaded, run.options)
}

/// The stages' toolchains, `(name, version)`, which the input digests name.
pub(super) fn toolchains<'s>(app_stages: &'s [Box<dyn AppStage + '_>]) -> Vec<(&'s str, &'s str)> {
    app_stages
        .iter()
        .filter_map(|stage| stage.toolchain())
        .collect()
}

/// The pipeline, step by step (the module's documentation numbers them).
pub(super) fn run_stages(run: Run<'_>) -> Result<AssembleSummary, AssembleError> {
    let Run {
        loaded,
        target,
        options,
        progress,
    } = run;
    let mut stages = Stages::new(progress);
    let mut warnings = Warnings::new(progress);

    // 1. The interpreter fits the lock; each application stage's toolchain is found.
    let mut app_stages = check_stages(run)?;

    // 2. Where the prefix goes (see `staging`).
    let place = staging::Place::prepare(&options.prefix, options.force)?;

    // 3. Nothing to do when the prefix already is what this run would make; else each stage
    //    checks what it needs of this machine (starting java costs a fifth of a second).
    let (local_digest, unchanged) = local_state(run, &place.prefix, &toolchains(&app_stages))?;
    if unchanged {
        stages.finish("check", "up to date".to_string());
        return Ok(AssembleSummary::up_to_date(place.prefix, stages.done));
    }
    for stage in &mut app_stages {
        stage.check(run)?;
    }
    let staging = place.stage()?;

    // 4. The source, checked against the recipe's pin, then patched.
    let (source, source_tree, applied) = patched_source(&mut stages, &mut warnings, run, &staging)?;
    let patched = inputs::PatchedSource {
        root: &source,
        tree: &source_tree,
        applied: &applied,
    };
    let step = stage::Step {
        run,
        source: &patched,
        staged: &staging.staged,
    };

    // 5. Every input, fetched and checked: the lock's, then each application stage's.
    stages.start("fetch", None);
    let fetched = inputs::fetch(step, &mut app_stages)?;
    stages.finish("fetch", fetched.detail());

    // 6. The wheels, then each application stage, built or taken from the build caches.
    let wheels = build_wheels(&mut stages, run, &fetched, &patched)?;
    for stage in &mut app_stages {
        let report = stage::Report {
            stages: &mut stages,
            warnings: &mut warnings,
        };
        stage.build(step, report)?;
    }

    // 7. Every wheel, installed into the staged prefix.
    stages.start("install", None);
    let layout = Layout::staged(
        target,
        &place.prefix,
        &staging.staged,
        options.runtime_python.as_deref(),
    )?;
    let mut installed = wheels::install(loaded, &fetched, &wheels, &layout, options, progress)?;
    warnings.extend(std::mem::take(&mut installed.warnings));
    stages.finish(
        "install",
        format!("{} distributions", installed.distributions.len()),
    );

    // 8. The application tree and bin/ak, then what each application stage built.
    stages.start("copy", None);
    copy::copy(&loaded.recipe, &source, &layout)?;
    for stage in &mut app_stages {
        stage.place(step, &mut warnings)?;
    }
    stages.finish(
        "copy",
        format!("{} paths, bin/ak", loaded.recipe.copy.len()),
    );

    // 9. The interpreter and the native libraries: the prefix made to run elsewhere.
    let closure = close(&mut stages, options, &staging, &layout)?;

    let made = Made {
        source_tree: &source_tree,
        applied: &applied,
        fetched: &fetched,
        wheels: &wheels,
        installed: &installed,
        layout: &layout,
        closure: &closure,
    };

    // 10. What the prefix is: the manifest (each application stage writes its section) and
    //     the SBOM.
    stages.start("record", None);
    let (recorded, native_audit) =
        record_prefix(run, &staging, &made, &mut app_stages, &warnings.list)?;
    stages.finish("record", format!("{MANIFEST}, {SBOM}"));

    // 11. Verified: the files, the imports, no build path, the native closure; then stamped.
    stages.start("verify", None);
    let report = super::verify_staged(
        &staging,
        &place,
        &layout,
        (loaded, target, options),
        &recorded,
        (&closure, &native_audit),
        progress,
    )?;
    // The tree as verified, for the next run's no-op check (kept in the cache: it is this
    // machine's, and the prefix must be the same bytes on every builder).
    let (tree_stamp, size_bytes) = incremental::stamp_and_size(&staging.staged)?;
    stages.finish("verify", super::verify_detail(&report));

    // 12. Into place; the old prefix goes when the caller drops the summary.
    stages.start("move", None);
    let leftover = staging.move_to(&place)?;
    if let Some(local_digest) = local_digest {
        remember(options, &place.prefix, local_digest, &recorded, tree_stamp);
    }
    stages.finish("move", place.prefix.display().to_string());

    let mut summary = made.summary(
        place.prefix,
        (VerifySummary::of(&report), size_bytes),
        (stages, warnings),
        leftover,
    );
    for stage in &app_stages {
        stage.summarize(&mut summary);
    }
    Ok(summary)
}

/// Step 4: the source staged (checked against the recipe's pin), then patched: its path, its
/// tree id and the patches applied.
fn patched_source(
    stages: &mut Stages<'_>,
    warnings: &mut Warnings<'_>,
    run: Run<'_>,
    staging: &staging::Staging,
) -> Result<
    (
        PathBuf,
        crate::identity::TreeId,
        Vec<crate::patch::PatchReport>,
    ),
    AssembleError,
> {
    let recipe = &run.loaded.recipe;
    stages.start("source", None);
    let (source, source_tree) = source::stage_source(
        recipe,
        run.loaded.source_files.as_deref(),
        run.options,
        &staging.work,
        warnings,
    )?;
    stages.finish("source", format!("{} {}", recipe.name, recipe.version));
    stages.start("patch", None);
    let applied = crate::patch::apply(&run.loaded.patches, &source, false)?;
    stages.finish("patch", format!("{} patches", applied.len()));
    Ok((source, source_tree, applied))
}

/// Step 12's record for the next run's no-op check: this machine's digest of the inputs, the
/// manifest's, and the stamp of the tree as verified.
fn remember(
    options: &AssembleOptions,
    prefix: &std::path::Path,
    local_digest: crate::identity::Sha256,
    recorded: &record::Recorded,
    tree_stamp: crate::identity::Sha256,
) {
    incremental::Record {
        prefix: prefix.to_path_buf(),
        local_digest,
        input_digest: recorded.input_digest.clone(),
        tree_stamp,
    }
    .write(&incremental::Record::path(&options.fetch.cache, prefix));
}

/// Step 6 for the wheels: each the lock builds, in its pinned environment.
fn build_wheels(
    stages: &mut Stages<'_>,
    run: Run<'_>,
    fetched: &inputs::Inputs,
    patched: &inputs::PatchedSource<'_>,
) -> Result<Vec<crate::pep517::BuiltWheel>, AssembleError> {
    let requests = wheels::build_requests(&run.loaded.lock, fetched, patched.root, run.options)?;
    stages.start("build", Some(requests.len()));
    let built = wheels::build_all(&requests, run.target, run.options, run.progress)?;
    stages.finish("build", wheels::build_detail(&built));
    Ok(built)
}

/// Step 9: the closure stage over the staged prefix.
fn close(
    stages: &mut Stages<'_>,
    options: &AssembleOptions,
    staging: &staging::Staging,
    layout: &Layout,
) -> Result<crate::closure::ClosureReport, AssembleError> {
    stages.start("closure", None);
    let closure = crate::closure::close(
        &staging.staged,
        &crate::closure::ClosureOptions {
            closure: options.closure,
            python: &layout.build_python,
            site_packages: &layout.scheme.purelib,
            compile: options.compile,
            cache: &options.build.cache,
        },
    )?;
    stages.finish("closure", super::closure_detail(&closure));
    Ok(closure)
}

/// Step 10: the native audit, then the manifest and the SBOM written into the staged prefix.
fn record_prefix(
    run: Run<'_>,
    staging: &staging::Staging,
    made: &Made<'_>,
    app_stages: &mut [Box<dyn AppStage + '_>],
    warnings: &[String],
) -> Result<(record::Recorded, NativeAudit), AssembleError> {
    let native_audit = native::audit(&staging.staged)?;
    let mut sections = record::StageSections::default();
    for stage in app_stages.iter_mut() {
        stage.record(&mut sections)?;
    }
    let recorded = record::write(
        &staging.staged,
        record::RecordInputs {
            loaded: run.loaded,
            source_tree: made.source_tree,
            runtime_python: match &made.closure.interpreter {
                Some(interpreter) => interpreter.executable.clone(),
                None => made.layout.runtime_python.display().to_string(),
            },
            warnings,
            installed: &made.installed.distributions,
            shared_files: &made.installed.shared_files,
            built: made.wheels,
            applied: made.applied,
            input_digest: incremental::input_digest(
                run.loaded,
                run.target,
                run.options,
                made.source_tree,
                &toolchains(app_stages),
            ),
            sections,
            native: &native_audit,
            closure: made.closure,
            source_date_epoch: run.options.build.source_date_epoch,
        },
    )?;
    Ok((recorded, native_audit))
}

impl Made<'_> {
    /// The run's summary, once the prefix is in place; `reported` is what the run told as it
    /// went (its stages' times and its warnings).
    fn summary(
        &self,
        prefix: PathBuf,
        (verify, size_bytes): (VerifySummary, u64),
        reported: (Stages<'_>, Warnings<'_>),
        leftover: staging::Leftover,
    ) -> AssembleSummary {
        let (stages, warnings) = reported;
        let wheels = self.wheels;
        AssembleSummary {
            prefix,
            installed: self.installed.distributions.len(),
            built: wheels.len(),
            built_from_cache: wheels.iter().filter(|wheel| wheel.from_cache).count(),
            downloaded: self.fetched.downloaded(),
            downloaded_from_remote_cache: self.fetched.downloaded_from_remote_cache(),
            built_from_remote_cache: wheels
                .iter()
                .filter(|wheel| wheel.from_remote_cache)
                .count(),
            remote_cache_signers: crate::registry::taken_from_remote_cache(),
            bytes: self.fetched.bytes(),
            stages: stages.done,
            warnings: warnings.list,
            verify,
            size_bytes,
            up_to_date: false,
            server: None,
            web: None,
            leftover: Some(std::sync::Arc::new(leftover)),
        }
    }
}
