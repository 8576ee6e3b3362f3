//! The `server` stage: the application's Go server, built from the verified, patched source
//! with the modules its go.sum pins, with no network, the same bytes from any build path.
//!
//! 1. check the source's go.sum against akpkg's lock, and the go command against go.mod's
//!    `go` line (and the C compiler, with cgo);
//! 2. the build key: toolchain, target, C compiler, source tree, patches, package, settings; a
//!    binary built before under the same key is reused;
//! 3. `go build -trimpath -buildvcs=false` with GOPROXY at the verified module tree
//!    (`fetch::fetch_go_modules`), GOSUMDB off and `-mod=readonly`: the go command checks
//!    go.sum again and can reach nothing else; the environment is cleared, so no GOFLAGS or
//!    proxy of the caller's leaks in;
//! 4. the modules linked into the binary (`go version -m`), for the manifest and the SBOM.

mod api_client;
mod error;
mod toolchain;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::identity::{FileName, GoModulePath, GoModuleVersion, GoSumHash, Sha256};
use crate::lock::LockedGo;

pub use api_client::{ClientGeneration, GoApiClientChoice, GoApiClientRecipe};
pub use error::ServerError;
pub use toolchain::{Toolchain, is_at_least};

/// The recipe's `[server]`: what to build and how, as upstream's Dockerfile does.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServerRecipe {
    /// The Go package, relative to the source (`./cmd/server`).
    pub package: String,
    /// The binary's name in the prefix's `bin/`.
    pub binary: String,
    /// Variables the build sets (`CGO_ENABLED`, `GOFIPS140`).
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// The API client generated from the schema in place of a module go.sum pins.
    #[serde(default)]
    pub api_client: Option<GoApiClientRecipe>,
}

impl ServerRecipe {
    fn cgo(&self) -> bool {
        self.environment
            .get("CGO_ENABLED")
            .is_none_or(|value| value == "1")
    }

    /// The binary's file name, checked: it becomes a path in the prefix.
    pub fn binary_name(&self) -> Result<FileName, ServerError> {
        self.binary.parse().map_err(|_| ServerError::Recipe {
            field: "binary",
            value: self.binary.clone(),
            why: "it must be one file name",
        })
    }

    fn check_package(&self) -> Result<(), ServerError> {
        let inside = match self.package.strip_prefix("./") {
            Some(relative) => {
                !relative.is_empty() && crate::contained::lexically_inside(Path::new(relative))
            }
            None => self.package == ".",
        };
        if inside {
            Ok(())
        } else {
            Err(ServerError::Recipe {
                field: "package",
                value: self.package.clone(),
                why: "it must be a package inside the source, such as ./cmd/server",
            })
        }
    }
}

/// One server build.
pub struct ServerBuild<'a> {
    /// The verified, patched source tree.
    pub source: &'a Path,
    pub recipe: &'a ServerRecipe,
    pub go: &'a LockedGo,
    /// The verified module proxy tree.
    pub module_tree: &'a Path,
    /// What identifies the source's files: its tree id and the patches applied.
    pub source_key: &'a str,
    pub cache: &'a crate::cache::Cache,
    /// The go command, found by [`find_toolchain`].
    pub toolchain: &'a Toolchain,
    /// The shared remote cache, asked before building and given what was built.
    pub remote_cache: Option<&'a crate::registry::RemoteCache>,
    /// The generated API client, when the build replaces a module with it.
    pub api_client: Option<ClientGeneration<'a>>,
    /// `SOURCE_DATE_EPOCH` for the C compiler (cgo).
    pub source_date_epoch: u64,
}

/// The java command: `JAVA`, else `java` on PATH, checked by running `-version`.
pub fn find_java() -> Result<PathBuf, ServerError> {
    crate::runner::find_java().map_err(|(command, detail)| ServerError::NoJava { command, detail })
}

/// The go command (`go` on PATH unless given) checked against go.mod's `go` line, and the C
/// compiler when the recipe builds with cgo: before anything is fetched, so a missing tool is
/// the first thing said.
pub fn find_toolchain(
    recipe: &ServerRecipe,
    go: &LockedGo,
    go_command: Option<&Path>,
) -> Result<Toolchain, ServerError> {
    toolchain::find(go_command, &go.go, recipe.cgo())
}

/// A built server.
#[derive(Debug, Clone)]
pub struct BuiltServer {
    pub path: PathBuf,
    pub from_cache: bool,
    /// The modules linked into it, from its build information.
    pub modules: Vec<LinkedModule>,
}

