//! The command line: parse arguments, call the stages, print. Nothing else lives here.

mod assemble;
mod build;
mod fetch;
mod install;
mod layer;
mod lock;
mod plan;
mod progress;

use std::io::Write;
use std::process::ExitCode;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Build authentik's Python backend from pinned sources into a relocatable prefix.
///
/// `akpkg assemble --prefix /opt/authentik --source authentik-2025.12.4.tar.gz` runs the whole
/// pipeline with the built-in recipe: fetch every pinned artifact (verified by sha256), patch
/// the source, build what has no wheel with akpkg's own PEP 517 frontend in pinned environments,
/// install, verify, and move the prefix into place. The other commands are its stages.
#[derive(Debug, Parser)]
#[command(
    name = "akpkg",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,

    /// More log output on stderr (-v: progress, -vv: debug). RUST_LOG overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build the application (by default authentik 2025.12.4) from source into a verified,
    /// relocatable prefix: plan, fetch, patch, build, install, copy, verify, move into place.
    Assemble(assemble::AssembleArgs),
    /// Write a prefix as a byte-reproducible layer tarball (and OCI image layout).
    Layer(layer::LayerCommandArgs),
    /// Check a prefix: files against their RECORDs, every distribution imports, Django loads.
    Verify(assemble::VerifyArgs),
    /// Apply (or with --check, dry-run) a recipe's patches to a source tree.
    Patch(assemble::PatchArgs),
    /// Show what would be installed for a target interpreter, and why.
    Plan(plan::PlanArgs),
    /// Write akpkg's lock: upstream's lock plus every build environment (resolved, checked with
    /// the backends, pinned by hash), git tree ids and the chosen artifacts, for one target.
    Lock(lock::LockCommandArgs),
    /// Download every wheel and sdist a plan needs into the cache, verified by sha256.
    Fetch(fetch::FetchArgs),
    /// Build one wheel from an sdist, a git archive or a source tree with akpkg's PEP 517
    /// frontend, in an isolated environment resolved and pinned by hash (plumbing).
    BuildWheel(build::BuildWheelArgs),
    /// Install wheel files into a prefix (plumbing: no dependency handling).
    Install(install::InstallArgs),
    /// Maintain the cache.
    #[command(subcommand)]
    Cache(fetch::CacheCommand),
}

#[derive(Debug, Args)]
pub struct CacheArgs {
    /// The cache directory [default: $AKPKG_CACHE_DIR, else $XDG_CACHE_HOME/akpkg, else
    /// ~/.cache/akpkg].
    #[arg(long, value_name = "DIR", env = "AKPKG_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl CacheArgs {
    pub fn resolve(&self) -> Result<PathBuf, CliError> {
        if let Some(directory) = &self.cache_dir {
            return Ok(directory.clone());
        }
        let xdg = std::env::var_os("XDG_CACHE_HOME").filter(|value| !value.is_empty());
        if let Some(xdg) = xdg {
            return Ok(PathBuf::from(xdg).join("akpkg"));
        }
        std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".cache/akpkg"))
            .ok_or_else(|| {
                CliError::Usage(
                    "no cache directory: set --cache-dir, AKPKG_CACHE_DIR or HOME".to_string(),
                )
            })
    }
}

/// Errors from any stage, as the CLI reports them.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    #[error(transparent)]
    Target(#[from] crate::target::TargetError),
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    #[error(transparent)]
    Fetch(#[from] crate::fetch::FetchError),
    #[error(transparent)]
    Install(#[from] crate::install::InstallError),
    #[error(transparent)]
    Build(#[from] crate::build::BuildError),
    /// Boxed: it wraps every stage's error and would make every result large.
    #[error(transparent)]
    Assemble(Box<crate::assemble::AssembleError>),
    #[error(transparent)]
    Patch(#[from] crate::patch::PatchError),
    #[error(transparent)]
    Layer(#[from] crate::layer::LayerError),
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    #[error("{0}")]
    Usage(String),
}

impl From<crate::assemble::AssembleError> for CliError {
    fn from(error: crate::assemble::AssembleError) -> CliError {
        CliError::Assemble(Box::new(error))
    }
}

/// Run akpkg with the process's arguments; the binary's `main` is only this.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    progress::set_quiet(cli.quiet);
    let result = match cli.command {
        Command::Plan(args) => plan::run(args),
        Command::Assemble(args) => assemble::run(args),
        Command::Verify(args) => assemble::run_verify(args),
        Command::Layer(args) => layer::run(args),
        Command::Patch(args) => assemble::run_patch(args),
        Command::Fetch(args) => fetch::run(args),
        Command::Lock(args) => lock::run(args),
        Command::Install(args) => install::run(args),
        Command::BuildWheel(args) => build::run(args),
        Command::Cache(command) => fetch::run_cache(command),
    };
    log_peak_memory();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // A closed pipe (`akpkg plan | head`) is not worth a message.
            if let CliError::Output(io) = &error
                && io.kind() == std::io::ErrorKind::BrokenPipe
            {
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(std::io::stderr(), "error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Log akpkg's own peak resident memory: `/usr/bin/time` reports the largest of akpkg and its
/// children (build backends, compilers, the verify interpreter), which hides akpkg's share.
fn log_peak_memory() {
    let peak_kilobytes = fs_err::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| {
                    value
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        });
    if let Some(kilobytes) = peak_kilobytes {
        tracing::info!("peak memory of akpkg itself: {} MB", kilobytes / 1024);
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("akpkg={level}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .init();
}

/// Write to stdout, so a closed pipe surfaces as an error rather than a panic.
fn print(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}
