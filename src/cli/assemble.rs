//! `akpkg assemble`, `akpkg verify` and `akpkg patch`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::build::BuilderArgs;
use super::{CliError, print};
use crate::assemble::{
    self, AssembleOptions, LoadedRecipe, RecipeChoice, ServerChoice, SourceArgument,
};

#[derive(Debug, Args)]
pub struct AssembleArgs {
    /// Where the prefix goes. It is staged beside this path and moved into place only after it
    /// passed verification; an existing prefix is replaced only then, and only if akpkg made
    /// it (or it is an empty directory). Missing parent directories are created.
    #[arg(long, value_name = "DIR")]
    pub prefix: PathBuf,

    /// The application's source: a directory or a release archive (.tar.gz). Without it, the
    /// recipe's URL is downloaded. Either way its files must hash to the recipe's tree pin.
    #[arg(long, value_name = "DIR|FILE", help_heading = "Source and recipe")]
    pub source: Option<PathBuf>,

    #[command(flatten)]
    pub recipe: RecipeArgs,

    /// akpkg's lock to use instead of the recipe's (written by `akpkg lock`).
    #[arg(long, value_name = "FILE", help_heading = "Source and recipe")]
    pub lock: Option<PathBuf>,

    /// The interpreter to build and verify with: a path, a command, or a version such as 3.13
    /// [default: one that matches the lock's Python, from PATH or pyenv].
    #[arg(long, value_name = "PYTHON", help_heading = "Interpreter")]
    pub python: Option<String>,

    /// The interpreter the prefix will run with in its final place, if not --python's (for a
    /// layer on the official python:3.13 image: /usr/local/bin/python3.13).
    #[arg(long, value_name = "PATH", help_heading = "Interpreter")]
    pub runtime_python: Option<PathBuf>,

    /// Carry the interpreter and every native library in the prefix, so that it runs on a
    /// bare system of the same architecture with a C library as new as this one's: --python's
    /// CPython is copied in (bin/python3.X, lib/python3.X) and every shared library an ELF file
    /// needs, but the C library's family and the GCC runtime, is grafted into lib/grafted/
    /// under a hashed name with $ORIGIN-relative RUNPATHs, as auditwheel repairs a wheel.
    /// Needs patchelf.
    #[arg(long, conflicts_with = "runtime_python", help_heading = "Interpreter")]
    pub self_contained: bool,

    /// A web UI built elsewhere (authentik's web/dist) to put into the prefix instead of
    /// building the recipe's.
    #[arg(long, value_name = "DIR", help_heading = "Source and recipe")]
    pub web_dist: Option<PathBuf>,

    /// Leave the recipe's web UI out (the login and admin pages are then blank).
    #[arg(long, env = "AKPKG_NO_WEB", help_heading = "Building")]
    pub no_web: bool,

    /// Build from a source whose files do not match the recipe's pin (with a warning).
    #[arg(long, help_heading = "Source and recipe")]
    pub allow_unverified_source: bool,

    /// Do not byte-compile the installed modules.
    #[arg(long, help_heading = "Building")]
    pub no_compile: bool,

    /// Install wheels whose RECORD disagrees with their contents, with a warning naming each
    /// (a digest written as hex that equals the file's is accepted without this).
    #[arg(long, help_heading = "Building")]
    pub no_verify_record: bool,

    /// The go command that builds the recipe's Go server (authentik's `bin/authentik`)
    /// [default: `go` on PATH]. It must be at least the version of go.mod's `go` line.
    #[arg(long, value_name = "PATH", help_heading = "Building")]
    pub go: Option<PathBuf>,

    /// Leave the recipe's Go server out (the prefix then has the Python backend only, and
    /// `bin/ak server` says so).
    #[arg(long, help_heading = "Building")]
    pub no_server: bool,

    /// Rebuild even when the prefix already is what this assemble would make (same inputs,
    /// tree untouched since it was verified), and run the full verify; also replace what is at
    /// --prefix when akpkg did not make it.
    #[arg(long)]
    pub force: bool,

    /// Also write the assembled prefix as a reproducible layer tarball (.tar, .tar.gz,
    /// .tar.zst), rooted at the prefix's path.
    #[arg(long, value_name = "FILE", help_heading = "Layer and image")]
    pub layer: Option<PathBuf>,

    #[command(flatten)]
    pub image: super::layer::ImageArgs,

    /// Print stage events, warnings and the summary (or an error) as JSON lines on stdout.
    #[arg(long, help_heading = "Output")]
    pub json: bool,

