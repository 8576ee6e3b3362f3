//! `akpkg doctor`, and the same checks as assemble's pre-flight.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, print};
use crate::assemble::LoadedRecipe;
use crate::interpreter::Target;
use crate::preflight::{self, Report};

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub recipe: super::assemble::RecipeArgs,

    /// akpkg's lock to check for instead of the recipe's.
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,

    /// The interpreter assemble would use (a path, a command, or a version such as 3.13).
    #[arg(long, value_name = "PYTHON")]
    pub python: Option<String>,

    /// Git sources will come from archives (assemble's --git-archive or --bundle): no git.
    #[arg(long)]
    pub no_git: bool,

    /// Check for what assemble --self-contained needs too (patchelf).
    #[arg(long)]
    pub self_contained: bool,

    /// Print the checks as one JSON object.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub cache: super::CacheArgs,
}

pub fn run(args: DoctorArgs) -> Result<(), CliError> {
    let loaded = LoadedRecipe::load(args.recipe.choice(), args.lock.as_deref())?;
    let cache = args.cache.locate()?;
    let (_, report, _) = checked_target(
        &loaded,
        args.python.as_deref(),
        &cache,
        args.no_git,
        Some(None),
        preflight::OptionalTools {
            java: preflight::JavaFor {
                web: true,
                server: true,
            },
            patchelf: args.self_contained,
        },
    );
    if args.json {
        let value = serde_json::json!({
            "event": "summary",
            "recipe": format!("{} {}", loaded.recipe.name, loaded.recipe.version),
            "checks": report.checks,
            "missing": report.missing().len(),
            "install": report.install_lines().map(|(debian, fedora)| serde_json::json!({ "debian": debian, "fedora": fedora })),
        });
        print(&format!("{value}\n"))?;
    } else {
        print(&describe(&loaded, &report))?;
    }
    match report.missing().len() {
        0 => Ok(()),
        missing => Err(CliError::Usage(format!(
            "{missing} requirements missing (see above)"
        ))),
    }
}

fn describe(loaded: &LoadedRecipe, report: &Report) -> String {
    let mut text = format!(
        "what assembling {} {} needs on this machine:\n",
        loaded.recipe.name, loaded.recipe.version
    );
    for check in &report.checks {
        let (status, found) = match &check.found {
            Some(found) => ("ok     ", found.as_str()),
            None => ("missing", "not found"),
        };
        text.push_str(&format!(
            "  {status} {} (for {}): {found}\n",
            check.what, check.needed_for
        ));
        if let Some(problem) = &check.problem {
            text.push_str(&format!("          {problem}\n"));
        }
    }
    if let Some((debian, fedora)) = report.install_lines() {
        text.push_str(&format!(
            "install what is missing:\n  Debian/Ubuntu: {debian}\n  Fedora:        {fedora}\n"
        ));
    }
    text
}

/// The interpreter for the lock (as `--python` names it, or discovered), the pre-flight
/// report, which includes whether one was found, and the go command for the recipe's server
/// when one fits (so that assemble does not look for it again).
pub fn checked_target(
    loaded: &LoadedRecipe,
    python: Option<&str>,
    cache: &crate::cache::Cache,
    git_sources_from_archives: bool,
    go_command: Option<Option<&std::path::Path>>,
    optional: preflight::OptionalTools,
) -> (
    Result<Target, CliError>,
    Report,
    Option<crate::server::Toolchain>,
) {
    let target = target_for_lock(loaded, python, cache);
    let found = find_go(loaded, go_command);
    let report = preflight_report(
        loaded,
        &target,
        found.as_ref(),
        git_sources_from_archives,
        optional,
    );
    (target, report, found.and_then(Result::ok))
}

/// The go command for the recipe's server, when it has one and `go_command` says it is built
/// (`Some(the --go path, if any)`).
pub fn find_go(
    loaded: &LoadedRecipe,
    go_command: Option<Option<&std::path::Path>>,
) -> Option<Result<crate::server::Toolchain, crate::server::ServerError>> {
    match (&loaded.recipe.server, &loaded.lock.go, go_command) {
        (Some(server), Some(go), Some(command)) => {
            Some(crate::server::find_toolchain(server, go, command))
        }
        _ => None,
    }
}

/// The pre-flight report for what was found: the interpreter, the go command, and the probes
/// of the build tools and libraries the lock's builds need.
pub fn preflight_report(
    loaded: &LoadedRecipe,
    target: &Result<Target, CliError>,
    found: Option<&Result<crate::server::Toolchain, crate::server::ServerError>>,
    git_sources_from_archives: bool,
    optional: preflight::OptionalTools,
) -> Report {
    let interpreter = match target {
        Ok(target) => Ok(target
            .interpreter
            .as_ref()
            .map_or_else(String::new, |interpreter| {
                format!(
                    "{} ({})",
                    interpreter.executable.display(),
                    target.python_version
                )
            })),
        Err(error) => Err(error.to_string()),
    };
    let go = found.map(|found| match found {
        Ok(toolchain) => Ok(format!(
            "{} ({})",
            toolchain.command.display(),
            toolchain.version
        )),
        Err(error) => Err(error.to_string()),
    });
    preflight::check(&preflight::Inputs {
        lock: &loaded.lock,
        interpreter,
        git_sources_from_archives,
        go,
        optional: preflight::OptionalTools {
            java: preflight::JavaFor {
                web: optional.java.web
                    && (loaded.recipe.web.as_ref()).is_some_and(|web| web.api_client.is_some()),
                server: optional.java.server
                    && (loaded.recipe.server.as_ref())
                        .is_some_and(|server| server.api_client.is_some()),
            },
            ..optional
        },
    })
}

/// The interpreter `--python` names, or one matching the lock's Python.
pub fn target_for_lock(
    loaded: &LoadedRecipe,
    python: Option<&str>,
    cache: &crate::cache::Cache,
) -> Result<Target, CliError> {
    match python {
        Some(python) => super::plan::target_for_python(python, Some(cache)),
        None => {
            let wanted = format!("=={}.*", loaded.lock.target.python_version);
            let specifiers = wanted.parse().map_err(|_| {
                CliError::Usage(format!(
                    "the lock names Python {}",
                    loaded.lock.target.python_version
                ))
            })?;
            Ok(Target::discover(Some(&specifiers), Some(cache))?)
        }
    }
}
