//! `akpkg install`: plumbing that installs given wheel files into a prefix, no dependencies.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, ValueEnum};

use super::{CacheArgs, CliError, print};
use crate::install::{self, InstallOptions, Layout, LinkMode, WheelToInstall};
use crate::interpreter::Target;

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The wheel files to install (no dependency handling: give all of them).
    #[arg(required = true, value_name = "WHEEL")]
    pub wheels: Vec<PathBuf>,

    /// The prefix: a virtual-environment layout is created there if missing.
    #[arg(long, value_name = "DIR")]
    pub prefix: PathBuf,

    /// Write the files under DESTDIR/PREFIX while their content refers to PREFIX (staging for a
    /// package or image, as `make install DESTDIR=…` does).
    #[arg(long, value_name = "DIR")]
    pub destdir: Option<PathBuf>,

    /// The interpreter the wheels are for: a path, a command on PATH, or a version such as
    /// 3.13 to discover.
    #[arg(long, value_name = "PYTHON")]
    pub python: Option<String>,

    /// The interpreter the prefix will run with in its final place, if not --python's.
    #[arg(long, value_name = "PATH")]
    pub runtime_python: Option<PathBuf>,

    /// How files reach the prefix from the unpack cache.
    #[arg(long, value_enum, default_value_t = LinkModeArg::Copy)]
    pub link_mode: LinkModeArg,

    /// Byte-compile installed modules (unchecked-hash pycs, one sorted pass).
    #[arg(long)]
    pub compile: bool,

    /// Install a wheel even if its RECORD disagrees with its contents (named in a warning).
    #[arg(long)]
    pub no_verify_record: bool,

    /// Write `#!PREFIX/bin/python` launchers instead of relocatable ones (when the path fits a
    /// `#!` line).
    #[arg(long)]
    pub absolute_shebangs: bool,

    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LinkModeArg {
    /// Independent copies.
    Copy,
    /// Hard links into the cache (falls back to copies across file systems).
    Hardlink,
    /// Copy-on-write clones where the file system supports them, else copies.
    Reflink,
}

pub fn run(args: InstallArgs) -> Result<(), CliError> {
    let started = Instant::now();
    let cache = args.cache.resolve()?;
    let target = match &args.python {
        Some(python) => super::plan::target_for_python(python, Some(&cache))?,
        None => Target::discover(None, Some(&cache))?,
    };
    let layout = Layout::new(
        &target,
        &args.prefix,
        args.destdir.as_deref(),
        args.runtime_python.as_deref(),
    )?;
    let options = InstallOptions {
        cache,
        link_mode: match args.link_mode {
            LinkModeArg::Copy => LinkMode::Copy,
            LinkModeArg::Hardlink => LinkMode::Hardlink,
            LinkModeArg::Reflink => LinkMode::Reflink,
        },
        verify_record: !args.no_verify_record,
        compile: args.compile,
        absolute_shebangs: args.absolute_shebangs,
        shared_file_rules: Default::default(),
        limits: super::limits(),
    };
    let wheels: Vec<WheelToInstall> = args
        .wheels
        .iter()
        .map(|path| WheelToInstall {
            filename: None,
            path: path.clone(),
            sha256: None,
            requested: true,
            direct_url: None,
        })
        .collect();
    let report = install::install_wheels(&layout, &wheels, &options)?;
    let installed = &report.distributions;
    let files: usize = installed
        .iter()
        .map(|distribution| distribution.files)
        .sum();
    let mut summary = format!(
        "installed {} distributions ({files} files) into {} in {:.2}s\n",
        installed.len(),
        layout.root.display(),
        started.elapsed().as_secs_f64()
    );
    for distribution in installed
        .iter()
        .filter(|distribution| distribution.record_relaxed)
    {
        summary.push_str(&format!(
            "warning: {} was installed although its RECORD disagrees with its contents (--no-verify-record)\n",
            distribution.wheel.display()
        ));
    }
    for warning in &report.warnings {
        summary.push_str(&format!("warning: {warning}\n"));
    }
    print(&summary)
}
