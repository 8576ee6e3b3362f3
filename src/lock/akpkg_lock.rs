//! akpkg's own lock: what upstream's lock leaves open, pinned.
//!
//! uv.lock pins the runtime distributions but not how to build them. `akpkg lock` adds, for one
//! target: every runtime artifact chosen (by sha256), every git source with its tree id, and for
//! every distribution to build the backend and the exact build environment (wheels by sha256).
//! Fetching and building read it, so a later or offline build uses exactly these inputs.
//!
//! ```toml
//! version = 1
//! [source-lock]            # the lock this one was made from, by content
//! [target]                 # python-version, platform
//! [[runtime]]              # name, version, filename, url, sha256
//! [[git]]                  # name, version, repository, commit, tree, subdirectory
//! [[environment]]          # id, requires, packages = [{ name, version, filename, url, sha256 }]
//! [[build]]                # name, version, kind, backend, requires, environment
//! [go]                     # go, toolchain, go-sum-sha256, api-client (a generated client),
//!                          # modules = [{ path, version, zip, go-mod }] (from go.sum)
//! [web]                    # package-lock-sha256, generator = { name, version, url, sha256 },
//!                          # packages = [{ name, version, url, integrity }]
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, value};

use super::Location;
use super::LockError;
use super::{LockedGo, LockedGoModule};
use crate::identity::{FileName, GitCommit, Sha256, TreeId};

