//! `akpkg build-wheel`: the PEP 517 frontend as plumbing.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use super::fetch::NetworkArgs;
use super::{CacheArgs, CliError, print};
use crate::interpreter::Target;
use crate::pep517::{self, BuildOptions, BuildRequest, SourceInput};

#[derive(Debug, Args)]
pub struct BuildWheelArgs {
    /// What to build: an sdist (.tar.gz), a git archive (.tar.gz) or a source directory.
    #[arg(value_name = "SOURCE")]
    pub source: PathBuf,

    /// Where to write the wheel.
    #[arg(short = 'o', long = "out-dir", value_name = "DIR")]
    pub out_dir: PathBuf,

    /// The interpreter to build for: a path, a command on PATH, or a version such as 3.13.
    #[arg(long, value_name = "PYTHON")]
    pub python: Option<String>,

    #[command(flatten)]
    pub builder: BuilderArgs,
}

/// What every command that builds takes: how it builds, where its cache is, how it reaches
/// the network.
#[derive(Debug, Args)]
pub struct BuilderArgs {
    #[command(flatten)]
    pub build: BuildArgs,

    #[command(flatten)]
    pub cache: CacheArgs,

    #[command(flatten)]
    pub network: NetworkArgs,
}

impl BuilderArgs {
    /// The build options these arguments give.
    pub fn options(&self) -> Result<BuildOptions, CliError> {
        self.build.options(&self.network, &self.cache)
    }
}

/// Options shared by every command that builds.
#[derive(Debug, Args)]
#[command(next_help_heading = "Building")]
pub struct BuildArgs {
    /// A PEP 517 config setting, `KEY=VALUE`, or `NAME:KEY=VALUE` for one distribution
    /// (repeatable; a key given again becomes a list).
    #[arg(long, value_name = "[NAME:]KEY=VALUE")]
    pub config_setting: Vec<String>,

    /// A variable for the builds, on top of the scrubbed environment (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub build_env: Vec<String>,

    /// Builds at once [default: the number of cores].
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
}

impl BuildArgs {
    pub fn options(
        &self,
        network: &NetworkArgs,
        cache: &CacheArgs,
    ) -> Result<BuildOptions, CliError> {
        let fetch = network.options(cache)?;
        let build_env = self
            .build_env
            .iter()
            .map(|text| {
                text.split_once('=')
                    .filter(|(key, _)| !key.is_empty())
                    .map(|(key, value)| (key.to_string(), value.to_string()))
                    .ok_or_else(|| {
                        CliError::Usage(format!("--build-env {text}: expected KEY=VALUE"))
                    })
            })
            .collect::<Result<_, _>>()?;
        // The date of the inputs, when the command has one, is set by the command afterwards.
        let source_date_epoch = crate::timestamp::source_date_epoch(None);
        Ok(BuildOptions {
            cache: fetch.cache.clone(),
            fetch,
            build_env,
            jobs: self
                .jobs
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)),
            source_date_epoch,
        })
    }

    /// The config settings for distribution `name`: the unqualified ones and its own.
    pub fn config_settings(
        &self,
        name: &str,
    ) -> Result<BTreeMap<String, serde_json::Value>, CliError> {
        let mut settings: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        for text in &self.config_setting {
            let (setting, value) = text.split_once('=').ok_or_else(|| {
                CliError::Usage(format!(
                    "--config-setting {text}: expected [NAME:]KEY=VALUE"
                ))
            })?;
            let key = match setting.split_once(':') {
                Some((distribution, key)) => {
                    let same = pep508_rs::PackageName::new(distribution.to_string())
                        .is_ok_and(|distribution| distribution.as_ref() == name);
                    if !same {
                        continue;
                    }
                    key
                }
                None => setting,
            };
            let value = serde_json::Value::String(value.to_string());
            match settings.get_mut(key) {
                Some(serde_json::Value::Array(values)) => values.push(value),
                Some(existing) => {
                    *existing = serde_json::Value::Array(vec![existing.clone(), value])
                }
                None => {
                    settings.insert(key.to_string(), value);
                }
            }
        }
        Ok(settings)
    }
}

/// The distribution name a source's file or directory name suggests, for logs and settings.
fn name_of(source: &std::path::Path) -> String {
    let file = source
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "source".to_string());
    let stem = file
        .trim_end_matches(".tar.gz")
        .trim_end_matches(".tgz")
        .trim_end_matches(".tar");
    // `name-1.2.3` → `name`: the name ends before the first `-` followed by a digit.
    let end = stem
        .char_indices()
        .find(|(index, character)| {
            *character == '-' && stem[index + 1..].starts_with(|c: char| c.is_ascii_digit())
        })
        .map_or(stem.len(), |(index, _)| index);
    pep508_rs::PackageName::new(stem[..end].to_string())
        .map_or_else(|_| stem.to_string(), |name| name.to_string())
}

pub fn run(args: BuildWheelArgs) -> Result<(), CliError> {
    let options = args.builder.options()?;
    let target = match &args.python {
        Some(python) => super::plan::target_for_python(python, Some(&options.cache))?,
        None => Target::discover(None, Some(&options.cache))?,
    };
    let name = name_of(&args.source);
    let request = BuildRequest {
        config_settings: args.builder.build.config_settings(&name)?,
        name,
        source: SourceInput::from_path(&args.source)?,
        environment: None,
    };
    let built = pep517::build_wheels(std::slice::from_ref(&request), &target, &options)
        .into_iter()
        .next()
        .ok_or_else(|| CliError::Usage("nothing was built".to_string()))??;
    fs_err::create_dir_all(&args.out_dir)?;
    let destination = args.out_dir.join(&built.filename);
    fs_err::copy(&built.path, &destination)?;
    let environment = built
        .environment
        .iter()
        .map(|pin| format!("{}=={}", pin.name, pin.version))
        .collect::<Vec<_>>()
        .join(" ");
    print(&format!(
        "built {} in {:.1}s{} (sha256 {})\n  backend {}, environment: {}\n",
        destination.display(),
        built.seconds,
        if built.from_cache {
            ", from the build cache"
        } else {
            ""
        },
        built.sha256,
        built.backend,
        if environment.is_empty() {
            "(empty)".to_string()
        } else {
            environment
        },
    ))
}
