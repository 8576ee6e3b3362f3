//! The target: the interpreter (real or described) that a plan is made for.
//!
//! A real interpreter is asked by an embedded probe (`probe.py`) for its PEP 508 marker
//! environment, version, ABI and C library; a described one (`--python-version` with
//! `--platform`) gets a marker environment built from those two facts. Either way the
//! supported wheel tags are generated here, in Rust, so both routes rank wheels the same way.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{MarkerEnvironment, MarkerEnvironmentBuilder};
use serde::{Deserialize, Serialize};

use crate::tags::{Platform, TargetTags};

/// The path an interpreter's own build paths become wherever they would name the build
/// machine: in a copied interpreter's files (the closure stage) and in the extension modules
/// compiled against it (the builds' `-ffile-prefix-map`), so that both name the same path.
pub const PLACEHOLDER_PREFIX: &str = "/akpkg-python";

/// Paths every system has: naming them is no trace of the build machine.
pub fn is_system_prefix(path: &Path) -> bool {
    ["/", "/usr", "/usr/local"]
        .iter()
        .any(|system| path == Path::new(system))
}

const PROBE: &str = include_str!("probe.py");

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("cannot run the Python interpreter {python}: {source}")]
    Spawn {
        python: PathBuf,
        source: std::io::Error,
    },

    #[error("the Python interpreter {python} failed to describe itself ({status}): {stderr}")]
    ProbeFailed {
        python: PathBuf,
        status: String,
        stderr: String,
    },

    #[error("the Python interpreter {python} gave an unreadable description: {message}")]
    ProbeOutput { python: PathBuf, message: String },

    #[error("{python} is {implementation} on {sys_platform}; akpkg builds for CPython on Linux")]
    Unsupported {
        python: PathBuf,
        implementation: String,
        sys_platform: String,
    },

    #[error(
        "no Python interpreter satisfies requires-python `{requires_python}`; pass one with --python PATH (or plan for one that is not installed with `akpkg plan --python-version X.Y --platform TAG`). Tried:\n{tried}"
    )]
    NoInterpreter {
        requires_python: String,
        tried: String,
    },

    #[error(
        "no Python {version} found for --python {version}; install it, or pass one with --python PATH. Tried:\n{tried}"
    )]
    NoRequestedVersion { version: String, tried: String },

    #[error(
        "invalid Python version `{value}`: expected MAJOR.MINOR or MAJOR.MINOR.PATCH, such as 3.13"
    )]
    InvalidPythonVersion { value: String },

    #[error(transparent)]
    Platform(#[from] crate::tags::PlatformError),
}

/// A real interpreter, as it described itself.
#[derive(Debug, Clone, Serialize)]
pub struct Interpreter {
    /// The path akpkg was given or found.
    pub path: PathBuf,
    /// `sys.executable`.
    pub executable: PathBuf,
    /// The interpreter a virtual environment made from this one runs (`sys._base_executable`).
    pub base_executable: PathBuf,
    pub prefix: PathBuf,
    pub base_prefix: PathBuf,
    /// `major, minor` of the interpreter.
    pub version: (u8, u8),
    /// Where each kind of installed file goes, relative to an environment's prefix.
    pub scheme: Scheme,
}

/// The interpreter's install scheme (sysconfig's `venv` scheme), relative to a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scheme {
    pub purelib: PathBuf,
    pub platlib: PathBuf,
    pub scripts: PathBuf,
    pub data: PathBuf,
}

/// Everything the plan needs to know about where the distributions will run.
#[derive(Debug, Clone)]
pub struct Target {
    pub markers: MarkerEnvironment,
    pub tags: TargetTags,
    pub platform: Platform,
    pub python_version: Version,
    pub free_threaded: bool,
    /// `None` for a described (cross) target.
    pub interpreter: Option<Interpreter>,
}

#[derive(Deserialize)]
struct ProbeReport {
    markers: ProbeMarkers,
    executable: PathBuf,
    base_executable: PathBuf,
    scheme: Scheme,
    prefix: PathBuf,
    base_prefix: PathBuf,
    version: (u8, u8, u16),
    free_threaded: bool,
    pointer_bits: u8,
    libc: Option<ProbeLibc>,
}

#[derive(Deserialize)]
struct ProbeMarkers {
    implementation_name: String,
    implementation_version: String,
    os_name: String,
    platform_machine: String,
    platform_python_implementation: String,
    platform_release: String,
    platform_system: String,
    platform_version: String,
    python_full_version: String,
    python_version: String,
    sys_platform: String,
}