/// A module linked into the binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkedModule {
    pub path: GoModulePath,
    pub version: GoModuleVersion,
    /// Its go.sum hash.
    pub sum: Option<GoSumHash>,
}

/// Whether the binary `request` would build is already in the build cache, or was just
/// brought there from the remote cache (`Some(true)`): then the modules need not be fetched
/// (the key does not read them).
pub fn finished_or_pulled(request: &ServerBuild) -> Result<Option<bool>, ServerError> {
    let binary = request.recipe.binary_name()?;
    let key = build_key(request, request.toolchain);
    let bucket = request.cache.bucket(crate::cache::Bucket::GoServer);
    if bucket.join(key.as_str()).join(binary.as_str()).is_file() {
        return Ok(Some(false));
    }
    Ok(request
        .remote_cache
        .is_some_and(|remote| from_remote_cache(remote, &bucket, &key, &binary))
        .then_some(true))
}

/// Build the server, or take it from the cache (see the module's documentation).
pub fn build(request: &ServerBuild) -> Result<BuiltServer, ServerError> {
    // 1.
    request.recipe.check_package()?;
    let binary = request.recipe.binary_name()?;
    check_go_sum(request)?;
    if let Some(client) = &request.api_client {
        client.check(request.source)?;
    }
    let toolchain = request.toolchain;

    // 2.
    let key = build_key(request, toolchain);
    let bucket = request.cache.bucket(crate::cache::Bucket::GoServer);
    let cached = bucket.join(key.as_str()).join(binary.as_str());
    // (The remote cache was asked by `finished_or_pulled`, before the modules were fetched.)
    let from_cache = cached.is_file();

    // 3.
    if !from_cache {
        go_build(request, toolchain, &bucket, &key, &binary)?;
        if let Some(remote) = request.remote_cache {
            remote.push_files(
                &remote_tag(&key),
                crate::registry::GO_SERVER_TYPE,
                &[(&cached, crate::registry::FILE_MEDIA_TYPE)],
            );
        }
    }

    // 4.
    let modules = linked_modules(toolchain, &cached)?;
    Ok(BuiltServer {
        path: cached,
        from_cache,
        modules,
    })
}

/// The remote cache's tag for the build `key`.
fn remote_tag(key: &Sha256) -> String {
    format!("go-server-{key}")
}

/// Bring the binary built under `key` from the remote cache into the bucket (the digest and
/// the key checked by the remote cache; the one file must be the binary), executable.
fn from_remote_cache(
    remote: &crate::registry::RemoteCache,
    bucket: &Path,
    key: &Sha256,
    binary: &FileName,
) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some((incoming, files)) =
        remote.pull_into(bucket, &remote_tag(key), crate::registry::GO_SERVER_TYPE)
    else {
        return false;
    };
    if files.len() != 1 || files[0].1 != binary.as_str() {
        return false;
    }
    let pulled = incoming.path().join(binary.as_str());
    if fs_err::set_permissions(&pulled, std::fs::Permissions::from_mode(0o755)).is_err() {
        return false;
    }
    crate::registry::publish(incoming, &bucket.join(key.as_str()));
    bucket.join(key.as_str()).join(binary.as_str()).is_file()
}