pub const AKPKG_LOCK_VERSION: i64 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AkpkgLock {
    pub version: i64,
    pub generated_by: String,
    pub source_lock: SourceLockPin,
    pub target: LockedTarget,
    #[serde(default)]
    pub runtime: Vec<LockedFile>,
    #[serde(default)]
    pub git: Vec<LockedGit>,
    #[serde(default)]
    pub environment: Vec<LockedEnvironment>,
    #[serde(default)]
    pub build: Vec<LockedBuild>,
    /// The application's Go module (its server), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub go: Option<LockedGo>,
    /// The web UI's npm tarballs and generator, when the recipe builds one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<super::LockedWeb>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceLockPin {
    /// As given to `akpkg lock`, for people; the hash is what counts.
    pub path: String,
    pub sha256: Sha256,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LockedTarget {
    pub python_version: String,
    /// The target's most specific platform tag.
    pub platform: String,
}

/// A file pinned by sha256.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LockedFile {
    pub name: String,
    pub version: String,
    pub filename: FileName,
    pub url: String,
    pub sha256: Sha256,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedGit {
    pub name: String,
    pub version: String,
    pub repository: String,
    pub commit: GitCommit,
    /// The git tree id of the commit's files (see the fetch stage).
    pub tree: TreeId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdirectory: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedEnvironment {
    /// A short hash of the packages, referred to by builds.
    pub id: String,
    pub packages: Vec<LockedFile>,
}

/// What a build starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildKind {
    Sdist,
    Git,
    Workspace,
    Project,
    Directory,
}

impl BuildKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BuildKind::Sdist => "sdist",
            BuildKind::Git => "git",
            BuildKind::Workspace => "workspace",
            BuildKind::Project => "project",
            BuildKind::Directory => "directory",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedBuild {
    pub name: String,
    pub version: String,
    pub kind: BuildKind,
    /// For `workspace`, `project` and `directory`: the source tree, relative to the project
    /// directory (`.` for the project itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub backend: String,
    /// The static (`[build-system] requires`) and dynamic (`get_requires_for_build_wheel`)
    /// requirements the environment satisfies.
    pub requires: Vec<String>,
    pub environment: String,
}

impl AkpkgLock {
    /// Read and check an akpkg lock.
    pub fn read(path: &Path) -> Result<AkpkgLock, LockError> {
        let text = fs_err::read_to_string(path).map_err(|source| LockError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        AkpkgLock::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<AkpkgLock, LockError> {
        // The version first: a newer lock's other fields may not parse at all.
        #[derive(Deserialize)]
        struct VersionOnly {
            version: i64,
        }
        let VersionOnly { version } = super::parse_toml(path, text)?;
        if version != AKPKG_LOCK_VERSION {
            return Err(LockError::Invalid {
                location: Location::at_line(path, 1, 1),
                message: format!(
                    "unsupported akpkg lock version {version}; this akpkg reads version {AKPKG_LOCK_VERSION}"
                ),
            });
        }
        let lock: AkpkgLock = super::parse_toml(path, text)?;
        for build in &lock.build {
            if !lock
                .environment
                .iter()
                .any(|environment| environment.id == build.environment)
            {
                return Err(LockError::Invalid {
                    location: Location::at_line(path, 1, 1),
                    message: format!(
                        "build `{}` names environment `{}`, which the lock does not define",
                        build.name, build.environment
                    ),
                });
            }
        }
        Ok(lock)
    }

    /// The environment a distribution's build uses.
    pub fn environment_of(&self, name: &str) -> Option<(&LockedBuild, &LockedEnvironment)> {
        let build = self.build.iter().find(|build| build.name == name)?;
        let environment = self
            .environment
            .iter()
            .find(|environment| environment.id == build.environment)?;
        Some((build, environment))
    }

    /// The lock as reviewable TOML: one table per entry, one line per pinned file.
    pub fn to_toml(&self) -> String {
        let mut document = DocumentMut::new();
        document.decor_mut().set_prefix(
            "# akpkg's lock: upstream's lock plus build environments and git trees, pinned.\n# Written by `akpkg lock`; regenerate it rather than editing it.\n",
        );
        document["version"] = value(self.version);
        document["generated-by"] = value(&self.generated_by);
        let mut source_lock = Table::new();
        source_lock["path"] = value(&self.source_lock.path);
        source_lock["sha256"] = value(self.source_lock.sha256.as_str());
        document["source-lock"] = Item::Table(source_lock);
        let mut target = Table::new();
        target["python-version"] = value(&self.target.python_version);
        target["platform"] = value(&self.target.platform);
        document["target"] = Item::Table(target);

        let mut runtime = ArrayOfTables::new();
        for file in &self.runtime {
            runtime.push(file_table(file));
        }
        document["runtime"] = Item::ArrayOfTables(runtime);

        let mut git = ArrayOfTables::new();
        for source in &self.git {
            let mut table = Table::new();
            table["name"] = value(&source.name);
            table["version"] = value(&source.version);
            table["repository"] = value(&source.repository);
            table["commit"] = value(source.commit.as_str());
            table["tree"] = value(source.tree.as_str());
            if let Some(subdirectory) = &source.subdirectory {
                table["subdirectory"] = value(subdirectory);
            }
            git.push(table);
        }
        document["git"] = Item::ArrayOfTables(git);

        let mut environments = ArrayOfTables::new();
        for environment in &self.environment {
            let mut table = Table::new();
            table["id"] = value(&environment.id);
            let mut packages = Array::new();
            for package in &environment.packages {
                let mut inline = InlineTable::new();
                inline.insert("name", package.name.as_str().into());
                inline.insert("version", package.version.as_str().into());
                inline.insert("filename", package.filename.as_str().into());
                inline.insert("url", package.url.as_str().into());
                inline.insert("sha256", package.sha256.as_str().into());
                inline.decor_mut().set_prefix("\n    ");
                packages.push_formatted(toml_edit::Value::InlineTable(inline));
            }
            packages.set_trailing("\n");
            packages.set_trailing_comma(true);
            table["packages"] = value(packages);
            environments.push(table);
        }
        document["environment"] = Item::ArrayOfTables(environments);

        let mut builds = ArrayOfTables::new();
        for build in &self.build {
            let mut table = Table::new();
            table["name"] = value(&build.name);
            table["version"] = value(&build.version);
            table["kind"] = value(build.kind.as_str());
            if let Some(path) = &build.path {
                table["path"] = value(path);
            }
            table["backend"] = value(&build.backend);
            table["requires"] = value(build.requires.iter().collect::<Array>());
            table["environment"] = value(&build.environment);
            builds.push(table);
        }
        document["build"] = Item::ArrayOfTables(builds);
        if let Some(go) = &self.go {
            document["go"] = Item::Table(go_table(go));
        }
        if let Some(web) = &self.web {
            document["web"] = Item::Table(web_table(web));
        }
        document.to_string()
    }
}

/// `[go]`: one line per module version, as go.sum has.
fn go_table(go: &LockedGo) -> Table {
    let mut table = Table::new();
    table["go"] = value(&go.go);
    if let Some(toolchain) = &go.toolchain {
        table["toolchain"] = value(toolchain);
    }
    table["go-sum-sha256"] = value(go.go_sum_sha256.as_str());
    let mut modules = Array::new();
    for module in &go.modules {
        modules.push_formatted(toml_edit::Value::InlineTable(go_module_inline(module)));
    }
    modules.set_trailing("\n");
    modules.set_trailing_comma(true);
    table["modules"] = value(modules);
    if let Some(client) = &go.api_client {
        let mut api_client = Table::new();
        api_client["module"] = value(client.module.as_str());
        api_client["generator"] = value(jar_inline(&client.generator));
        api_client["configuration-sha256"] = value(client.configuration_sha256.as_str());
        api_client["schema"] = value(client.schema.as_str());
        api_client["schema-blob"] = value(&client.schema_blob);
        table["api-client"] = toml_edit::Item::Table(api_client);
    }
    table
}

/// A generator jar as one inline table.
fn jar_inline(jar: &crate::lock::LockedJar) -> InlineTable {
    let mut inline = InlineTable::new();
    inline.insert("name", jar.name.as_str().into());
    inline.insert("version", jar.version.as_str().into());
    inline.insert("url", jar.url.as_str().into());
    inline.insert("sha256", jar.sha256.as_str().into());
    inline
}

fn go_module_inline(module: &LockedGoModule) -> InlineTable {
    let mut inline = InlineTable::new();
    inline.insert("path", module.path.as_str().into());
    inline.insert("version", module.version.as_str().into());
    if let Some(zip) = &module.zip {
        inline.insert("zip", zip.as_str().into());
    }
    if let Some(go_mod) = &module.go_mod {
        inline.insert("go-mod", go_mod.as_str().into());
    }
    inline.decor_mut().set_prefix("\n    ");
    inline
}

/// `[web]`: one line per npm tarball.
fn web_table(web: &super::LockedWeb) -> Table {
    let mut table = Table::new();
    table["package-lock-sha256"] = value(web.package_lock_sha256.as_str());
    if let Some(generator) = &web.generator {
        table["generator"] = value(jar_inline(generator));
    }
    let mut packages = Array::new();
    for package in &web.packages {
        let mut inline = InlineTable::new();
        inline.insert("name", package.name.as_str().into());
        inline.insert("version", package.version.as_str().into());
        inline.insert("url", package.url.as_str().into());
        inline.insert("integrity", package.integrity.to_string().into());
        inline.decor_mut().set_prefix("\n    ");
        packages.push_formatted(toml_edit::Value::InlineTable(inline));
    }
    packages.set_trailing("\n");
    packages.set_trailing_comma(true);
    table["packages"] = value(packages);
    table
}

fn file_table(file: &LockedFile) -> Table {
    let mut table = Table::new();
    table["name"] = value(&file.name);
    table["version"] = value(&file.version);
    table["filename"] = value(file.filename.as_str());
    table["url"] = value(&file.url);
    table["sha256"] = value(file.sha256.as_str());
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AkpkgLock {
        let file = |name: &str, version: &str| LockedFile {
            name: name.to_string(),
            version: version.to_string(),
            filename: format!("{name}-{version}-py3-none-any.whl")
                .parse()
                .unwrap(),
            url: format!("https://files.example/{name}-{version}-py3-none-any.whl"),
            sha256: "ab".repeat(32).parse().unwrap(),
        };
        AkpkgLock {
            version: 1,
            generated_by: "akpkg 0.1.0".to_string(),
            source_lock: SourceLockPin {
                path: "uv.lock".to_string(),
                sha256: "cd".repeat(32).parse().unwrap(),
            },
            target: LockedTarget {
                python_version: "3.13".to_string(),
                platform: "manylinux_2_36_x86_64".to_string(),
            },
            runtime: vec![file("asgiref", "3.9.1")],
            git: vec![LockedGit {
                name: "opencontainers".to_string(),
                version: "0.0.14".to_string(),
                repository: "https://github.com/vsoch/oci-python".to_string(),
                commit: "ceb4fcc090851717a3069d78e85ceb1e86c2740c".parse().unwrap(),
                tree: "d25fa58e42b3de2b7cb98e7657851dc68e04e741".parse().unwrap(),
                subdirectory: None,
            }],
            environment: vec![LockedEnvironment {
                id: "0123456789abcdef".to_string(),
                packages: vec![file("hatchling", "1.27.0"), file("pluggy", "1.6.0")],
            }],
            build: vec![LockedBuild {
                name: "authentik".to_string(),
                version: "2025.12.4".to_string(),
                kind: BuildKind::Project,
                path: Some(".".to_string()),
                backend: "hatchling.build".to_string(),
                requires: vec!["hatchling".to_string()],
                environment: "0123456789abcdef".to_string(),
            }],
            go: Some(LockedGo {
                go: "1.25.5".to_string(),
                toolchain: None,
                go_sum_sha256: "ef".repeat(32).parse().unwrap(),
                modules: vec![LockedGoModule {
                    path: "github.com/google/uuid".parse().unwrap(),
                    version: "v1.6.0".parse().unwrap(),
                    zip: Some(
                        "h1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0="
                            .parse()
                            .unwrap(),
                    ),
                    go_mod: Some(
                        "h1:TIyPZe4MgqvfeYDBFedMoGGpEw/LqOeaOT+nhxU+yHo="
                            .parse()
                            .unwrap(),
                    ),
                }],
                api_client: None,
            }),
            web: Some(crate::lock::LockedWeb {
                package_lock_sha256: "12".repeat(32).parse().unwrap(),
                generator: Some(crate::lock::LockedJar {
                    name: "org.openapitools:openapi-generator-cli".to_string(),
                    version: "7.16.0".to_string(),
                    url: "https://repo.example/openapi-generator-cli-7.16.0.jar".to_string(),
                    sha256: "34".repeat(32).parse().unwrap(),
                }),
                packages: vec![crate::lock::LockedNpmDownload {
                    name: "@lit/context".to_string(),
                    version: "1.1.6".to_string(),
                    url: "https://registry.example/@lit/context/-/context-1.1.6.tgz".to_string(),
                    integrity: crate::identity::NpmIntegrity::of_bytes(b"context"),
                }],
            }),
        }
    }

    #[test]
    fn the_lock_round_trips_through_reviewable_toml() {
        let lock = sample();
        let text = lock.to_toml();
        insta::assert_snapshot!(text);
        assert_eq!(AkpkgLock::parse(Path::new("x.lock"), &text).unwrap(), lock);
        let (build, environment) = lock.environment_of("authentik").unwrap();
        assert_eq!(
            (build.backend.as_str(), environment.packages.len()),
            ("hatchling.build", 2)
        );
    }

    #[test]
    fn inconsistent_locks_are_refused() {
        let mut lock = sample();
        lock.build[0].environment = "missing".to_string();
        let error = AkpkgLock::parse(Path::new("x.lock"), &lock.to_toml()).unwrap_err();
        insta::assert_snapshot!(error.to_string(), @"x.lock:1:1: build `authentik` names environment `missing`, which the lock does not define");
        let error = AkpkgLock::parse(Path::new("x.lock"), "version = 2\n").unwrap_err();
        insta::assert_snapshot!(error.to_string(), @"x.lock:1:1: unsupported akpkg lock version 2; this akpkg reads version 1");
    }

    #[test]
    fn path_shaped_identities_are_refused_where_they_are_read() {
        let text = sample().to_toml();
        let sha256 = "ab".repeat(32);
        let mut messages = Vec::new();
        for (field, hostile) in [
            (
                format!("sha256 = \"{sha256}\""),
                "sha256 = \"../../../../etc/passwd\"".to_string(),
            ),
            (
                "filename = \"".to_string(),
                "filename = \"../../".to_string(),
            ),
            (
                "commit = \"ceb4fcc090851717a3069d78e85ceb1e86c2740c\"".to_string(),
                "commit = \"../ceb4fcc090851717a3069d78e85ceb1e86c27\"".to_string(),
            ),
        ] {
            assert!(text.contains(&field), "{field}");
            let error = AkpkgLock::parse(Path::new("x.lock"), &text.replacen(&field, &hostile, 1))
                .unwrap_err()
                .to_string();
            messages.push(error);
        }
        insta::assert_snapshot!(messages.join("\n---\n"), @r"
        x.lock:19:10: malformed TOML: `../../../../etc/passwd` is not a sha256 digest (64 lowercase hexadecimal digits)
        ---
        x.lock:17:12: malformed TOML: `../../asgiref-3.9.1-py3-none-any.whl` is not a file name (one path component, without `/`, `\`, `..` or control characters)
        ---
        x.lock:25:10: malformed TOML: `../ceb4fcc090851717a3069d78e85ceb1e86c27` is not a git commit id (40 lowercase hexadecimal digits)
        ");
    }
}