#[derive(Deserialize)]
struct ProbeLibc {
    kind: String,
    version: String,
}

impl Target {
    /// Ask a real interpreter.
    pub fn from_interpreter(python: &Path) -> Result<Target, TargetError> {
        let output = run_probe(python)?;
        let report = parse_report(python, &output)?;
        Target::from_report(python, report)
    }

    /// Like [`Target::from_interpreter`], but remembers the probe's report under
    /// `cache/interpreters/`, keyed by the path as given and the interpreter file's path,
    /// size, modification and status-change times, the system's `/etc/ld.so.cache` (a libc update changes it) and the
    /// probe script itself. Only an interpreter that is its own `sys.executable` is remembered:
    /// a pyenv shim or wrapper script can switch interpreters without changing itself.
    pub fn from_interpreter_cached(
        python: &Path,
        cache: &crate::cache::Cache,
    ) -> Result<Target, TargetError> {
        let Some((resolved, key)) = probe_cache_key(python) else {
            return Target::from_interpreter(python);
        };
        let entry = cache
            .bucket(crate::cache::Bucket::Interpreters)
            .join(format!("{key}.json"));
        if let Ok(saved) = fs_err::read(&entry)
            && let Ok(report) = parse_report(python, &saved)
        {
            return Target::from_report(python, report);
        }
        let output = run_probe(python)?;
        let report = parse_report(python, &output)?;
        let is_itself =
            fs_err::canonicalize(&report.executable).is_ok_and(|executable| executable == resolved);
        if is_itself {
            // Best effort: a report that cannot be saved only costs the next run a probe.
            if let Err(error) = crate::cache::publish_bytes(&entry, &output) {
                tracing::debug!("cannot remember the probe of {}: {error}", python.display());
            }
        }
        Target::from_report(python, report)
    }