    /// Skip the check that the interpreter, git, a C compiler, pkg-config and the native
    /// libraries are there (`akpkg doctor` runs it alone).
    #[arg(long, help_heading = "Building")]
    pub no_preflight: bool,

    #[command(flatten)]
    pub api_clients: ApiClientArgs,

    #[command(flatten)]
    pub builder: BuilderArgs,
}

/// How the API clients are made (each recipe's generator, or the published package).
#[derive(Debug, Args)]
#[command(next_help_heading = "Building")]
pub struct ApiClientArgs {
    /// How the web UI gets its API client: `generate` it from the source's schema with the
    /// recipe's pinned openapi-generator (as upstream does; needs Java), or install the
    /// `locked` one from the registry.
    #[arg(long, value_enum, default_value = "generate", value_name = "HOW")]
    pub api_client: ApiClientArgument,

    /// The Go server's API client (the recipe's [server.api-client]): `generate` it from the
    /// release's schema with the pinned openapi-generator (as upstream's `make gen-client-go`;
    /// needs Java), or build with the `locked` module go.sum pins (needs a lock made with
    /// `akpkg lock --go-api-client locked` and a proxy that has the module).
    #[arg(long, value_enum, default_value = "generate", value_name = "HOW")]
    pub go_api_client: ApiClientArgument,
}

/// Which recipe: a file, or one of the releases built into akpkg.
#[derive(Debug, Args)]
pub struct RecipeArgs {
    /// A recipe file [default: the newest built-in release's recipe].
    #[arg(long, value_name = "FILE", help_heading = "Source and recipe")]
    pub recipe: Option<PathBuf>,

    /// A release built into akpkg, such as 2025.12.4 (`akpkg releases` lists them)
    /// [default: the newest].
    #[arg(
        long,
        value_name = "VERSION",
        conflicts_with = "recipe",
        help_heading = "Source and recipe"
    )]
    pub release: Option<String>,
}

impl RecipeArgs {
    pub fn choice(&self) -> RecipeChoice<'_> {
        RecipeChoice::of(self.recipe.as_deref(), self.release.as_deref())
    }
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The prefix to check.
    #[arg(long, value_name = "DIR")]
    pub prefix: PathBuf,

    /// Only check files against the RECORDs; import nothing.
    #[arg(long)]
    pub files_only: bool,

    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PatchArgs {
    /// The source tree to patch.
    #[arg(long, value_name = "DIR")]
    pub source: PathBuf,

    #[command(flatten)]
    pub recipe: RecipeArgs,

    /// Only check that every patch applies; change nothing.
    #[arg(long)]
    pub check: bool,
}

pub fn run(args: AssembleArgs) -> Result<(), CliError> {
    let started = Instant::now();
    if args.image.oci.is_some() && args.layer.is_none() {
        return Err(CliError::Usage(
            "--oci needs --layer FILE: the image is made of that layer".to_string(),
        ));
    }
    let loaded = LoadedRecipe::load(args.recipe.choice(), args.lock.as_deref())?;
    let mut build_options = args.builder.options()?;
    build_options.source_date_epoch =
        crate::timestamp::source_date_epoch(loaded.recipe.source.source_date_epoch);
    let git_from_archives =
        !args.builder.network.git_archive.is_empty() || args.builder.network.bundle.is_some();
    let target =
        super::doctor::target_for_lock(&loaded, args.python.as_deref(), &build_options.cache);
    let found_go = super::doctor::find_go(&loaded, (!args.no_server).then_some(args.go.as_deref()));
    let toolchain = found_go
        .as_ref()
        .and_then(|found| found.as_ref().ok().cloned());
    let options = assemble_options(&args, &loaded, build_options, toolchain)?;
    let reporter = super::progress::StageReporter::new(args.json);
    // Nothing to do is answered before the pre-flight: an up-to-date prefix needs no build tool.
    let early = match &target {
        Ok(target) => assemble::up_to_date(&loaded, target, &options, &reporter)?,
        Err(_) => None,
    };
    let summary = match early {
        Some(summary) => summary,
        None => {
            preflight(
                &args,
                &loaded,
                &target,
                found_go.as_ref(),
                git_from_archives,
            )?;
            assemble::assemble(&loaded, &target?, &options, &reporter)?
        }
    };
    let layer = match &args.layer {
        Some(output) => Some(args.image.write(
            &summary.prefix,
            &summary.prefix.display().to_string(),
            output,
        )?),
        None => None,
    };
    print_summary(&args, &loaded, &summary, layer.as_ref(), started)
}

