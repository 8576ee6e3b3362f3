//! Step 6: the previous release's npm overrides against the new package-lock, and the locked
//! tarballs the registry no longer serves.

use std::path::Path;

use rayon::prelude::*;

use super::ReleaseError;
use crate::fetch::FetchOptions;
use crate::web::WebRecipe;

/// One override of the previous recipe, and whether the new release still needs it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct OverrideFinding {
    pub package: String,
    pub needed: bool,
    pub why: String,
}

/// A locked tarball the registry does not serve, that no override replaces.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct MissingTarball {
    pub package: String,
    pub version: String,
    pub url: String,
    /// The published version nearest to the locked one (the next newer, else the newest older).
    pub nearest: Option<String>,
}

/// A package-lock entry downloaded from a registry.
struct Locked {
    package: String,
    version: String,
    url: String,
}

/// Check every override and every locked tarball of the new source's package-lock.
pub fn check(
    web: &WebRecipe,
    source: &Path,
    options: &FetchOptions,
) -> Result<(Vec<OverrideFinding>, Vec<MissingTarball>), ReleaseError> {
    let path = source.join(&web.project).join("package-lock.json");
    if !path.is_file() {
        return Ok((Vec::new(), Vec::new()));
    }
    let locked = locked_tarballs(&path)?;
    let http = options.http()?;
    let served: Vec<bool> = http
        .run_downloads(|| {
            locked
                .par_iter()
                .map(|entry| http.is_served(&entry.url, &options.network))
                .collect::<Result<_, String>>()
        })
        .map_err(|message| ReleaseError::Manifest {
            path: path.clone(),
            message: format!("asking the registry: {message}"),
        })?;
    let not_served = |package: &str| -> Option<&Locked> {
        locked
            .iter()
            .zip(&served)
            .find(|(entry, served)| entry.package == package && !**served)
            .map(|(entry, _)| entry)
    };
    let overrides = web
        .overrides
        .iter()
        .map(|over| {
            let locked_entry = locked.iter().find(|entry| entry.package == over.package);
            let (needed, why) = match (&over.generated, locked_entry, not_served(&over.package)) {
                (Some(generated), _, _) => (true, format!("generated ({generated})")),
                (None, None, _) => (false, "the new lock no longer has it".to_string()),
                (None, Some(_), Some(entry)) => (
                    true,
                    format!("the registry still lacks the locked {}", entry.version),
                ),
                (None, Some(entry), None) => (
                    false,
                    format!("the registry serves the locked {}", entry.version),
                ),
            };
            OverrideFinding {
                package: over.package.clone(),
                needed,
                why,
            }
        })
        .collect();
    let missing = locked
        .iter()
        .zip(&served)
        .filter(|(entry, served)| {
            !**served
                && !web
                    .overrides
                    .iter()
                    .any(|over| over.package == entry.package)
        })
        .map(|(entry, _)| MissingTarball {
            package: entry.package.clone(),
            version: entry.version.clone(),
            url: entry.url.clone(),
            nearest: nearest_published(http, entry),
        })
        .collect();
    Ok((overrides, missing))
}

/// Each `node_modules/…` entry with an http(s) `resolved` URL, once per URL.
fn locked_tarballs(path: &Path) -> Result<Vec<Locked>, ReleaseError> {
    let text = fs_err::read_to_string(path).map_err(ReleaseError::io("cannot read", path))?;
    let lock: serde_json::Value =
        serde_json::from_str(&text).map_err(|error| ReleaseError::Manifest {
            path: path.to_path_buf(),
            message: error.to_string(),
        })?;
    let mut seen = std::collections::HashSet::new();
    let mut locked = Vec::new();
    let packages = lock
        .get("packages")
        .and_then(serde_json::Value::as_object)
        .into_iter()
        .flatten();
    for (key, entry) in packages {
        let Some(package) = key.rsplit_once("node_modules/").map(|(_, name)| name) else {
            continue;
        };
        let url = entry.get("resolved").and_then(serde_json::Value::as_str);
        let version = entry.get("version").and_then(serde_json::Value::as_str);
        if let (Some(url), Some(version)) = (url, version)
            && url.starts_with("http")
            && seen.insert(url.to_string())
        {
            locked.push(Locked {
                package: package.to_string(),
                version: version.to_string(),
                url: url.to_string(),
            });
        }
    }
    Ok(locked)
}

/// The nearest published version, from the package's document beside its tarballs
/// (`REGISTRY/NAME/-/FILE.tgz` → `REGISTRY/NAME`).
fn nearest_published(http: &crate::http::HttpService, entry: &Locked) -> Option<String> {
    let (document, _) = entry.url.split_once("/-/")?;
    let value = http.json(document).ok()??;
    let locked: nodejs_semver::Version = entry.version.parse().ok()?;
    let mut published: Vec<nodejs_semver::Version> = value
        .get("versions")?
        .as_object()?
        .keys()
        .filter_map(|version| version.parse().ok())
        .collect();
    published.sort();
    published
        .iter()
        .find(|version| **version > locked)
        .or_else(|| published.last())
        .map(ToString::to_string)
}