    fn from_report(python: &Path, report: ProbeReport) -> Result<Target, TargetError> {
        let probe_error = |message: String| TargetError::ProbeOutput {
            python: python.to_path_buf(),
            message,
        };
        let markers = &report.markers;
        if markers.implementation_name != "cpython" || markers.sys_platform != "linux" {
            return Err(TargetError::Unsupported {
                python: python.to_path_buf(),
                implementation: markers.platform_python_implementation.clone(),
                sys_platform: markers.sys_platform.clone(),
            });
        }
        // A 32-bit interpreter on a 64-bit kernel runs i686 wheels, as packaging decides.
        let arch = match (markers.platform_machine.as_str(), report.pointer_bits) {
            ("x86_64", 32) => "i686".to_string(),
            ("aarch64", 32) => "armv7l".to_string(),
            (machine, _) => machine.to_string(),
        };
        let platform = match &report.libc {
            Some(libc) => {
                let (major, minor) = libc_version(&libc.version)
                    .ok_or_else(|| probe_error(format!("libc version `{}`", libc.version)))?;
                match libc.kind.as_str() {
                    "glibc" => Platform::Manylinux { major, minor, arch },
                    _ => Platform::Musllinux { major, minor, arch },
                }
            }
            None => Platform::Linux { arch },
        };
        let environment = MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
            implementation_name: &markers.implementation_name,
            implementation_version: &markers.implementation_version,
            os_name: &markers.os_name,
            platform_machine: &markers.platform_machine,
            platform_python_implementation: &markers.platform_python_implementation,
            platform_release: &markers.platform_release,
            platform_system: &markers.platform_system,
            platform_version: &markers.platform_version,
            python_full_version: &markers.python_full_version,
            python_version: &markers.python_version,
            sys_platform: &markers.sys_platform,
        })
        .map_err(|error| probe_error(error.to_string()))?;
        let (major, minor, _) = report.version;
        Ok(Target {
            tags: TargetTags::cpython(major, minor, report.free_threaded, &platform),
            python_version: environment.python_full_version().version.clone(),
            markers: environment,
            platform,
            free_threaded: report.free_threaded,
            interpreter: Some(Interpreter {
                path: python.to_path_buf(),
                executable: report.executable,
                base_executable: report.base_executable,
                prefix: report.prefix,
                base_prefix: report.base_prefix,
                version: (major, minor),
                scheme: report.scheme,
            }),
        })
    }

    /// Describe CPython `python_version` on `platform` without running it.
    ///
    /// The marker environment is what CPython on Linux reports, with `platform_release` and
    /// `platform_version` empty (they name a kernel build, which a lock never depends on) and a
    /// patch level of 0 when only `MAJOR.MINOR` is given.
    pub fn described(python_version: &str, platform: &str) -> Result<Target, TargetError> {
        let invalid = || TargetError::InvalidPythonVersion {
            value: python_version.to_string(),
        };
        let parts: Vec<u16> = python_version
            .split('.')
            .map(|part| part.parse().map_err(|_| invalid()))
            .collect::<Result<_, _>>()?;
        let (major, minor, patch) = match parts[..] {
            [major, minor] => (major, minor, 0),
            [major, minor, patch] => (major, minor, patch),
            _ => return Err(invalid()),
        };
        let (major, minor) = (
            u8::try_from(major).map_err(|_| invalid())?,
            u8::try_from(minor).map_err(|_| invalid())?,
        );
        let platform = Platform::from_str(platform)?;
        let full = format!("{major}.{minor}.{patch}");
        let short = format!("{major}.{minor}");
        let environment = MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
            implementation_name: "cpython",
            implementation_version: &full,
            os_name: "posix",
            platform_machine: platform.arch(),
            platform_python_implementation: "CPython",
            platform_release: "",
            platform_system: "Linux",
            platform_version: "",
            python_full_version: &full,
            python_version: &short,
            sys_platform: "linux",
        })
        .map_err(|_| invalid())?;
        Ok(Target {
            tags: TargetTags::cpython(major, minor, false, &platform),
            python_version: environment.python_full_version().version.clone(),
            markers: environment,
            platform,
            free_threaded: false,
            interpreter: None,
        })
    }

    /// Find an interpreter that satisfies `requires_python`: `python3.X` on PATH, then
    /// `python3`/`python` on PATH, then pyenv's installed versions, newest first.
    pub fn discover(
        requires_python: Option<&VersionSpecifiers>,
        cache: Option<&crate::cache::Cache>,
    ) -> Result<Target, TargetError> {
        let mut tried = Vec::new();
        let mut seen = HashSet::new();
        for candidate in candidates(requires_python) {
            let canonical = fs_err::canonicalize(&candidate).unwrap_or_else(|_| candidate.clone());
            // The same interpreter is often on PATH under several names; probe it once.
            if !seen.insert(canonical) {
                continue;
            }
            let probed = match cache {
                Some(cache) => Target::from_interpreter_cached(&candidate, cache),
                None => Target::from_interpreter(&candidate),
            };
            match probed {
                Ok(target) => {
                    let satisfied = requires_python
                        .is_none_or(|specifiers| specifiers.contains(&target.python_version));
                    if satisfied {
                        tracing::debug!(python = %candidate.display(), "discovered interpreter");
                        return Ok(target);
                    }
                    tried.push(format!(
                        "  {}: Python {}",
                        candidate.display(),
                        target.python_version
                    ));
                }
                Err(error) => {
                    let first_line = error
                        .to_string()
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    tried.push(format!("  {}: {first_line}", candidate.display()));
                }
            }
        }
        if tried.is_empty() {
            tried
                .push("  (no python3.X, python3 or python on PATH, no pyenv versions)".to_string());
        }
        Err(TargetError::NoInterpreter {
            requires_python: requires_python.map_or_else(|| "any".to_string(), ToString::to_string),
            tried: tried.join("\n"),
        })
    }

    /// The best few tags, for messages.
    pub fn best_tags(&self, count: usize) -> Vec<String> {
        self.tags
            .ordered()
            .iter()
            .take(count)
            .map(ToString::to_string)
            .collect()
    }
}

