//! The overrides written into a copy of the package-lock, and the ranges they break.
//!
//! An overridden entry gets the new `version`, `resolved` and `integrity`; its dependency lists
//! stay the lock's: npm ci checks the lock against itself, and a replaced package that brings
//! other dependency lists would need packages the lock does not have (`Missing: lit@3.3.3 from
//! lock file`, seen with the real patternfly pair).

use serde::{Deserialize, Serialize};

use super::WebError;
use crate::identity::NpmIntegrity;

/// An override as built: what the lock entry now says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ResolvedOverride {
    pub package: String,
    pub version: String,
    /// A registry URL, or `file:` and the packed tarball's path in the build directory.
    pub resolved: String,
    pub integrity: NpmIntegrity,
    /// `workspace packages/tsconfig`, `registry 4.3.0`, `generated from the API schema`.
    pub source: String,
}

/// A package of the lock whose declared range the override's version does not satisfy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct OverrideWarning {
    /// The lock entry that declares the range (`node_modules/@patternfly/elements`).
    pub dependent: String,
    pub range: String,
    pub package: String,
    pub version: String,
}

impl std::fmt::Display for OverrideWarning {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dependent = if self.dependent.is_empty() {
            "the project".to_string()
        } else {
            format!("`{}`", self.dependent)
        };
        write!(
            formatter,
            "override: {} {} does not satisfy `{}`, which {dependent} asks for",
            self.package, self.version, self.range
        )
    }
}

/// Whether `version` is in npm's `range`; a range npm's grammar does not parse is not judged.
pub fn satisfies(version: &str, range: &str) -> bool {
    match (
        version.parse::<nodejs_semver::Version>(),
        range.parse::<nodejs_semver::Range>(),
    ) {
        (Ok(version), Ok(range)) => version.satisfies(&range),
        _ => true,
    }
}

const DEPENDENCY_LISTS: [&str; 3] = ["dependencies", "optionalDependencies", "peerDependencies"];

/// The lock text with `overrides` written in, and the ranges they break.
/// A package-lock with the overrides written in: as JSON (for the metadata) and as the text
/// npm reads, and the ranges the overrides break.
pub struct Rewritten {
    pub lock: serde_json::Value,
    pub text: String,
    pub warnings: Vec<OverrideWarning>,
}

pub fn rewrite(
    path: &std::path::Path,
    text: &str,
    overrides: &[ResolvedOverride],
) -> Result<Rewritten, WebError> {
    let mut lock: serde_json::Value =
        serde_json::from_str(text).map_err(|error| WebError::Json {
            path: path.to_path_buf(),
            detail: error.to_string(),
        })?;
    let Some(packages) = lock
        .get_mut("packages")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return Err(WebError::Json {
            path: path.to_path_buf(),
            detail: "no `packages` object (lockfile version 2 or 3 is needed)".to_string(),
        });
    };
    let mut warnings = Vec::new();
    for entry in overrides {
        let suffix = format!("node_modules/{}", entry.package);
        for (key, value) in packages.iter_mut() {
            if key.ends_with(&suffix)
                && let Some(fields) = value.as_object_mut()
            {
                fields.insert("version".into(), entry.version.clone().into());
                fields.insert("resolved".into(), entry.resolved.clone().into());
                fields.insert("integrity".into(), entry.integrity.to_string().into());
            }
        }
        for (key, value) in packages.iter() {
            for list in DEPENDENCY_LISTS {
                let range = value
                    .get(list)
                    .and_then(|dependencies| dependencies.get(&entry.package))
                    .and_then(serde_json::Value::as_str);
                if let Some(range) = range
                    && !satisfies(&entry.version, range)
                {
                    warnings.push(OverrideWarning {
                        dependent: key.clone(),
                        range: range.to_string(),
                        package: entry.package.clone(),
                        version: entry.version.clone(),
                    });
                }
            }
        }
    }
    let mut text = serde_json::to_string_pretty(&lock).map_err(|error| WebError::Json {
        path: path.to_path_buf(),
        detail: error.to_string(),
    })?;
    text.push('\n');
    Ok(Rewritten {
        lock,
        text,
        warnings,
    })
}

