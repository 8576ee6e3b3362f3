//! `akpkg releases` and `akpkg release new`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::build::BuilderArgs;
use super::lock::LockCommandArgs;
use super::plan::{LockArgs, PlanInputArgs, SelectionArgs, TargetArgs};
use super::{CliError, print};
use crate::assemble::{LoadedRecipe, RELEASES, RecipeChoice};
use crate::release::{Interpreter, NewReleaseOptions, PreviousRecipe};

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// The releases built into akpkg, with the Python, Node and Go each builds with.
    List(ListArgs),
    /// Write a new release's recipe, file listing, patches and lock from the previous
    /// release's, and report what changed that needs a person: the Python, Node and Go the
    /// source now requires, the patches that no longer apply, the npm overrides no longer
    /// needed and the locked tarballs the registry lacks, the Go modules no proxy has, and the
    /// build files (Dockerfile, Makefile) that changed.
    New(Box<NewArgs>),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print the list as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The previous release: a built-in version (`akpkg releases`) or a recipe file.
    #[arg(long, value_name = "VERSION|FILE")]
    pub from: String,

    /// The new release's source: its archive (.tar.gz, as `git archive` or a forge makes it)
    /// or a directory.
    #[arg(long, value_name = "FILE|DIR")]
    pub source: PathBuf,

    /// Where the new files go: DIR/lockfiles/NAME-VERSION.{recipe.toml,files,lock} and
    /// DIR/patches/NAME-VERSION/ (akpkg's own checkout keeps its releases there).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub output: PathBuf,

    /// The new version [default: the source's pyproject.toml version].
    #[arg(long, value_name = "VERSION")]
    pub new_version: Option<String>,

    /// The release's commit [default: the one `git archive` records in the archive].
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,

    /// The git tree id to pin (`git rev-parse TAG^{tree}` in a clone you trust) [default: the
    /// tree the source's files hash to].
    #[arg(long, value_name = "TREE")]
    pub tree: Option<String>,

    /// The commit's date in Unix seconds [default: the archive entries' time, which `git
    /// archive` sets to the commit's].
    #[arg(long, value_name = "SECONDS")]
    pub source_date_epoch: Option<u64>,

    /// Write the recipe, listing and patches only; no lock (print the command that writes it).
    #[arg(long)]
    pub no_lock: bool,

    /// The go command that lists what the recipe's Go server reads [default: `go` on PATH].
    #[arg(long, value_name = "PATH")]
    pub go: Option<PathBuf>,

    #[command(flatten)]
    pub target: TargetArgs,

    #[command(flatten)]
    pub builder: BuilderArgs,
}

pub fn run(command: ReleaseCommand) -> Result<(), CliError> {
    match command {
        ReleaseCommand::List(args) => list(&args),
        ReleaseCommand::New(args) => new(*args),
    }
}

/// `akpkg releases`: each built-in release, its Python, Node and Go.
pub fn list(args: &ListArgs) -> Result<(), CliError> {
    let mut rows = Vec::new();
    for (version, _) in RELEASES {
        let loaded = LoadedRecipe::load(RecipeChoice::Release(Some(version)), None)?;
        rows.push(serde_json::json!({
            "name": loaded.recipe.name,
            "version": version,
            "python": loaded.lock.target.python_version,
            "node": loaded.recipe.web.as_ref().map(|web| web.node.version.clone()),
            "go": loaded.lock.go.as_ref().map(|go| go.go.clone()),
            "default": *version == RELEASES.last().map_or("", |(newest, _)| *newest),
        }));
    }
    if args.json {
        return print(&format!("{}\n", serde_json::Value::Array(rows)));
    }
    let mut text = String::from("release     python  node      go\n");
    for row in &rows {
        let field = |key: &str| row[key].as_str().unwrap_or("-").to_string();
        text.push_str(&format!(
            "{:<11} {:<7} {:<9} {}{}\n",
            field("version"),
            field("python"),
            field("node"),
            field("go"),
            if row["default"] == true {
                "   (default)"
            } else {
                ""
            }
        ));
    }
    print(&text)
}

fn new(args: NewArgs) -> Result<(), CliError> {
    let options = args.builder.options()?;
    let previous = if std::path::Path::new(&args.from).is_file() {
        PreviousRecipe::File(PathBuf::from(&args.from))
    } else {
        PreviousRecipe::BuiltIn(args.from.clone())
    };
    let tree = match &args.tree {
        Some(tree) => Some(
            tree.parse()
                .map_err(|error: crate::identity::IdentityError| {
                    CliError::Usage(format!("--tree {tree}: {error}"))
                })?,
        ),
        None => None,
    };
    let release = crate::release::new_release(&NewReleaseOptions {
        previous,
        source: args.source.clone(),
        version: args.new_version.clone(),
        commit: args.commit.clone(),
        tree,
        source_date_epoch: args.source_date_epoch,
        output: args.output.clone(),
        offline: args.builder.network.offline,
        fetch: options.fetch,
    })?;
    print(&release.to_string())?;

    let python = args.target.python.clone().or(match &release.interpreter {
        Interpreter::Found { python, .. } => Some(python.display().to_string()),
        Interpreter::Missing { .. } => None,
    });
    let lock_command = format!(
        "akpkg lock --recipe {} --source {} -o {}{}",
        release.recipe.display(),
        args.source.display(),
        release.lock.display(),
        python
            .as_ref()
            .map_or_else(String::new, |python| format!(" --python {python}"))
    );
    if args.no_lock || python.is_none() {
        return print(&format!(
            "the lock is not written yet; after the above: {lock_command}\n"
        ));
    }
    // The lock stage, exactly as `akpkg lock --recipe NEW --source SRC` runs it.
    super::lock::run(LockCommandArgs {
        input: PlanInputArgs {
            lock: LockArgs {
                lock: release.source.root.join("uv.lock"),
                project: Some(release.source.root.clone()),
            },
            target: TargetArgs {
                python,
                python_version: None,
                platform: None,
            },
            selection: SelectionArgs {
                group: Vec::new(),
                all_groups: false,
                no_binary: Vec::new(),
                overrides: Vec::new(),
                only_binary: Vec::new(),
            },
        },
        output: release.lock.clone(),
        source: Some(release.source.root.clone()),
        recipe: Some(release.recipe.clone()),
        go: args.go,
        go_api_client: super::assemble::ApiClientArgument::Generate,
        builder: args.builder,
    })
}
