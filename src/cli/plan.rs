//! `akpkg plan`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, ValueEnum};
use pep440_rs::VersionSpecifiers;
use pep508_rs::PackageName;

use super::{CacheArgs, CliError, print};
use crate::interpreter::{Target, TargetError};
use crate::lock::{self, Lock};
use crate::plan::{self, BinaryPolicy, GroupSelection, Plan, PlanOptions};

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub input: PlanInputArgs,

    /// How to print the plan.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// The same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,

    #[command(flatten)]
    pub cache: CacheArgs,
}

impl PlanArgs {
    pub fn wants_json(&self) -> bool {
        self.json || matches!(self.format, Format::Json)
    }
}

/// What a plan is made from: the lock, the target and the selection.
#[derive(Debug, Clone, Args)]
pub struct PlanInputArgs {
    #[command(flatten)]
    pub lock: LockArgs,

    #[command(flatten)]
    pub target: TargetArgs,

    #[command(flatten)]
    pub selection: SelectionArgs,
}

#[derive(Debug, Clone, Args)]
pub struct LockArgs {
    /// The pinned requirements: uv.lock, a hash-pinned requirements.txt, or pylock.toml.
    #[arg(long, value_name = "FILE", default_value = "uv.lock")]
    pub lock: PathBuf,

    /// The project directory whose pyproject.toml holds `[tool.uv]` settings such as
    /// no-binary-package [default: the lock's directory].
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// The target interpreter: a path, a command on PATH, or a version such as 3.13 to
    /// discover. Without it, one satisfying the lock's requires-python is discovered on PATH
    /// and among pyenv's versions.
    #[arg(long, value_name = "PYTHON", conflicts_with_all = ["python_version", "platform"])]
    pub python: Option<String>,

    /// Plan for a CPython version that is not installed here (with --platform).
    #[arg(long, value_name = "X.Y[.Z]", requires = "platform")]
    pub python_version: Option<String>,