/// Versions of packages the lock's entries depend on at an exact version (`=0.21.1`) but the
/// lock does not have: authentik's lock lacks `tree-sitter`, which two `@swagger-api` parsers
/// require, and npm 11.6.2 accepts that only when it can read the version's metadata. The
/// placeholder names the version and nothing to install: had npm decided to install it, it
/// would have asked for a tarball no cache entry has, and failed rather than download.
fn add_placeholders(
    packages: &serde_json::Map<String, serde_json::Value>,
    by_name: &mut std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    registry: &str,
) {
    let locked: std::collections::BTreeSet<String> = by_name.keys().cloned().collect();
    for entry in packages.values() {
        for list in ["dependencies", "optionalDependencies"] {
            let Some(dependencies) = entry.get(list).and_then(serde_json::Value::as_object) else {
                continue;
            };
            for (name, range) in dependencies {
                let Some(version) = range
                    .as_str()
                    .map(|range| range.trim_start_matches('='))
                    .filter(|version| version.parse::<nodejs_semver::Version>().is_ok())
                else {
                    continue;
                };
                if locked.contains(name) {
                    continue;
                }
                let file = name.rsplit('/').next().unwrap_or(name);
                by_name.entry(name.clone()).or_default().insert(
                    version.to_string(),
                    serde_json::json!({
                        "name": name,
                        "version": version,
                        "dist": { "tarball": format!("{registry}/{name}/-/{file}-{version}.tgz") },
                        "_akpkg": "not in the package-lock: metadata for npm's check only",
                    }),
                );
            }
        }
    }
}

/// Lock-entry fields that describe the install, not the package: left out of the metadata.
const INSTALL_FIELDS: [&str; 9] = [
    "resolved",
    "integrity",
    "link",
    "dev",
    "optional",
    "devOptional",
    "peer",
    "inBundle",
    "extraneous",
];

