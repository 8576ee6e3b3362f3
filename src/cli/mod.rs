//! The command line: parse arguments, call the stages, print. Nothing else lives here.

mod assemble;
mod build;
mod doctor;
mod fetch;
mod install;
mod layer;
mod lock;
mod plan;
mod progress;
mod push;
mod release;
mod style;
#[cfg(test)]
mod suggested_flags;

use std::io::Write;
use std::process::ExitCode;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Build authentik (Python backend, web UI, Go server) from pinned sources into a relocatable
/// prefix.
///
/// `akpkg assemble --prefix /opt/authentik` runs the whole pipeline with the newest built-in
/// release (`akpkg releases`): fetch every pinned input (verified by its hash), patch the source,
/// build what has no wheel with akpkg's own PEP 517 frontend in pinned environments, build the
/// web UI and the Go server, install, verify, and move the prefix into place. The other commands
/// are its stages.
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

    #[command(flatten)]
    global: GlobalArgs,

    #[command(flatten)]
    limits: LimitArgs,
}

/// Options every command takes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
struct GlobalArgs {
    /// More log output on stderr (-v: progress, -vv: debug). RUST_LOG overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// No progress, warnings or summary; only errors (on stderr). JSON asked for with --json
    /// is still printed.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,

    /// Colour on stderr: auto (a terminal, and NO_COLOR unset), always or never.
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto")]
    color: style::ColorChoice,
}

/// Bounds on what untrusted input may cost; the defaults are far above what authentik needs.
#[derive(Debug, Args)]
#[command(next_help_heading = "Limits on untrusted input")]
struct LimitArgs {
    /// Largest download whose size the lock does not give (bytes; K, M, G suffixes).
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_size, default_value = "2G")]
    max_download_size: u64,
    /// Longest time one download may take, all its retries included (seconds).
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 1800)]
    download_deadline: u64,
    /// A download that receives under 1 KiB in this long is abandoned and retried; also the
    /// longest wait for a connection or a reply (seconds).
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 30)]
    stall_timeout: u64,
    /// Largest index page read (bytes; K, M, G suffixes).
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_size, default_value = "64M")]
    max_index_page_size: u64,
    /// Most bytes one archive (wheel, sdist, git archive) may unpack to.
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_size, default_value = "8G")]
    max_unpacked_size: u64,
    /// Most entries one archive may hold.
    #[arg(long, global = true, value_name = "COUNT", default_value_t = 1_000_000)]
    max_archive_entries: u64,
    /// Most bytes an archive may unpack to per byte of its own, checked past 64 MiB.
    #[arg(long, global = true, value_name = "RATIO", default_value_t = 200)]
    max_compression_ratio: u64,
}

impl LimitArgs {
    fn limits(&self) -> crate::limits::Limits {
        crate::limits::Limits {
            unpacked_bytes: self.max_unpacked_size,
            archive_entries: self.max_archive_entries,
            compression_ratio: self.max_compression_ratio.max(1),
            download_bytes: self.max_download_size,
            download_deadline: std::time::Duration::from_secs(self.download_deadline.max(1)),
            stall_timeout: std::time::Duration::from_secs(self.stall_timeout.max(1)),
            index_page_bytes: self.max_index_page_size,
        }
    }
}