/// The pre-flight: everything this machine lacks, reported at once, before anything is
/// fetched; an error unless `--no-preflight` goes on anyway.
fn preflight(
    args: &AssembleArgs,
    loaded: &LoadedRecipe,
    target: &Result<crate::interpreter::Target, CliError>,
    found_go: Option<&Result<crate::server::Toolchain, crate::server::ServerError>>,
    git_from_archives: bool,
) -> Result<(), CliError> {
    let report = super::doctor::preflight_report(
        loaded,
        target,
        found_go,
        git_from_archives,
        crate::preflight::OptionalTools {
            java: crate::preflight::JavaFor::default(),
            patchelf: args.self_contained,
        },
    );
    let missing = report.missing();
    // An interpreter that is missing or wrong keeps its own, more precise message when it is
    // the only problem.
    if missing.len() > 1 || (missing.len() == 1 && target.is_ok()) {
        if !args.no_preflight {
            return Err(CliError::Usage(format!(
                "this machine cannot assemble {} {} yet:\n{}(`akpkg doctor` checks again; --no-preflight goes on anyway, for a build cache that already holds these wheels)",
                loaded.recipe.name,
                loaded.recipe.version,
                report.describe_missing()
            )));
        }
        super::warn(&format!(
            "going on without:\n{}",
            report.describe_missing().trim_end()
        ));
    }
    Ok(())
}

/// The run's summary: one JSON object with `--json`, else a line (none with `--quiet`).
fn print_summary(
    args: &AssembleArgs,
    loaded: &LoadedRecipe,
    summary: &assemble::AssembleSummary,
    layer: Option<&crate::layer::Written>,
    started: Instant,
) -> Result<(), CliError> {
    let layer_text = layer.map(super::layer::written_text).unwrap_or_default();
    if args.json {
        let mut value =
            serde_json::to_value(summary).map_err(|error| CliError::Output(error.into()))?;
        value["event"] = "summary".into();
        value["seconds"] = started.elapsed().as_secs_f64().into();
        value["layer"] =
            serde_json::to_value(layer).map_err(|error| CliError::Output(error.into()))?;
        return print(&format!("{value}\n"));
    }
    if super::progress::is_quiet() {
        return Ok(());
    }
    let mut text = String::new();
    if summary.up_to_date {
        text.push_str(&format!(
            "{} is up to date: same inputs as when it was assembled, and its tree unchanged since it was verified; nothing to do (--force rebuilds); {:.2}s\n",
            summary.prefix.display(),
            started.elapsed().as_secs_f64()
        ));
        text.push_str(&layer_text);
        return print(&text);
    }
    text.push_str(&format!(
        "assembled {} {} into {}: {} distributions installed, {} built ({} from the build cache{}){}{}, {} files downloaded{}; {:.0} MB; verified {} files and {} modules{}{}; {:.1}s\n",
        loaded.recipe.name,
        loaded.recipe.version,
        summary.prefix.display(),
        summary.installed,
        summary.built,
        summary.built_from_cache,
        if summary.built_from_remote_cache > 0 { format!(", {} of them from the remote cache", summary.built_from_remote_cache) } else { String::new() },
        summary.server.as_ref().map_or_else(String::new, |server| format!(
            ", the server {} ({} Go modules{})",
            server.binary,
            server.modules,
            from_which_cache(server.from_cache, server.from_remote_cache)
        )),
        summary.web.as_ref().map_or_else(String::new, |web| format!(
            ", the web UI {} ({} files, {} npm packages, {} overrides{})",
            web.output,
            web.files,
            web.packages,
            web.overrides,
            from_which_cache(web.from_cache, web.from_remote_cache)
        )),
        summary.downloaded,
        if summary.downloaded_from_remote_cache > 0 { format!(" ({} from the remote cache)", summary.downloaded_from_remote_cache) } else { String::new() },
        summary.size_bytes as f64 / 1e6,
        summary.verify.files,
        summary.verify.modules,
        summary.verify.django_apps.map_or_else(String::new, |apps| format!(" with {apps} Django apps")),
        if summary.verify.imports_proven_before { " (imports as proven before for the same files; --force checks them again)" } else { "" },
        started.elapsed().as_secs_f64()
    ));
    text.push_str(&layer_text);
    print(&text)
}

/// `, from the build cache`, `, from the remote cache` or nothing.
fn from_which_cache(from_cache: bool, from_remote_cache: bool) -> &'static str {
    match (from_cache, from_remote_cache) {
        (_, true) => ", from the remote cache",
        (true, false) => ", from the build cache",
        (false, false) => "",
    }
}