/// The registry metadata (packuments) npm may ask for while it checks the lock, made from the
/// lock itself: for each package name, its locked versions with their dependency lists and
/// their `dist` (the pinned tarball and integrity). npm asks for some even offline (where a
/// range and an override meet, as for authentik's js-yaml); made from the pins, the metadata
/// cannot offer npm a version the lock does not have. Returns `(URL, document)` pairs.
pub fn packuments(lock: &serde_json::Value, registry: &str) -> Vec<(String, Vec<u8>)> {
    let Some(packages) = lock.get("packages").and_then(serde_json::Value::as_object) else {
        return Vec::new();
    };
    let mut by_name: std::collections::BTreeMap<
        String,
        serde_json::Map<String, serde_json::Value>,
    > = std::collections::BTreeMap::new();
    for (key, entry) in packages {
        let Some((_, path_name)) = key.rsplit_once("node_modules/") else {
            continue;
        };
        let (Some(version), Some(resolved), Some(integrity)) = (
            entry.get("version").and_then(serde_json::Value::as_str),
            entry.get("resolved").and_then(serde_json::Value::as_str),
            entry.get("integrity").and_then(serde_json::Value::as_str),
        ) else {
            continue;
        };
        let name = entry
            .get("name")
            .and_then(serde_json::Value::as_str)
            .unwrap_or(path_name);
        let mut manifest = entry.as_object().cloned().unwrap_or_default();
        for field in INSTALL_FIELDS {
            manifest.remove(field);
        }
        manifest.insert("name".into(), name.into());
        manifest.insert(
            "dist".into(),
            serde_json::json!({ "tarball": resolved, "integrity": integrity }),
        );
        by_name
            .entry(name.to_string())
            .or_default()
            .insert(version.to_string(), manifest.into());
    }
    let registry = registry.trim_end_matches('/');
    add_placeholders(packages, &mut by_name, registry);
    by_name
        .into_iter()
        .map(|(name, versions)| {
            let latest = versions
                .keys()
                .filter_map(|version| version.parse::<nodejs_semver::Version>().ok())
                .max()
                .map(|version| version.to_string());
            let document = serde_json::json!({
                "name": name,
                "dist-tags": { "latest": latest },
                "versions": versions,
            });
            // npm asks for a scoped package as `@scope%2fname`.
            let url = format!("{registry}/{}", name.replace('/', "%2f"));
            (url, document.to_string().into_bytes())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"{
  "lockfileVersion": 3,
  "packages": {
    "": { "dependencies": { "@pf/elements": "^4.2.0", "left": "^1.0.0" } },
    "node_modules/@pf/elements": {
      "version": "4.2.0",
      "resolved": "https://registry.example/@pf/elements/-/elements-4.2.0.tgz",
      "integrity": "sha512-AAAA",
      "dependencies": { "lit": "^3.3.1" }
    },
    "node_modules/uses-it": { "version": "1.0.0", "peerDependencies": { "@pf/elements": "~4.2.0" } },
    "node_modules/uses-it/node_modules/@pf/elements": { "version": "4.2.0" }
  }
}"#;

    #[test]
    fn every_entry_of_the_package_is_replaced_and_broken_ranges_are_named() {
        let replacement = ResolvedOverride {
            package: "@pf/elements".to_string(),
            version: "4.3.0".to_string(),
            resolved: "https://registry.example/@pf/elements/-/elements-4.3.0.tgz".to_string(),
            integrity: NpmIntegrity::of_bytes(b"tarball"),
            source: "registry 4.3.0".to_string(),
        };
        let Rewritten {
            lock: rewritten,
            text,
            warnings,
        } = rewrite(
            std::path::Path::new("package-lock.json"),
            LOCK,
            std::slice::from_ref(&replacement),
        )
        .unwrap();
        let lock: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(lock, rewritten, "the text is the JSON");
        for key in [
            "node_modules/@pf/elements",
            "node_modules/uses-it/node_modules/@pf/elements",
        ] {
            let entry = &lock["packages"][key];
            assert_eq!(entry["version"], "4.3.0");
            assert_eq!(entry["resolved"], replacement.resolved.as_str());
            assert_eq!(
                entry["integrity"],
                replacement.integrity.to_string().as_str()
            );
        }
        // The dependency list is the lock's, not the new package's.
        assert_eq!(
            lock["packages"]["node_modules/@pf/elements"]["dependencies"]["lit"],
            "^3.3.1"
        );
        let messages: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        insta::assert_snapshot!(messages.join("\n"), @"override: @pf/elements 4.3.0 does not satisfy `~4.2.0`, which `node_modules/uses-it` asks for");
    }

    #[test]
    fn packuments_offer_exactly_the_locked_versions() {
        let lock = r#"{"lockfileVersion": 3, "packages": {
            "": { "dependencies": { "js-yaml": "^4.1.0" } },
            "node_modules/js-yaml": { "version": "4.1.1",
                "resolved": "https://registry.example/js-yaml/-/js-yaml-4.1.1.tgz",
                "integrity": "sha512-AAAA", "dev": true, "dependencies": { "argparse": "^2.0.1" } },
            "node_modules/x/node_modules/js-yaml": { "version": "3.14.1",
                "resolved": "https://registry.example/js-yaml/-/js-yaml-3.14.1.tgz",
                "integrity": "sha512-BBBB" },
            "node_modules/@scope/tool": { "version": "1.0.0",
                "resolved": "https://registry.example/@scope/tool/-/tool-1.0.0.tgz",
                "integrity": "sha512-CCCC" },
            "node_modules/own": { "resolved": "packages/own", "link": true },
            "node_modules/parser": { "version": "1.0.0",
                "resolved": "https://registry.example/parser/-/parser-1.0.0.tgz",
                "integrity": "sha512-DDDD", "dependencies": { "grammar": "=0.21.1", "js-yaml": "=4.1.1" } }
        }}"#;
        let documents = packuments(
            &serde_json::from_str(lock).unwrap(),
            "https://registry.example/",
        );
        let urls: Vec<&str> = documents.iter().map(|(url, _)| url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://registry.example/@scope%2ftool",
                "https://registry.example/grammar",
                "https://registry.example/js-yaml",
                "https://registry.example/parser",
            ]
        );
        // Required at an exact version and not locked: a placeholder with nothing to install.
        let grammar: serde_json::Value = serde_json::from_slice(&documents[1].1).unwrap();
        assert_eq!(grammar["versions"]["0.21.1"]["dist"].get("integrity"), None);
        let document: serde_json::Value = serde_json::from_slice(&documents[2].1).unwrap();
        assert_eq!(document["dist-tags"]["latest"], "4.1.1");
        let versions = document["versions"].as_object().unwrap();
        assert_eq!(versions.len(), 2);
        let newest = &versions["4.1.1"];
        assert_eq!(newest["name"], "js-yaml");
        assert_eq!(newest["dependencies"]["argparse"], "^2.0.1");
        assert_eq!(newest["dist"]["integrity"], "sha512-AAAA");
        assert!(newest.get("dev").is_none() && newest.get("resolved").is_none());
    }

    #[test]
    fn ranges_are_npm_ranges() {
        assert!(satisfies("24.12.0", ">=24"));
        assert!(!satisfies("20.1.0", ">=24"));
        assert!(satisfies("11.6.2", ">=11.6.2"));
        assert!(satisfies("2025.12.4", "^2025.12.0-rc1-1765566302"));
        assert!(!satisfies("4.3.0", "~4.2.0"));
    }
}