    /// The wheel platform of a target that is not installed here, such as
    /// manylinux_2_36_x86_64 or musllinux_1_2_aarch64 (with --python-version).
    #[arg(long, value_name = "TAG", requires = "python_version")]
    pub platform: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct SelectionArgs {
    /// Also install this dependency group (repeatable); none are installed by default.
    #[arg(long, value_name = "NAME")]
    pub group: Vec<String>,

    /// Install every dependency group.
    #[arg(long)]
    pub all_groups: bool,

    /// Build this package from its sdist instead of using a wheel (repeatable; `:all:` for
    /// every package). Adds to `[tool.uv] no-binary-package`.
    #[arg(long, value_name = "NAME")]
    pub no_binary: Vec<String>,

    /// Change a locked distribution (repeatable): NAME=git+URL@COMMIT, NAME===VERSION (another
    /// version from the index), NAME=./DIR or NAME=/path/file.tar.gz (local), NAME=remove.
    /// A name the lock lacks is added as a dependency of the project.
    #[arg(long = "override", value_name = "NAME=SPEC")]
    pub overrides: Vec<String>,

    /// Only ever use a wheel for this package (repeatable; `:all:` for every package).
    #[arg(long, value_name = "NAME")]
    pub only_binary: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A readable table: name, version, source, action, why.
    Text,
    /// Machine-readable, with the URL, sha256 and size of each chosen artifact.
    Json,
    /// One line per distribution, as `uv export --no-hashes --no-annotate` prints them for
    /// this target (lines whose marker is false left out, markers dropped).
    Requirements,
}

pub fn run(args: PlanArgs) -> Result<(), CliError> {
    let (plan, target, lock) = plan_from_args(&args.input, &args.cache)?;
    let text = match if args.json { Format::Json } else { args.format } {
        Format::Text => plan::render_table(&plan, &target),
        Format::Json => {
            // Streamed: a deep lock's JSON can be far larger than the plan itself.
            let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
            plan::write_json(&plan, &target, &lock.path, &mut stdout)?;
            std::io::Write::write_all(&mut stdout, b"\n")?;
            std::io::Write::flush(&mut stdout)?;
            return Ok(());
        }
        Format::Requirements => plan::render_requirements(&plan),
    };
    print(&text)
}

/// Read the lock and the project's settings, choose the target, and plan: the first steps of
/// every command that works from a lock.
pub fn plan_from_args(
    input: &PlanInputArgs,
    cache: &CacheArgs,
) -> Result<(Plan, Target, Lock), CliError> {
    let PlanInputArgs {
        lock: lock_args,
        target: target_args,
        selection,
    } = input;
    let started = Instant::now();
    let mut lock = lock::read(&lock_args.lock)?;
    let project_directory = lock_args
        .project
        .clone()
        .unwrap_or_else(|| lock.directory().to_path_buf());
    let settings = lock::read_project_settings(&project_directory)?;
    let options = PlanOptions {
        groups: GroupSelection {
            groups: selection.group.clone(),
            all_groups: selection.all_groups,
        },
        binary: binary_policy(&settings, selection)?,
    };
    let read_time = started.elapsed();

    // The cache only remembers interpreter probes here; without one, probe every time.
    let resolved = cache.resolve().ok();
    if !selection.overrides.is_empty() {
        let overrides = resolve_overrides(&selection.overrides, cache)?;
        for warning in lock::apply_overrides(&mut lock, &overrides)? {
            tracing::warn!("{warning}");
        }
    }
    let target = select_target(target_args, &lock, resolved.as_ref())?;
    let planning = Instant::now();
    let plan = plan::plan(&lock, &target, &options)?;
    tracing::info!(
        distributions = plan.distributions.len(),
        read_ms = read_time.as_secs_f64() * 1e3,
        plan_ms = planning.elapsed().as_secs_f64() * 1e3,
        "planned"
    );
    Ok((plan, target, lock))
}

/// Parse `--override`s and look up the files of index versions (by sha256, as any lock has
/// them).
fn resolve_overrides(texts: &[String], cache: &CacheArgs) -> Result<Vec<lock::Override>, CliError> {
    let mut index = None;
    let mut overrides = Vec::new();
    for text in texts {
        let mut item = lock::parse_override(text, "--override").map_err(CliError::Usage)?;
        // Local paths are the caller's, relative to the current directory.
        if let lock::OverrideSource::Path(path) = &mut item.source {
            *path = std::path::absolute(&*path)?;
        }
        if let lock::OverrideSource::Index {
            version,
            wheels,
            sdist,
        } = &mut item.source
        {
            if index.is_none() {
                index = Some(crate::fetch::IndexClient::new(
                    &crate::fetch::FetchOptions {
                        network: crate::http::HttpOptions {
                            limits: super::limits(),
                            ..crate::http::HttpOptions::default()
                        },
                        ..crate::fetch::FetchOptions::new(cache.resolve()?)
                    },
                )?);
            }
            let Some(client) = &index else { continue };
            for file in client.files(item.name.as_ref())? {
                let Some(hash) = file
                    .sha256
                    .as_ref()
                    .and_then(|sha256| lock::Hash::parse(&format!("sha256:{sha256}")))
                else {
                    continue;
                };
                let artifact = lock::Artifact {
                    filename: file.filename.clone(),
                    url: Some(file.url.clone()),
                    path: None,
                    hash: Some(hash),
                    size: None,
                };
                if let Ok(wheel) = file.filename.parse::<crate::tags::WheelFilename>() {
                    if wheel.version == *version {
                        wheels.push(artifact);
                    }
                } else if file.filename.ends_with(".tar.gz")
                    && file.filename.rsplit_once('-').is_some_and(|(_, rest)| {
                        rest.trim_end_matches(".tar.gz")
                            .parse::<pep440_rs::Version>()
                            .ok()
                            .as_ref()
                            == Some(version)
                    })
                {
                    *sdist = Some(artifact);
                }
            }
            if wheels.is_empty() && sdist.is_none() {
                return Err(CliError::Usage(format!(
                    "--override {text}: the index has no files of {} {version}",
                    item.name
                )));
            }
        }
        overrides.push(item);
    }
    Ok(overrides)
}

/// The target from --python, --python-version/--platform, or discovery.
pub fn select_target(
    args: &TargetArgs,
    lock: &Lock,
    cache: Option<&crate::cache::Cache>,
) -> Result<Target, CliError> {
    if let (Some(version), Some(platform)) = (&args.python_version, &args.platform) {
        return Ok(Target::described(version, platform)?);
    }
    match &args.python {
        None => Ok(Target::discover(lock.requires_python.as_ref(), cache)?),
        Some(python) => target_for_python(python, cache),
    }
}

/// `--python`: a version to discover (`3.13`), else a path or command to probe.
pub fn target_for_python(
    python: &str,
    cache: Option<&crate::cache::Cache>,
) -> Result<Target, CliError> {
    match (version_request(python), cache) {
        // The version is the user's own flag: say so, not that the lock's range failed.
        (Some(specifiers), _) => Target::discover(Some(&specifiers), cache).map_err(|error| {
            match error {
                TargetError::NoInterpreter { tried, .. } => TargetError::NoRequestedVersion {
                    version: python.to_string(),
                    tried,
                },
                other => other,
            }
            .into()
        }),
        (None, Some(cache)) => Ok(Target::from_interpreter_cached(Path::new(python), cache)?),
        (None, None) => Ok(Target::from_interpreter(Path::new(python))?),
    }
}

/// `3.13` → `==3.13.*`, `3.13.1` → `==3.13.1`; anything else is a path or command.
fn version_request(text: &str) -> Option<VersionSpecifiers> {
    let numeric = !text.is_empty() && text.split('.').all(|part| part.parse::<u16>().is_ok());
    let parts = text.split('.').count();
    if !numeric || !(2..=3).contains(&parts) || Path::new(text).exists() {
        return None;
    }
    let specifier = if parts == 2 {
        format!("=={text}.*")
    } else {
        format!("=={text}")
    };
    specifier.parse().ok()
}

fn binary_policy(
    settings: &lock::ProjectSettings,
    selection: &SelectionArgs,
) -> Result<BinaryPolicy, CliError> {
    let mut policy = BinaryPolicy::from_project(settings);
    // The command line overrides the project: a name given to one flag leaves the other list.
    for (flag, values, only_binary) in [
        ("--no-binary", &selection.no_binary, false),
        ("--only-binary", &selection.only_binary, true),
    ] {
        let (list, other) = if only_binary {
            (&mut policy.only_binary, &mut policy.no_binary)
        } else {
            (&mut policy.no_binary, &mut policy.only_binary)
        };
        // pip accepts comma-separated lists too.
        let items = values
            .iter()
            .flat_map(|value| value.split(','))
            .map(str::trim);
        for item in items.filter(|item| !item.is_empty()) {
            match item {
                ":all:" => list.all = Some(format!("{flag} :all:")),
                ":none:" => {
                    list.all = None;
                    list.names.clear();
                }
                _ => {
                    let name = PackageName::new(item.to_string())
                        .map_err(|error| CliError::Usage(format!("{flag} {item}: {error}")))?;
                    other.names.remove(&name);
                    list.names.insert(name, format!("{flag} {item}"));
                }
            }
        }
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_requests_are_told_from_paths() {
        assert_eq!(version_request("3.13").unwrap().to_string(), "==3.13.*");
        assert_eq!(version_request("3.13.1").unwrap().to_string(), "==3.13.1");
        assert!(version_request("python3.13").is_none());
        assert!(version_request("/usr/bin/python3").is_none());
        assert!(version_request("3").is_none());
    }
}