/// `123`, `64K`, `64M`, `2G` (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text
        .char_indices()
        .find(|(_, character)| !character.is_ascii_digit())
    {
        Some((index, _)) => text.split_at(index),
        None => (text, ""),
    };
    let multiplier: u64 = match unit
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("`{text}`: expected a size such as 4096, 64M or 2G")),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|number| number.checked_mul(multiplier))
        .ok_or_else(|| format!("`{text}`: expected a size such as 4096, 64M or 2G"))
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build the application (by default the newest built-in release of authentik, see
    /// `akpkg releases`) from source into a verified, relocatable prefix: plan, fetch, patch,
    /// build, install, copy, verify, move into place.
    Assemble(assemble::AssembleArgs),
    /// List the releases built into akpkg (`akpkg release list`).
    Releases(release::ListArgs),
    /// Follow the application's releases: list the built-in ones, or write a new release's
    /// recipe, patches and lock from the previous one's, with a report of what changed.
    #[command(subcommand)]
    Release(release::ReleaseCommand),
    /// Write a prefix as a byte-reproducible layer tarball (and OCI image layout).
    Layer(layer::LayerCommandArgs),
    /// Push an OCI image layout to a registry (blobs first, then the manifest's exact bytes),
    /// as `skopeo copy oci:DIR docker://REFERENCE` would; prints the manifest's digest.
    Push(push::PushArgs),
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
    /// Check that this machine can assemble: the interpreter, git, a C compiler, pkg-config and
    /// the native libraries the locked builds link against; prints the install line.
    Doctor(doctor::DoctorArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print akpkg's man page (roff) on stdout: `akpkg man > akpkg.1`.
    Man,
}

impl Command {
    /// Whether the user asked for JSON on stdout, so an error comes as a JSON object too.
    fn wants_json(&self) -> bool {
        match self {
            Command::Assemble(args) => args.json,
            Command::Verify(args) => args.json,
            Command::Plan(args) => args.wants_json(),
            Command::Fetch(args) => args.json,
            Command::Layer(args) => args.json,
            Command::Push(args) => args.json,
            Command::Doctor(args) => args.json,
            _ => false,
        }
    }
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Cache")]
pub struct CacheArgs {
    /// The cache directory [default: $AKPKG_CACHE_DIR, else $XDG_CACHE_HOME/akpkg, else
    /// ~/.cache/akpkg].
    #[arg(long, value_name = "DIR", env = "AKPKG_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl CacheArgs {
    /// The cache directory, created and marked as akpkg's.
    pub fn resolve(&self) -> Result<crate::cache::Cache, CliError> {
        let cache = self.locate()?;
        crate::cache::mark_cache(&cache)?;
        Ok(cache)
    }

    /// The cache directory, as it is.
    pub fn locate(&self) -> Result<crate::cache::Cache, CliError> {
        if let Some(directory) = &self.cache_dir {
            return Ok(crate::cache::Cache::new(directory));
        }
        let xdg = std::env::var_os("XDG_CACHE_HOME").filter(|value| !value.is_empty());
        if let Some(xdg) = xdg {
            return Ok(crate::cache::Cache::new(PathBuf::from(xdg).join("akpkg")));
        }
        std::env::var_os("HOME")
            .map(|home| crate::cache::Cache::new(PathBuf::from(home).join(".cache/akpkg")))
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
    Target(#[from] crate::interpreter::TargetError),
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    #[error(transparent)]
    Fetch(#[from] crate::fetch::FetchError),
    /// Boxed: it wraps the fetch, build, server and web errors.
    #[error(transparent)]
    Pipeline(Box<crate::pipeline::PipelineError>),

    #[error(transparent)]
    Server(#[from] crate::server::ServerError),
    #[error(transparent)]
    Web(Box<crate::web::WebError>),
    #[error(transparent)]
    Install(#[from] crate::install::InstallError),
    #[error(transparent)]
    Build(#[from] crate::pep517::BuildError),
    /// Boxed: it wraps every stage's error and would make every result large.
    #[error(transparent)]
    Assemble(Box<crate::assemble::AssembleError>),
    #[error(transparent)]
    Patch(#[from] crate::patch::PatchError),
    #[error(transparent)]
    Layer(#[from] crate::layer::LayerError),
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    /// Marking the cache directory as akpkg's.
    #[error(transparent)]
    Cache(#[from] crate::contained::ContainedError),
    /// Boxed: it wraps the fetch and recipe errors.
    #[error(transparent)]
    Release(Box<crate::release::ReleaseError>),
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    #[error("{0}")]
    Usage(String),
}

impl From<crate::pipeline::PipelineError> for CliError {
    fn from(error: crate::pipeline::PipelineError) -> CliError {
        CliError::Pipeline(Box::new(error))
    }
}

impl From<crate::release::ReleaseError> for CliError {
    fn from(error: crate::release::ReleaseError) -> CliError {
        CliError::Release(Box::new(error))
    }
}

impl From<crate::web::WebError> for CliError {
    fn from(error: crate::web::WebError) -> CliError {
        CliError::Web(Box::new(error))
    }
}

impl From<crate::assemble::AssembleError> for CliError {
    fn from(error: crate::assemble::AssembleError) -> CliError {
        CliError::Assemble(Box::new(error))
    }
}

/// The bounds the global flags set (`--max-download-size`, …), read once by `main`; each command
/// puts them into the options it gives the stages, which read no global.
static LIMITS: std::sync::OnceLock<crate::limits::Limits> = std::sync::OnceLock::new();

/// The bounds for this run's options.
fn limits() -> crate::limits::Limits {
    LIMITS.get().copied().unwrap_or_default()
}

/// Run akpkg with the process's arguments; the binary's `main` is only this.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    style::set(cli.global.color);
    init_logging(cli.global.verbose, cli.global.quiet);
    let _ = LIMITS.set(cli.limits.limits());
    progress::set_quiet(cli.global.quiet);
    let json = cli.command.wants_json();
    let result = match cli.command {
        Command::Plan(args) => plan::run(args),
        Command::Assemble(args) => assemble::run(args),
        Command::Releases(args) => release::list(&args),
        Command::Release(command) => release::run(command),
        Command::Verify(args) => assemble::run_verify(args),
        Command::Layer(args) => layer::run(args),
        Command::Push(args) => push::run(args),
        Command::Patch(args) => assemble::run_patch(args),
        Command::Fetch(args) => fetch::run(args),
        Command::Lock(args) => lock::run(args),
        Command::Install(args) => install::run(args),
        Command::BuildWheel(args) => build::run(args),
        Command::Cache(command) => fetch::run_cache(command),
        Command::Doctor(args) => doctor::run(args),
        Command::Completions { shell } => completions(shell),
        Command::Man => man_page(),
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
            if json {
                let object = serde_json::json!({ "event": "error", "error": error.to_string() });
                let _ = print(&format!("{object}\n"));
            }
            let _ = writeln!(std::io::stderr(), "{} {error}", style::error_label());
            ExitCode::FAILURE
        }
    }
}

fn completions(shell: clap_complete::Shell) -> Result<(), CliError> {
    let mut command = <Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "akpkg", &mut script);
    print(&String::from_utf8_lossy(&script))
}

fn man_page() -> Result<(), CliError> {
    let command = <Cli as clap::CommandFactory>::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(command).render(&mut page)?;
    print(&String::from_utf8_lossy(&page))
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
        .with_ansi(style::enabled())
        .with_target(false)
        .without_time()
        .init();
}

/// A warning on stderr, now (nothing under --quiet).
fn warn(message: &str) {
    if !progress::is_quiet() {
        let _ = writeln!(std::io::stderr(), "{} {message}", style::warning_label());
    }
}

/// Write to stdout, so a closed pipe surfaces as an error rather than a panic.
fn print(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}