fn run_probe(python: &Path) -> Result<Vec<u8>, TargetError> {
    let output = Command::new(python)
        .args(["-I", "-S", "-c", PROBE])
        .output()
        .map_err(|source| TargetError::Spawn {
            python: python.to_path_buf(),
            source,
        })?;
    if !output.status.success() {
        return Err(TargetError::ProbeFailed {
            python: python.to_path_buf(),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(output.stdout)
}

fn parse_report(python: &Path, output: &[u8]) -> Result<ProbeReport, TargetError> {
    serde_json::from_slice(output).map_err(|error| TargetError::ProbeOutput {
        python: python.to_path_buf(),
        message: error.to_string(),
    })
}

/// The resolved interpreter file and the key its probe is remembered under, when it can be
/// resolved (a bare command name is probed every time).
fn probe_cache_key(python: &Path) -> Option<(PathBuf, String)> {
    use std::os::unix::fs::MetadataExt;
    let resolved = fs_err::canonicalize(python).ok()?;
    let metadata = fs_err::metadata(&resolved).ok()?;
    let loader_cache = fs_err::metadata("/etc/ld.so.cache")
        .map(|metadata| (metadata.mtime(), metadata.mtime_nsec()))
        .unwrap_or_default();
    // The path as given counts too: a virtual environment's `bin/python` is a link to its base
    // interpreter's file, but reports its own `sys.executable` and `sys.prefix`.
    let given = std::path::absolute(python).ok()?;
    let identity = format!(
        "{}\0{}\0{}:{}.{}:{}.{}\0{:?}\0{PROBE}",
        given.display(),
        resolved.display(),
        metadata.size(),
        metadata.mtime(),
        metadata.mtime_nsec(),
        metadata.ctime(),
        metadata.ctime_nsec(),
        loader_cache,
    );
    let key = crate::digest::sha256_hex(identity.as_bytes());
    Some((resolved, key))
}

/// `2.36` → (2, 36); musl's `1.2.5` → (1, 2).
fn libc_version(text: &str) -> Option<(u16, u16)> {
    let mut parts = text.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts
        .next()?
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()?;
    Some((major, minor))
}

/// Interpreters to try, in order of preference.
fn candidates(requires_python: Option<&VersionSpecifiers>) -> Vec<PathBuf> {
    let allows_minor = |minor: u64| {
        requires_python.is_none_or(|specifiers| {
            // A minor fits if its first or a late patch release does (`>=3.12.4` still wants 3.12).
            [0, 99]
                .iter()
                .any(|&patch| specifiers.contains(&Version::new([3, minor, patch])))
        })
    };
    let minors: Vec<u64> = (6..=30)
        .rev()
        .filter(|&minor| allows_minor(minor))
        .collect();
    let path_dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();

    let mut found = Vec::new();
    for minor in &minors {
        for dir in &path_dirs {
            found.push(dir.join(format!("python3.{minor}")));
        }
    }
    for name in ["python3", "python"] {
        for dir in &path_dirs {
            found.push(dir.join(name));
        }
    }
    found.retain(|path| path.is_file());
    found.extend(pyenv_versions(&minors));
    found
}

/// `$(pyenv root)/versions/*/bin/python3`, newest version first, limited to wanted minors.
fn pyenv_versions(minors: &[u64]) -> Vec<PathBuf> {
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".pyenv")));
    let Some(root) = root else {
        return Vec::new();
    };
    let Ok(entries) = fs_err::read_dir(root.join("versions")) else {
        return Vec::new();
    };
    let mut versions: Vec<(Version, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = Version::from_str(&entry.file_name().to_string_lossy()).ok()?;
            let release = version.release();
            let wanted = release.first() == Some(&3)
                && release.get(1).is_some_and(|minor| minors.contains(minor));
            let python = entry.path().join("bin/python3");
            (wanted && python.is_file()).then_some((version, python))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions.into_iter().map(|(_, path)| path).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn described_targets_have_linux_cpython_markers() {
        let target = Target::described("3.14", "manylinux_2_36_x86_64").unwrap();
        assert_eq!(target.python_version.to_string(), "3.14.0");
        assert_eq!(target.markers.platform_machine(), "x86_64");
        assert_eq!(target.markers.sys_platform(), "linux");
        assert_eq!(target.best_tags(1), ["cp314-cp314-manylinux_2_36_x86_64"]);
        assert!(target.interpreter.is_none());
    }

    #[test]
    fn described_target_errors() {
        insta::assert_snapshot!(Target::described("3", "linux_x86_64").unwrap_err().to_string(), @"invalid Python version `3`: expected MAJOR.MINOR or MAJOR.MINOR.PATCH, such as 3.13");
        insta::assert_snapshot!(Target::described("3.13", "macosx_11_0_arm64").unwrap_err().to_string(), @"invalid platform `macosx_11_0_arm64`: expected a Linux wheel platform tag such as manylinux_2_36_x86_64, manylinux2014_x86_64, musllinux_1_2_x86_64 or linux_x86_64");
    }

    #[test]
    fn probe_reports_become_targets() {
        let report: ProbeReport = serde_json::from_str(
            r##"{"markers": {"implementation_name": "cpython", "implementation_version": "3.13.0",
                "os_name": "posix", "platform_machine": "x86_64", "platform_python_implementation": "CPython",
                "platform_release": "6.1", "platform_system": "Linux", "platform_version": "#1 SMP",
                "python_full_version": "3.13.0", "python_version": "3.13", "sys_platform": "linux"},
               "executable": "/usr/bin/python3.13", "base_executable": "/usr/bin/python3.13",
               "scheme": {"purelib": "lib/python3.13/site-packages", "platlib": "lib/python3.13/site-packages", "scripts": "bin", "data": "."},
               "prefix": "/usr", "base_prefix": "/usr",
               "version": [3, 13, 0], "free_threaded": false, "pointer_bits": 64,
               "libc": {"kind": "musl", "version": "1.2.5"}}"##,
        )
        .unwrap();
        let target = Target::from_report(Path::new("python3.13"), report).unwrap();
        assert_eq!(target.platform.to_string(), "musllinux_1_2_x86_64");
        assert_eq!(target.best_tags(1), ["cp313-cp313-musllinux_1_2_x86_64"]);
    }

    #[test]
    fn probes_are_remembered_only_for_real_interpreters() {
        let Ok(target) = Target::discover(Some(&"==3.13.*".parse().unwrap()), None) else {
            eprintln!("skipped: no CPython 3.13 on this machine");
            return;
        };
        let python = target.interpreter.unwrap().executable;
        let cache = tempfile::tempdir().unwrap();
        let first =
            Target::from_interpreter_cached(&python, &crate::cache::Cache::new(cache.path()))
                .unwrap();
        let saved: Vec<_> = fs_err::read_dir(cache.path().join("interpreters-v1"))
            .unwrap()
            .collect();
        assert_eq!(saved.len(), 1);
        let second =
            Target::from_interpreter_cached(&python, &crate::cache::Cache::new(cache.path()))
                .unwrap();
        assert_eq!(first.python_version, second.python_version);
        assert_eq!(first.best_tags(3), second.best_tags(3));

        // A wrapper script that execs the interpreter is probed, never remembered.
        let wrapper = cache.path().join("python-wrapper");
        fs_err::write(
            &wrapper,
            format!("#!/bin/sh\nexec {} \"$@\"\n", python.display()),
        )
        .unwrap();
        fs_err::set_permissions(
            &wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        Target::from_interpreter_cached(&wrapper, &crate::cache::Cache::new(cache.path())).unwrap();
        assert_eq!(
            fs_err::read_dir(cache.path().join("interpreters-v1"))
                .unwrap()
                .count(),
            1
        );
    }

    #[test]
    fn libc_versions_parse() {
        assert_eq!(libc_version("2.36"), Some((2, 36)));
        assert_eq!(libc_version("1.2.5"), Some((1, 2)));
        assert_eq!(libc_version("2.35+git"), Some((2, 35)));
        assert_eq!(libc_version("x"), None);
    }

    /// The machines this project runs on have CPython 3.13 under pyenv; elsewhere skip.
    #[test]
    fn probes_a_real_interpreter_when_one_is_installed() {
        let Ok(target) = Target::discover(Some(&"==3.13.*".parse().unwrap()), None) else {
            eprintln!("skipped: no CPython 3.13 on this machine");
            return;
        };
        assert_eq!(target.markers.python_version().to_string(), "3.13");
        assert!(target.interpreter.is_some());
        assert!(target.best_tags(1)[0].starts_with("cp313-cp313-"));
    }

    #[test]
    fn a_link_to_an_interpreter_is_probed_under_its_own_key() {
        let directory = tempfile::tempdir().unwrap();
        let real = directory.path().join("python3.13");
        fs_err::write(&real, "not really an interpreter").unwrap();
        let environment = directory.path().join("venv/bin");
        fs_err::create_dir_all(&environment).unwrap();
        std::os::unix::fs::symlink(&real, environment.join("python3.13")).unwrap();
        let (resolved_real, key_real) = probe_cache_key(&real).unwrap();
        let (resolved_link, key_link) = probe_cache_key(&environment.join("python3.13")).unwrap();
        assert_eq!(resolved_real, resolved_link);
        // A venv's python reports its own prefix: it must not get its base's remembered probe.
        assert_ne!(key_real, key_link);
    }
}
