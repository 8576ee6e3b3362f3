//! Steps 3 and 4: what the new source requires of Python, Node, npm and Go, against what the
//! previous release pinned, and an interpreter for the new Python.

use std::path::Path;
use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifiers};

use super::{Interpreter, ReleaseError};
use crate::assemble::Recipe;
use crate::lock::AkpkgLock;

/// One tool's requirement: what the previous release had, what the source wants now, and
/// whether the previous pin still satisfies it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Requirement {
    /// `Python`, `Node`, `npm`, `Go`.
    pub tool: &'static str,
    /// What the previous release pinned or targeted.
    pub previous: String,
    /// What the new source asks for, and where.
    pub now: String,
    /// The previous pin still fits.
    pub satisfied: bool,
}

/// `[project] version` of the source's pyproject.toml.
pub fn project_version(source: &Path) -> Result<String, ReleaseError> {
    let path = source.join("pyproject.toml");
    project_table(&path)?
        .get("version")
        .and_then(toml::Value::as_str)
        .map(str::to_string)
        .ok_or(ReleaseError::NoVersion { path })
}

fn project_table(path: &Path) -> Result<toml::Table, ReleaseError> {
    let text = fs_err::read_to_string(path).map_err(ReleaseError::io("cannot read", path))?;
    let document: toml::Table = toml::from_str(&text).map_err(|error| ReleaseError::Manifest {
        path: path.to_path_buf(),
        message: error.message().to_string(),
    })?;
    Ok(document
        .get("project")
        .and_then(toml::Value::as_table)
        .cloned()
        .unwrap_or_default())
}

fn requires_python(source: &Path) -> Result<Option<String>, ReleaseError> {
    Ok(project_table(&source.join("pyproject.toml"))?
        .get("requires-python")
        .and_then(toml::Value::as_str)
        .map(str::to_string))
}

/// Every requirement the source states, against the previous recipe and lock.
pub fn compare(
    previous: &Recipe,
    previous_lock: &AkpkgLock,
    source: &Path,
) -> Result<Vec<Requirement>, ReleaseError> {
    let mut requirements = Vec::new();
    if let Some(requires) = requires_python(source)? {
        let targeted = &previous_lock.target.python_version;
        requirements.push(Requirement {
            tool: "Python",
            previous: targeted.clone(),
            satisfied: fits(targeted, &requires),
            now: format!("{requires} (pyproject.toml requires-python)"),
        });
    }
    if let Some(web) = &previous.web {
        let manifest = source.join(&web.project).join("package.json");
        let engines = engines(&manifest)?;
        for (tool, pinned) in [("Node", &web.node.version), ("npm", &web.npm.version)] {
            let key = if tool == "Node" { "node" } else { "npm" };
            if let Some(range) = engines.get(key).and_then(serde_json::Value::as_str) {
                requirements.push(Requirement {
                    tool,
                    previous: pinned.clone(),
                    satisfied: crate::web::satisfies(pinned, range),
                    now: format!("{range} ({}/package.json engines)", web.project),
                });
            }
        }
    }
    if let (Some(previous_go), Some(go)) = (&previous_lock.go, crate::lock::read_go_module(source)?)
    {
        requirements.push(Requirement {
            tool: "Go",
            previous: previous_go.go.clone(),
            satisfied: go_at_least(&previous_go.go, &go.go),
            now: format!("{} (go.mod's go line)", go.go),
        });
    }
    Ok(requirements)
}

fn engines(manifest: &Path) -> Result<serde_json::Map<String, serde_json::Value>, ReleaseError> {
    if !manifest.is_file() {
        return Ok(serde_json::Map::new());
    }
    let text =
        fs_err::read_to_string(manifest).map_err(ReleaseError::io("cannot read", manifest))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|error| ReleaseError::Manifest {
            path: manifest.to_path_buf(),
            message: error.to_string(),
        })?;
    Ok(value
        .get("engines")
        .and_then(serde_json::Value::as_object)
        .cloned()
        .unwrap_or_default())
}

/// Whether Python `X.Y` satisfies `requires` (as any `X.Y.Z` would: `==3.14.*` takes 3.14).
fn fits(minor: &str, requires: &str) -> bool {
    let (Ok(version), Ok(specifiers)) = (
        Version::from_str(&format!("{minor}.0")),
        VersionSpecifiers::from_str(requires),
    ) else {
        return false;
    };
    specifiers.contains(&version)
}

/// Whether Go `have` (`1.25.5`) is at least `wanted`.
fn go_at_least(have: &str, wanted: &str) -> bool {
    let parts = |text: &str| -> Vec<u64> {
        text.split('.')
            .map(|part| part.parse().unwrap_or(0))
            .collect()
    };
    parts(have) >= parts(wanted)
}

/// An interpreter on this machine that satisfies the source's requires-python, or how to get
/// one.
pub fn interpreter(source: &Path, cache: &crate::cache::Cache) -> Interpreter {
    let requires = requires_python(source).ok().flatten();
    let specifiers = requires
        .as_deref()
        .and_then(|text| VersionSpecifiers::from_str(text).ok());
    match crate::interpreter::Target::discover(specifiers.as_ref(), Some(cache)) {
        Ok(target) => match target.interpreter {
            Some(python) => Interpreter::Found {
                python: python.path,
                version: target.python_version.to_string(),
            },
            None => missing(requires),
        },
        Err(_) => missing(requires),
    }
}

fn missing(requires: Option<String>) -> Interpreter {
    let requires = requires.unwrap_or_else(|| "any".to_string());
    let minor = requires
        .trim_start_matches(['=', '>', '<', '~', '!'])
        .trim_end_matches(".*")
        .to_string();
    Interpreter::Missing {
        how: format!(
            "install CPython {minor} (for example `pyenv install {minor}`), or name one with --python PATH"
        ),
        requires,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_compared_as_their_tools_do() {
        assert!(fits("3.14", "==3.14.*"));
        assert!(!fits("3.13", "==3.14.*"));
        assert!(fits("3.13", ">=3.12"));
        assert!(go_at_least("1.25.5", "1.25.5"));
        assert!(go_at_least("1.26", "1.25.5"));
        assert!(!go_at_least("1.25.5", "1.26.0"));
    }
}
