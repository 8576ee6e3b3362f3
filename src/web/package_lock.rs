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
pub fn rewrite(
    path: &std::path::Path,
    text: &str,
    overrides: &[ResolvedOverride],
) -> Result<(String, Vec<OverrideWarning>), WebError> {
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
    Ok((text, warnings))
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
        let (text, warnings) = rewrite(
            std::path::Path::new("package-lock.json"),
            LOCK,
            std::slice::from_ref(&replacement),
        )
        .unwrap();
        let lock: serde_json::Value = serde_json::from_str(&text).unwrap();
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
    fn ranges_are_npm_ranges() {
        assert!(satisfies("24.12.0", ">=24"));
        assert!(!satisfies("20.1.0", ">=24"));
        assert!(satisfies("11.6.2", ">=11.6.2"));
        assert!(satisfies("2025.12.4", "^2025.12.0-rc1-1765566302"));
        assert!(!satisfies("4.3.0", "~4.2.0"));
    }
}
