//! The build policy a project declares beside its lock, in `pyproject.toml`'s `[tool.uv]`.

use std::path::{Path, PathBuf};

use pep508_rs::PackageName;
use serde::Deserialize;

use super::{Location, LockError, package_name, parse_toml};

/// `[tool.uv]` settings that decide between wheels and source builds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectSettings {
    /// The pyproject.toml these came from, if there was one.
    pub path: Option<PathBuf>,
    /// `no-binary = true`: build everything from source.
    pub no_binary: bool,
    /// `no-binary-package = [...]`.
    pub no_binary_packages: Vec<PackageName>,
    /// `no-build = true`: never build from source.
    pub no_build: bool,
    /// `no-build-package = [...]`.
    pub no_build_packages: Vec<PackageName>,
}

#[derive(Deserialize)]
struct PyProject {
    tool: Option<Tool>,
}

#[derive(Deserialize)]
struct Tool {
    uv: Option<UvSettings>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct UvSettings {
    #[serde(default)]
    no_binary: bool,
    #[serde(default)]
    no_binary_package: Vec<String>,
    #[serde(default)]
    no_build: bool,
    #[serde(default)]
    no_build_package: Vec<String>,
}

/// Read `directory/pyproject.toml`; a missing file means no settings.
pub fn read_project_settings(directory: &Path) -> Result<ProjectSettings, LockError> {
    let path = directory.join("pyproject.toml");
    let text = match fs_err::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ProjectSettings::default());
        }
        Err(source) => return Err(LockError::Read { path, source }),
    };
    let project: PyProject = parse_toml(&path, &text)?;
    let Some(uv) = project.tool.and_then(|tool| tool.uv) else {
        return Ok(ProjectSettings {
            path: Some(path),
            ..ProjectSettings::default()
        });
    };
    // The names were already checked by TOML; a bad one is reported at the file's start.
    let location = Location::at_offset(&path, &text, 0);
    let names = |list: &[String]| -> Result<Vec<PackageName>, LockError> {
        list.iter()
            .map(|name| package_name(name, &location))
            .collect()
    };
    Ok(ProjectSettings {
        no_binary: uv.no_binary,
        no_binary_packages: names(&uv.no_binary_package)?,
        no_build: uv.no_build,
        no_build_packages: names(&uv.no_build_package)?,
        path: Some(path),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_authentik_no_binary_packages() {
        let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/authentik/2025.12.4");
        if !directory.exists() {
            eprintln!("skipped: ../shared is not beside this checkout");
            return;
        }
        let settings = read_project_settings(&directory).unwrap();
        let names: Vec<_> = settings
            .no_binary_packages
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ["lxml", "xmlsec"]);
        assert!(!settings.no_binary && !settings.no_build);
    }

    #[test]
    fn missing_pyproject_means_defaults_and_bad_toml_is_located() {
        let directory = tempfile::tempdir().unwrap();
        assert_eq!(
            read_project_settings(directory.path()).unwrap(),
            ProjectSettings::default()
        );
        fs_err::write(
            directory.path().join("pyproject.toml"),
            "[tool.uv]\nno-binary = 'yes'\n",
        )
        .unwrap();
        let error = read_project_settings(directory.path())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("pyproject.toml:2:13: malformed TOML"),
            "{error}"
        );
    }
}
