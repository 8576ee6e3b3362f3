//! `akpkg lock`: write akpkg's own lock (build environments, git trees, every artifact pinned).

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;

use super::build::BuilderArgs;
use super::plan::{PlanInputArgs, plan_from_args};
use super::{CliError, print};
use crate::pipeline;

#[derive(Debug, Args)]
pub struct LockCommandArgs {
    #[command(flatten)]
    pub input: PlanInputArgs,

    /// Where to write akpkg's lock, such as lockfiles/authentik-2025.12.4.lock.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,

    /// The release's source tree or archive (.tar.gz): its uv.lock and pyproject.toml are
    /// used, and its git tree id is printed for the recipe.
    #[arg(long, value_name = "DIR|FILE")]
    pub source: Option<PathBuf>,

    /// A recipe whose `overrides` apply, and whose patches are checked against --source.
    #[arg(long, value_name = "FILE")]
    pub recipe: Option<PathBuf>,

    /// The go command that lists what the recipe's Go server reads [default: `go` on PATH].
    #[arg(long, value_name = "PATH")]
    pub go: Option<PathBuf>,

    /// How the Go server's API client is locked, when the recipe generates it
    /// ([server.api-client]): `generate` records the generator and the schema and pins no
    /// go.sum line of the module it replaces; `locked` pins that module from go.sum instead
    /// (for sites whose proxy has it).
    #[arg(long, value_enum, default_value = "generate", value_name = "HOW")]
    pub go_api_client: super::assemble::ApiClientArgument,

    #[command(flatten)]
    pub builder: BuilderArgs,
}

pub fn run(args: LockCommandArgs) -> Result<(), CliError> {
    let started = Instant::now();
    // A source tree (unpacked when an archive) supplies the lock and the project.
    let unpacked = tempfile::tempdir()?;
    let source = match &args.source {
        None => None,
        Some(path) if path.is_dir() => Some(path.clone()),
        Some(archive) => Some(crate::archive::unpack_tree(
            archive,
            unpacked.path(),
            &super::limits(),
        )?),
    };
    let mut input = args.input.clone();
    if let Some(source) = &source {
        if input.lock.lock == Path::new("uv.lock") {
            input.lock.lock = source.join("uv.lock");
        }
        input.lock.project.get_or_insert_with(|| source.clone());
    }
    let recipe = match &args.recipe {
        Some(path) => Some(crate::assemble::RecipeWithoutLock::load(
            crate::assemble::RecipeChoice::File(path),
        )?),
        None => None,
    };
    if let Some(recipe) = &recipe {
        let mut overrides = recipe.recipe.overrides.clone();
        overrides.append(&mut input.selection.overrides);
        input.selection.overrides = overrides;
    }
    let (plan, target, lock) = plan_from_args(&input, &args.builder.cache)?;
    if target.interpreter.is_none() {
        tracing::warn!(
            "no interpreter for this target here: build environments are resolved from the static [build-system] requires only; lock again with --python on a machine that has it to check them with the backends"
        );
    }
    let project_directory = input
        .lock
        .project
        .clone()
        .unwrap_or_else(|| lock.directory().to_path_buf());
    let options = args.builder.options()?;
    let recipe_parts = recipe.as_ref().map(|recipe| &recipe.recipe);
    let akpkg_lock = pipeline::lock(
        &pipeline::LockRequest {
            plan: &plan,
            target: &target,
            source_lock: &input.lock.lock,
            project_directory: &project_directory,
            server: recipe_parts.and_then(|recipe| recipe.server.as_ref()),
            web: recipe_parts.and_then(|recipe| recipe.web.as_ref()),
            options: &options,
            generate_go_api_client: args.go_api_client
                == super::assemble::ApiClientArgument::Generate,
            go: args.go.as_deref(),
            progress: &super::progress::DownloadBar::new(),
        },
        |name| args.builder.build.config_settings(name),
    )?;
    pipeline::write_lock_file(&args.output, &akpkg_lock)?;
    let mut report = String::new();
    if let Some(source) = &source {
        report.push_str(&format!(
            "source tree {} (the recipe's [source] tree)\n",
            crate::fetch::tree_id(source)?
        ));
        // Each patch alone against the pristine tree: every one that no longer applies.
        if let Some(recipe) = &recipe {
            for (origin, failure) in crate::patch::check_each(&recipe.patches, source) {
                match failure {
                    None => report.push_str(&format!("patch applies: {origin}\n")),
                    Some(error) => report.push_str(&format!("patch FAILS: {error}\n")),
                }
            }
        }
    }
    print(&format!(
        "wrote {}: {} runtime artifacts, {} git sources, {} builds in {} environments{}, in {:.1}s\n",
        args.output.display(),
        akpkg_lock.runtime.len(),
        akpkg_lock.git.len(),
        akpkg_lock.build.len(),
        akpkg_lock.environment.len(),
        akpkg_lock
            .go
            .as_ref()
            .map_or_else(String::new, |go| format!(
                ", {} Go module versions (go {})",
                go.modules.len(),
                go.go
            )),
        started.elapsed().as_secs_f64()
    ))?;
    print(&report)
}
