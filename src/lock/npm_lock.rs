//! npm's `package-lock.json` (lockfile version 2 or 3): every package npm would download, with
//! the URL and sha512 it pins, for the web UI stage (issue 17) to fetch and check like any
//! other artifact.
//!
//! Entries under `node_modules/` are downloads unless they are workspace links (`link: true`);
//! entries elsewhere (`packages/core`) are the workspace's own source, already in the verified
//! tree. A download without `resolved` and a sha512 `integrity` is refused: it could not be
//! checked.

use std::path::Path;

use serde::Deserialize;

use super::{Location, LockError};
use crate::identity::NpmIntegrity;

/// One package npm downloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedNpmPackage {
    /// Where npm puts it (`node_modules/@lit/context`).
    pub path: String,
    pub name: String,
    pub version: String,
    pub url: String,
    pub integrity: NpmIntegrity,
}

/// The web UI's part of akpkg's lock: every npm tarball its build downloads (the
/// package-lock's, overridden entries left out, and the recipe's Node, npm and registry
/// overrides), and the API client's generator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LockedWeb {
    /// The package-lock these pins were read from, by content: a source whose package-lock
    /// differs is refused before anything is fetched.
    pub package_lock_sha256: crate::identity::Sha256,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<LockedJar>,
    /// One per distinct tarball, sorted by name and version.
    pub packages: Vec<LockedNpmDownload>,
}

/// A jar from Maven Central, by sha256.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LockedJar {
    /// Maven coordinates (`org.openapitools:openapi-generator-cli`).
    pub name: String,
    pub version: String,
    pub url: String,
    pub sha256: crate::identity::Sha256,
}

/// One npm tarball of akpkg's lock.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct LockedNpmDownload {
    pub name: String,
    pub version: String,
    pub url: String,
    pub integrity: NpmIntegrity,
}

impl LockedNpmDownload {
    pub fn of(package: &LockedNpmPackage) -> LockedNpmDownload {
        LockedNpmDownload {
            name: package.name.clone(),
            version: package.version.clone(),
            url: package.url.clone(),
            integrity: package.integrity.clone(),
        }
    }

    /// As a download of the fetch stage.
    pub fn package(&self) -> LockedNpmPackage {
        LockedNpmPackage {
            path: format!("node_modules/{}", self.name),
            name: self.name.clone(),
            version: self.version.clone(),
            url: self.url.clone(),
            integrity: self.integrity.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PackageLock {
    lockfile_version: u32,
    #[serde(default)]
    packages: serde_json::Map<String, serde_json::Value>,
}

/// Read a package-lock's downloads, in the file's order.
pub fn read_npm_lock(path: &Path, text: &str) -> Result<Vec<LockedNpmPackage>, LockError> {
    let invalid = |message: String| LockError::Invalid {
        location: Location::at_line(path, 1, 1),
        message,
    };
    let lock: PackageLock = serde_json::from_str(text).map_err(|error| LockError::Invalid {
        location: Location::at_line(path, error.line(), error.column()),
        message: error.to_string(),
    })?;
    if !(2..=3).contains(&lock.lockfile_version) {
        return Err(invalid(format!(
            "lockfileVersion {} is not supported; akpkg reads versions 2 and 3 (npm 7 and later)",
            lock.lockfile_version
        )));
    }
    // A bad entry's message names the line its key is on.
    let at_key = |key: &str, message: String| {
        let line = text
            .find(&format!("\"{key}\":"))
            .map_or(1, |offset| text[..offset].matches('\n').count() + 1);
        LockError::Invalid {
            location: Location::at_line(path, line, 1),
            message,
        }
    };
    let mut packages = Vec::new();
    for (key, entry) in &lock.packages {
        let Some(name) = installed_name(key) else {
            continue;
        };
        if entry["link"].as_bool() == Some(true) {
            continue;
        }
        let field = |name: &str| entry[name].as_str().map(str::to_string);
        let (Some(url), Some(integrity)) = (field("resolved"), field("integrity")) else {
            return Err(at_key(
                key,
                format!("`{key}` has no `resolved` URL and `integrity`, so it cannot be checked"),
            ));
        };
        let integrity = NpmIntegrity::parse(&integrity).ok_or_else(|| {
            at_key(
                key,
                format!("`{key}`: integrity `{integrity}` is not a sha512 (`sha512-<base64>`)"),
            )
        })?;
        packages.push(LockedNpmPackage {
            path: key.clone(),
            name: field("name").unwrap_or(name),
            version: field("version").unwrap_or_default(),
            url,
            integrity,
        });
    }
    Ok(packages)
}

/// The package name of a `node_modules/…` key (its last `node_modules/` segment), or `None` for
/// the root and the workspace's own directories.
fn installed_name(key: &str) -> Option<String> {
    let (_, name) = key.rsplit_once("node_modules/")?;
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// authentik 2025.12.4's web lock (../shared, read as test data): every download pinned.
    #[test]
    fn authentiks_web_lock_pins_every_download_by_sha512() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/authentik/2025.12.4/web/package-lock.json");
        let text = fs_err::read_to_string(&path).unwrap();
        let packages = read_npm_lock(&path, &text).unwrap();
        // 1,378 entries: the root, 5 workspace directories, 5 links, 1,367 downloads.
        assert_eq!(packages.len(), 1367);
        let api = packages
            .iter()
            .find(|package| package.path == "node_modules/@goauthentik/api")
            .unwrap();
        assert_eq!(
            (api.name.as_str(), api.version.as_str()),
            ("@goauthentik/api", "2025.12.0-rc1-1765566302")
        );
        assert!(
            api.url
                .starts_with("https://registry.npmjs.org/@goauthentik/api/-/")
        );
        assert!(
            packages
                .iter()
                .all(|package| package.url.starts_with("https://"))
        );
    }

    #[test]
    fn unpinned_or_weakly_pinned_downloads_are_refused() {
        let lock = |entry: &str| {
            format!(
                "{{\"lockfileVersion\": 3, \"packages\": {{\"\": {{}},\n\"node_modules/a\": {entry}}}}}"
            )
        };
        let messages: Vec<String> = [
            lock(r#"{"version": "1.0.0"}"#),
            lock(
                r#"{"version": "1.0.0", "resolved": "https://r/a.tgz", "integrity": "sha1-AAAA"}"#,
            ),
            r#"{"lockfileVersion": 1, "dependencies": {}}"#.to_string(),
        ]
        .iter()
        .map(|text| {
            read_npm_lock(Path::new("package-lock.json"), text)
                .unwrap_err()
                .to_string()
        })
        .collect();
        insta::assert_snapshot!(messages.join("\n"), @r#"
        package-lock.json:2:1: `node_modules/a` has no `resolved` URL and `integrity`, so it cannot be checked
        package-lock.json:2:1: `node_modules/a`: integrity `sha1-AAAA` is not a sha512 (`sha512-<base64>`)
        package-lock.json:1:1: lockfileVersion 1 is not supported; akpkg reads versions 2 and 3 (npm 7 and later)
        "#);
        let linked = lock(r#"{"link": true, "resolved": "packages/a"}"#);
        assert!(
            read_npm_lock(Path::new("package-lock.json"), &linked)
                .unwrap()
                .is_empty()
        );
    }
}
