//! `[build-system]` of a source tree's pyproject.toml (PEP 517, PEP 518).

use std::path::Path;
use std::str::FromStr;

use pep508_rs::Requirement;
use serde::Deserialize;

use super::BuildError;

/// How to build a source tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSystem {
    pub requires: Vec<Requirement>,
    /// `module` or `module:object`.
    pub backend: String,
    /// Directories (relative to the source tree) put first on `sys.path` for an in-tree
    /// backend.
    pub backend_path: Vec<String>,
}

#[derive(Deserialize)]
struct Pyproject {
    #[serde(rename = "build-system")]
    build_system: Option<RawBuildSystem>,
}

#[derive(Deserialize)]
struct RawBuildSystem {
    requires: Option<Vec<String>>,
    #[serde(rename = "build-backend")]
    build_backend: Option<String>,
    #[serde(rename = "backend-path", default)]
    backend_path: Vec<String>,
}

impl BuildSystem {
    /// PEP 517: "If the pyproject.toml file is absent, or the build-backend key is missing, the
    /// source tree is not using this specification, and tools should revert to the legacy
    /// behaviour of running setup.py" — that is setuptools' `__legacy__` backend, with
    /// PEP 518's default requirement `setuptools>=40.8.0`.
    fn legacy(requires: Option<Vec<Requirement>>) -> Result<BuildSystem, BuildError> {
        let requires = match requires {
            Some(requires) => requires,
            None => vec![
                Requirement::from_str("setuptools>=40.8.0")
                    .map_err(|error| BuildError::Setup(error.to_string()))?,
            ],
        };
        Ok(BuildSystem {
            requires,
            backend: "setuptools.build_meta:__legacy__".to_string(),
            backend_path: Vec::new(),
        })
    }

    /// Read `source/pyproject.toml`, or fall back to the legacy setuptools backend.
    pub fn read(source: &Path) -> Result<BuildSystem, BuildError> {
        let path = source.join("pyproject.toml");
        match fs_err::read_to_string(&path) {
            Ok(text) => BuildSystem::parse(&text, &path),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => BuildSystem::legacy(None),
            Err(source) => Err(BuildError::Io(crate::path_io::PathIoError::new(
                "cannot read",
                path,
                source,
            ))),
        }
    }

    /// The build system a `pyproject.toml` declares; `path` names it in messages.
    pub fn parse(text: &str, path: &Path) -> Result<BuildSystem, BuildError> {
        let path = path.to_path_buf();
        let invalid = |message: String| BuildError::Pyproject {
            path: path.clone(),
            message,
        };
        let parsed: Pyproject = toml::from_str(text).map_err(|error| invalid(error.to_string()))?;
        let Some(raw) = parsed.build_system else {
            return BuildSystem::legacy(None);
        };
        // PEP 518: "requires" is mandatory in a [build-system] table.
        let requires = raw
            .requires
            .ok_or_else(|| invalid("[build-system] has no `requires`".to_string()))?
            .iter()
            .map(|text| {
                crate::pep508::parse_requirement(text).map_err(|error| {
                    // pep508's message ends with the text and a caret line; keep the sentence.
                    let error = error.to_string();
                    let sentence = error.lines().next().unwrap_or_default();
                    invalid(format!("[build-system] requires `{text}`: {sentence}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let Some(backend) = raw.build_backend else {
            return BuildSystem::legacy(Some(requires));
        };
        for directory in &raw.backend_path {
            // PEP 517: backend-path entries are relative and must stay inside the source tree.
            let inside = !Path::new(directory).is_absolute()
                && !Path::new(directory)
                    .components()
                    .any(|part| matches!(part, std::path::Component::ParentDir));
            if !inside {
                return Err(invalid(format!(
                    "[build-system] backend-path `{directory}` leaves the source tree"
                )));
            }
        }
        Ok(BuildSystem {
            requires,
            backend,
            backend_path: raw.backend_path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: Option<&str>) -> Result<BuildSystem, BuildError> {
        let directory = tempfile::tempdir().unwrap();
        if let Some(text) = text {
            fs_err::write(directory.path().join("pyproject.toml"), text).unwrap();
        }
        BuildSystem::read(directory.path())
    }

    #[test]
    fn build_systems_and_their_fallbacks() {
        let hatchling = read(Some(
            "[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n",
        ))
        .unwrap();
        assert_eq!(hatchling.backend, "hatchling.build");
        assert_eq!(hatchling.requires[0].to_string(), "hatchling");

        for legacy in [None, Some("[project]\nname = \"x\"\n")] {
            let system = read(legacy).unwrap();
            assert_eq!(system.backend, "setuptools.build_meta:__legacy__");
            assert_eq!(system.requires[0].to_string(), "setuptools>=40.8.0");
        }
        let in_tree = read(Some(
            "[build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\"tools\"]\n",
        ))
        .unwrap();
        assert_eq!(in_tree.backend_path, ["tools"]);
    }

    #[test]
    fn bad_build_systems_are_explained() {
        let message = |text: &str| {
            let error = read(Some(text)).unwrap_err().to_string();
            error.split_once("pyproject.toml: ").unwrap().1.to_string()
        };
        insta::assert_snapshot!(message("[build-system]\nbuild-backend = \"x\"\n"), @"[build-system] has no `requires`");
        insta::assert_snapshot!(message("[build-system]\nrequires = [\"!!\"]\n"), @"[build-system] requires `!!`: Expected package name starting with an alphanumeric character, found `!`");
        insta::assert_snapshot!(message("[build-system]\nrequires = []\nbuild-backend = \"b\"\nbackend-path = [\"../up\"]\n"), @"[build-system] backend-path `../up` leaves the source tree");
    }
}