fn check_go_sum(request: &ServerBuild) -> Result<(), ServerError> {
    let path = request.source.join("go.sum");
    let bytes = fs_err::read(&path).map_err(ServerError::io("cannot read", &path))?;
    let actual = Sha256::of_bytes(&bytes);
    if actual != request.go.go_sum_sha256 {
        return Err(ServerError::GoSumChanged {
            path,
            expected: request.go.go_sum_sha256.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

/// Everything the binary's bytes depend on.
fn build_key(request: &ServerBuild, toolchain: &Toolchain) -> Sha256 {
    let mut key = crate::digest::BuildKey::new();
    let mut field = |name: &str, value: &str| {
        key.field(name, value);
    };
    field("akpkg server build", "1");
    field("go", &toolchain.version);
    field(
        "target",
        &format!("{}/{}", toolchain.goos, toolchain.goarch),
    );
    field(
        "c compiler",
        toolchain.c_compiler.as_deref().unwrap_or("(no cgo)"),
    );
    field("source", request.source_key);
    field("go.sum", request.go.go_sum_sha256.as_str());
    field("package", &request.recipe.package);
    for (name, value) in &request.recipe.environment {
        field(name, value);
    }
    if let Some(client) = &request.api_client {
        field("api client", client.locked.module.as_str());
        field("generator", client.locked.generator.sha256.as_str());
        field("configuration", client.locked.configuration_sha256.as_str());
        field("schema", &client.locked.schema_blob);
    }
    // Set for the C compiler (see `build_environment`), so it is an input too.
    field("SOURCE_DATE_EPOCH", &request.source_date_epoch.to_string());
    for name in PASSED_THROUGH {
        field(name, &std::env::var(name).unwrap_or_default());
    }
    key.finish()
}

/// Variables of the caller's environment the build sees (and its key covers): the C
/// toolchain's, which cgo needs on some machines.
const PASSED_THROUGH: &[&str] = &["CC", "CGO_CFLAGS", "CGO_LDFLAGS", "PKG_CONFIG_PATH"];

/// Build into a temporary directory of the bucket, then rename it to the key: a reader never
/// sees half a binary, and a concurrent build of the same key leaves one result.
fn go_build(
    request: &ServerBuild,
    toolchain: &Toolchain,
    bucket: &Path,
    key: &Sha256,
    binary: &FileName,
) -> Result<(), ServerError> {
    let logs = bucket.join("logs");
    fs_err::create_dir_all(&logs).map_err(ServerError::io("cannot create", &logs))?;
    let log = logs.join(format!("{key}.log"));
    let incoming = crate::cache::incoming_dir_in(bucket)
        .map_err(ServerError::io("cannot create a directory in", bucket))?;
    let output = incoming.path().join(binary.as_str());
    let home = incoming.path().join("home");
    fs_err::create_dir_all(&home).map_err(ServerError::io("cannot create", &home))?;
    // Upstream's `./gen-go-api`: relative, so the build information names no build path.
    let modfile = with_generated_client(request, incoming.path(), &log, None)?;
    let mut command = Command::new(&toolchain.command);
    command.args(["build", "-trimpath", "-buildvcs=false"]);
    command.args(
        modfile
            .iter()
            .map(|path| format!("-modfile={}", path.display())),
    );
    command
        .arg("-o")
        .arg(&output)
        .arg(&request.recipe.package)
        .current_dir(request.source)
        .env_clear()
        .envs(build_environment(request, &home));
    let shown = format!("go build {}", request.recipe.package);
    // After the generator's lines, when it ran: a failure's tail then shows both.
    crate::runner::run_logged(command, &shown, &log, modfile.is_some())?;
    fs_err::remove_dir_all(&home).map_err(ServerError::io("cannot remove", &home))?;
    let finished = bucket.join(key.as_str());
    // Another run that finished the same key first has the same build.
    crate::cache::publish_dir(incoming, &finished, |entry| {
        entry.join(binary.as_str()).is_file()
    })
    .map_err(ServerError::io("cannot move the build into", &finished))?;
    Ok(())
}

/// The module versions the build of the package reads, as (path, version, file) with file
/// `zip` or `mod`: found by asking the go command to list the package's dependencies with an
/// empty module cache, then looking at what it fetched from the (verified) module tree. go.sum
/// pins more than that (older versions, modules only other commands import), and a proxy may
/// not serve those; `akpkg lock` keeps only these.
pub fn modules_read_by_build(
    request: &ServerBuild,
) -> Result<std::collections::BTreeSet<(String, String, String)>, ServerError> {
    request.recipe.check_package()?;
    let scratch = crate::path_io::scratch_directory("akpkg-go-list-")?;
    let module_cache = scratch.path().join("module-cache");
    let home = scratch.path().join("home");
    fs_err::create_dir_all(&home).map_err(ServerError::io("cannot create", &home))?;
    let mut environment = build_environment(request, &home);
    environment.insert("GOMODCACHE".to_string(), module_cache.display().to_string());
    // The source is the caller's: the client goes into the scratch directory.
    let log = scratch.path().join("generate.log");
    let client = scratch.path().join("api-client");
    let modfile = with_generated_client(request, scratch.path(), &log, Some(&client))?;
    let output = Command::new(&request.toolchain.command)
        .args(["list", "-deps", "-f", "{{.ImportPath}}"])
        .args(
            modfile
                .iter()
                .map(|path| format!("-modfile={}", path.display())),
        )
        .arg(&request.recipe.package)
        .current_dir(request.source)
        .env_clear()
        .envs(environment)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| ServerError::Command {
            command: format!("{} list -deps", request.toolchain.command.display()),
            detail: error.to_string(),
        })?;
    if !output.status.success() {
        let (_, detail) = crate::runner::tail_of(
            &String::from_utf8_lossy(&output.stderr),
            crate::runner::TAIL_LINES,
        );
        return Err(ServerError::Command {
            command: format!("go list -deps {}", request.recipe.package),
            detail,
        });
    }
    let downloads = module_cache.join("cache").join("download");
    let mut read = std::collections::BTreeSet::new();
    for entry in walkdir::WalkDir::new(&downloads)
        .into_iter()
        .filter_map(Result::ok)
    {
        let Ok(relative) = entry.path().strip_prefix(&downloads) else {
            continue;
        };
        let text = relative.to_string_lossy();
        let Some((module, file)) = text.split_once("/@v/") else {
            continue;
        };
        if let Some((version, extension @ ("zip" | "mod"))) = file.rsplit_once('.') {
            read.insert((unescape(module), unescape(version), extension.to_string()));
        }
    }
    Ok(read)
}

/// Generate the API client, when the build has one, into `elsewhere` or else the source's
/// `output` (where upstream puts it), and write the `-modfile` that replaces its module with
/// it into `directory`.
fn with_generated_client(
    request: &ServerBuild,
    directory: &Path,
    log: &Path,
    elsewhere: Option<&Path>,
) -> Result<Option<PathBuf>, ServerError> {
    let Some(client) = &request.api_client else {
        return Ok(None);
    };
    let (destination, target) = match elsewhere {
        Some(path) => (
            crate::contained::Contained::create(path)?,
            path.display().to_string(),
        ),
        None => {
            let source = crate::contained::Contained::open(request.source)?;
            let output = Path::new(client.recipe.output.as_str());
            if source.entry_type(output).is_some() {
                return Err(ServerError::Recipe {
                    field: "api-client.output",
                    value: client.recipe.output.to_string(),
                    why: "the source already has it; name a directory the source does not have",
                });
            }
            source.create_dir_all(output)?;
            (
                source.subdirectory(output)?,
                format!("./{}", client.recipe.output.as_str()),
            )
        }
    };
    let files = client.generate(
        request.source,
        &destination,
        request.toolchain,
        &request.go.go,
        log,
    )?;
    tracing::info!(files, module = %client.recipe.module.as_str(), "generated the Go API client");
    let modfile_directory = directory.join("modfile");
    fs_err::create_dir_all(&modfile_directory)
        .map_err(ServerError::io("cannot create", &modfile_directory))?;
    api_client::modfile(
        request.source,
        &client.recipe.module,
        &target,
        &modfile_directory,
    )
    .map(Some)
}

/// The module proxy protocol's `!x` back to `X`.
fn unescape(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut capital = false;
    for character in text.chars() {
        match (capital, character) {
            (false, '!') => capital = true,
            (true, _) => {
                plain.push(character.to_ascii_uppercase());
                capital = false;
            }
            (false, _) => plain.push(character),
        }
    }
    plain
}

/// The build's whole environment: nothing of the caller's but PATH and the C toolchain's.
fn build_environment(request: &ServerBuild, home: &Path) -> BTreeMap<String, String> {
    let cache = |bucket| request.cache.bucket(bucket).display().to_string();
    let proxy = url::Url::from_directory_path(request.module_tree)
        .map_or_else(|()| String::new(), |url| url.to_string());
    let mut environment: BTreeMap<String, String> = [
        ("HOME", home.display().to_string()),
        ("GOTOOLCHAIN", "local".to_string()),
        ("GOENV", "off".to_string()),
        ("GOFLAGS", "-mod=readonly -modcacherw".to_string()),
        ("GOPROXY", proxy.trim_end_matches('/').to_string()),
        // go.sum is the pin; the checksum database would be a network request.
        ("GOSUMDB", "off".to_string()),
        ("GOVCS", "*:off".to_string()),
        ("GOWORK", "off".to_string()),
        ("GOMODCACHE", cache(crate::cache::Bucket::GoModuleCache)),
        (
            "GOCACHE",
            std::env::var("GOCACHE")
                .ok()
                .filter(|value| Path::new(value).is_absolute())
                .unwrap_or_else(|| cache(crate::cache::Bucket::GoBuildCache)),
        ),
        ("GOPATH", cache(crate::cache::Bucket::GoPath)),
        // Nothing of Go's embeds a time; set for the C compiler's __DATE__ and the like.
        ("SOURCE_DATE_EPOCH", request.source_date_epoch.to_string()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect();
    for name in ["PATH", "TMPDIR"].iter().chain(PASSED_THROUGH) {
        if let Ok(value) = std::env::var(name) {
            environment.insert((*name).to_string(), value);
        }
    }
    for (name, value) in &request.recipe.environment {
        environment.insert(name.clone(), value.clone());
    }
    environment
}

/// The modules of the binary's build information (`go version -m`), the main module left out.
fn linked_modules(toolchain: &Toolchain, binary: &Path) -> Result<Vec<LinkedModule>, ServerError> {
    let output = Command::new(&toolchain.command)
        .args(["version", "-m"])
        .arg(binary)
        .env("GOTOOLCHAIN", "local")
        .env("GOENV", "off")
        .output()
        .map_err(|error| ServerError::Command {
            command: format!("{} version -m", toolchain.command.display()),
            detail: error.to_string(),
        })?;
    if !output.status.success() {
        return Err(ServerError::Command {
            command: format!(
                "{} version -m {}",
                toolchain.command.display(),
                binary.display()
            ),
            detail: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(parse_build_info(&String::from_utf8_lossy(&output.stdout)))
}

/// `dep PATH VERSION SUM` lines; a `=>` line replaces the module before it.
fn parse_build_info(text: &str) -> Vec<LinkedModule> {
    let mut modules: Vec<LinkedModule> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        let (kind, rest) = match fields.as_slice() {
            ["", kind, rest @ ..] => (*kind, rest),
            _ => continue,
        };
        let module = match rest {
            [path, version, sum, ..] => parsed(path, version, Some(sum)),
            [path, version] => parsed(path, version, None),
            _ => None,
        };
        match (kind, module) {
            ("dep", Some(module)) => modules.push(module),
            ("=>", Some(module)) => {
                if let Some(last) = modules.last_mut() {
                    *last = module;
                }
            }
            _ => {}
        }
    }
    modules
}

fn parsed(path: &str, version: &str, sum: Option<&str>) -> Option<LinkedModule> {
    Some(LinkedModule {
        path: path.parse().ok()?,
        version: version.parse().ok()?,
        sum: sum.and_then(|sum| sum.parse().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_info_lists_the_linked_modules() {
        let text = "/x/authentik: go1.26.8\n\tpath\tgoauthentik.io/cmd/server\n\tmod\tgoauthentik.io\t(devel)\t\n\tdep\tberyju.io/ldap\tv0.1.0\th1:rPjEWCYNvfJ2Z5dmrOFVD9aiCE/QhXoHPi7mvxfYj9o=\n\tdep\texample.com/old\tv1.0.0\th1:rPjEWCYNvfJ2Z5dmrOFVD9aiCE/QhXoHPi7mvxfYj9o=\n\t=>\texample.com/new\tv1.1.0\th1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=\n\tbuild\t-trimpath=true\n";
        let modules = parse_build_info(text);
        insta::assert_json_snapshot!(modules, @r#"
            [
              {
                "path": "beryju.io/ldap",
                "version": "v0.1.0",
                "sum": "h1:rPjEWCYNvfJ2Z5dmrOFVD9aiCE/QhXoHPi7mvxfYj9o="
              },
              {
                "path": "example.com/new",
                "version": "v1.1.0",
                "sum": "h1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0="
              }
            ]
        "#);
    }

    #[test]
    fn packages_and_binaries_outside_the_source_are_refused() {
        let recipe = |package: &str, binary: &str| ServerRecipe {
            package: package.to_string(),
            binary: binary.to_string(),
            environment: BTreeMap::new(),
            api_client: None,
        };
        assert!(recipe("./cmd/server", "authentik").check_package().is_ok());
        let messages: Vec<String> = [
            recipe("../elsewhere", "authentik")
                .check_package()
                .unwrap_err(),
            recipe("/abs", "authentik").check_package().unwrap_err(),
            recipe("./cmd/server", "../../bin/sh")
                .binary_name()
                .unwrap_err(),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        insta::assert_snapshot!(messages.join("\n"), @r#"
            the recipe's [server] package `../elsewhere` is not valid: it must be a package inside the source, such as ./cmd/server
            the recipe's [server] package `/abs` is not valid: it must be a package inside the source, such as ./cmd/server
            the recipe's [server] binary `../../bin/sh` is not valid: it must be one file name
        "#);
    }
}