/// What `assemble` is asked to do, from the arguments.
fn assemble_options(
    args: &AssembleArgs,
    loaded: &LoadedRecipe,
    build_options: crate::pep517::BuildOptions,
    toolchain: Option<crate::server::Toolchain>,
) -> Result<AssembleOptions, CliError> {
    let mut config_settings = BTreeMap::new();
    for build in &loaded.lock.build {
        config_settings.insert(
            build.name.clone(),
            args.builder.build.config_settings(&build.name)?,
        );
    }
    Ok(AssembleOptions {
        prefix: args.prefix.clone(),
        source: match &args.source {
            Some(path) => SourceArgument::Path(path.clone()),
            None => SourceArgument::FromRecipe,
        },
        runtime_python: args.runtime_python.clone(),
        closure: if args.self_contained {
            crate::closure::Closure::SelfContained
        } else {
            crate::closure::Closure::SystemLibraries
        },
        web_dist: args.web_dist.clone(),
        allow_unverified_source: args.allow_unverified_source,
        compile: !args.no_compile,
        verify_record: !args.no_verify_record,
        fetch: build_options.fetch.clone(),
        build: build_options,
        config_settings,
        force: args.force,
        server: ServerChoice {
            build: !args.no_server,
            go_command: args.go.clone(),
            toolchain,
            api_client: match args.api_clients.go_api_client {
                ApiClientArgument::Generate => crate::server::GoApiClientChoice::Generate,
                ApiClientArgument::Locked => crate::server::GoApiClientChoice::Locked,
            },
        },
        web: assemble::WebChoice {
            build: !args.no_web,
            api_client: match args.api_clients.api_client {
                ApiClientArgument::Generate => crate::web::ApiClientChoice::Generate,
                ApiClientArgument::Locked => crate::web::ApiClientChoice::Locked,
            },
        },
    })
}

pub fn run_verify(args: VerifyArgs) -> Result<(), CliError> {
    let started = Instant::now();
    let assemble::VerifiedPrefix {
        report,
        native,
        unverified_source: unverified,
    } = assemble::verify_assembled(&args.prefix, args.files_only)?;
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        let value = serde_json::json!({
            "event": "summary",
            "prefix": args.prefix,
            "distributions": report.distributions,
            "files": report.files,
            "imports_checked": !args.files_only,
            "modules": report.modules,
            "django_apps": report.django_apps,
            "unverified_source": unverified,
            "native": native,
            "native_packages": native.packages(),
            "seconds": seconds,
        });
        return print(&format!("{value}\n"));
    }
    if let Some(source) = &unverified {
        super::warn(source);
    }
    let mut outside: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (file, entry) in &native.runpaths_outside {
        outside.entry(entry).or_default().push(file);
    }
    for (entry, files) in outside {
        super::warn(&format!(
            "{} ELF files ({}{}) look for libraries in {entry}, outside the prefix: they find them only where that path exists",
            files.len(),
            files[0],
            if files.len() > 1 { ", …" } else { "" }
        ));
    }
    if super::progress::is_quiet() {
        return Ok(());
    }
    let imports = if args.files_only {
        "imports not checked (--files-only)".to_string()
    } else {
        format!(
            "{} modules import{}",
            report.modules,
            report
                .django_apps
                .map_or_else(String::new, |apps| format!(", {apps} Django apps load"))
        )
    };
    let needs = match native.install_line() {
        Some(line) => format!(
            "\nits {} ELF files need these Debian packages at run time: {line}\n",
            native.elf_files
        ),
        None => format!(
            "\nits {} ELF files need nothing beyond the C library\n",
            native.elf_files
        ),
    };
    print(&format!(
        "{} is intact: {} distributions, {} files match their RECORDs, {imports}; {seconds:.1}s{needs}",
        args.prefix.display(),
        report.distributions,
        report.files,
    ))
}

pub fn run_patch(args: PatchArgs) -> Result<(), CliError> {
    let loaded = LoadedRecipe::load(args.recipe.choice(), None)?;
    let reports = crate::patch::apply(&loaded.patches, &args.source, args.check)?;
    let verb = if args.check { "applies" } else { "applied" };
    let mut text = String::new();
    for report in &reports {
        text.push_str(&format!(
            "{verb}: {} ({})\n",
            report.origin,
            report.files.join(", ")
        ));
    }
    text.push_str(&format!(
        "{} patches of {} {} {verb} to {}\n",
        reports.len(),
        loaded.recipe.name,
        loaded.recipe.version,
        args.source.display()
    ));
    print(&text)
}

/// `--api-client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ApiClientArgument {
    Generate,
    Locked,
}
