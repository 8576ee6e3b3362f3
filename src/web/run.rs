//! Steps 3 to 8 of a web build, in a directory whose path depends only on the build key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::package_lock::{self, ResolvedOverride};
use super::{BuildRecord, NpmOverride, OverrideSource, RECORD, WebBuild, WebError};
use crate::identity::{NpmIntegrity, Sha256};

/// Where every proxy variable points: nothing listens there, so the npm step cannot reach the
/// network even if something in it ignores `--offline`.
const CLOSED_PORT: &str = "http://127.0.0.1:9";

/// The registry npm asks for metadata (its default, set explicitly so that no npmrc changes
/// it); offline, the answers come from [`package_lock::packuments`].
const REGISTRY: &str = "https://registry.npmjs.org/";

/// The build directory, removed when dropped (also after a failure).
struct BuildDirectory {
    root: PathBuf,
    /// Until the output is published.
    failed: bool,
}

impl BuildDirectory {
    /// Create `root` afresh. What a dead run left there is removed, but only if this user owns
    /// it and it is a real directory: `/tmp` is shared, and a directory planted by someone
    /// else must not become the build's.
    fn create(root: &Path) -> Result<BuildDirectory, WebError> {
        use std::os::unix::fs::MetadataExt;
        if let Ok(metadata) = fs_err::symlink_metadata(root) {
            if !metadata.is_dir() || metadata.uid() != rustix::process::geteuid().as_raw() {
                return Err(WebError::ForeignBuildDirectory {
                    path: root.to_path_buf(),
                });
            }
            fs_err::remove_dir_all(root).map_err(WebError::io("cannot remove", root))?;
        }
        fs_err::create_dir(root).map_err(WebError::io("cannot create", root))?;
        Ok(BuildDirectory {
            root: root.to_path_buf(),
            failed: true,
        })
    }
}

impl Drop for BuildDirectory {
    fn drop(&mut self) {
        // A debugging aid: keep a failed build's directory to look into (the next build of
        // the same key removes it).
        if self.failed && std::env::var_os("AKPKG_KEEP_FAILED").is_some() {
            tracing::warn!("web build directory kept: {}", self.root.display());
            return;
        }
        if let Err(error) = fs_err::remove_dir_all(&self.root) {
            tracing::warn!("cannot remove the web build directory: {error}");
        }
    }
}

/// The pinned Node and npm, unpacked, and a `bin/` with `node`, `npm` and `npx` for PATH.
struct Tools {
    bin: PathBuf,
}

impl Tools {
    fn unpack(request: &WebBuild, directory: &Path) -> Result<Tools, WebError> {
        let node = directory.join("node");
        let npm = directory.join("npm");
        let bin = directory.join("bin");
        for (tarball, into) in [
            (&request.recipe.node.integrity, &node),
            (&request.recipe.npm.integrity, &npm),
        ] {
            fs_err::create_dir_all(into).map_err(WebError::io("cannot create", into))?;
            crate::archive::unpack_tar(&request.tarballs.path(tarball), into, &request.limits)?;
        }
        fs_err::create_dir_all(&bin).map_err(WebError::io("cannot create", &bin))?;
        let node_binary = node.join("package/bin/node");
        if !node_binary.is_file() {
            return Err(WebError::Recipe {
                field: "node",
                value: request.recipe.node.package.clone(),
                why: "its tarball has no package/bin/node".to_string(),
            });
        }
        std::os::unix::fs::symlink(&node_binary, bin.join("node"))
            .map_err(WebError::io("cannot create", &bin.join("node")))?;
        for (name, script) in [("npm", "npm-cli.js"), ("npx", "npx-cli.js")] {
            let launcher = format!(
                "#!/bin/sh\nexec \"{}\" \"{}\" \"$@\"\n",
                node_binary.display(),
                npm.join("package/bin").join(script).display()
            );
            let path = bin.join(name);
            fs_err::write(&path, launcher).map_err(WebError::io("cannot write", &path))?;
            set_executable(&path)?;
        }
        Ok(Tools { bin })
    }
}

fn set_executable(path: &Path) -> Result<(), WebError> {
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(WebError::io("cannot change the mode of", path))
}

/// One build's commands: their environment and their shared log.
struct Runner {
    environment: BTreeMap<String, String>,
    log: PathBuf,
}

impl Runner {
    fn new(request: &WebBuild, root: &Path, tools: &Tools, log: PathBuf) -> Runner {
        let private = root.join(".akpkg");
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_string());
        let mut environment: BTreeMap<String, String> = [
            ("PATH", format!("{}:{path}", tools.bin.display())),
            ("HOME", private.join("home").display().to_string()),
            ("TMPDIR", private.join("tmp").display().to_string()),
            (
                "npm_config_cache",
                private.join("npm-cache").display().to_string(),
            ),
            (
                "npm_config_userconfig",
                private.join("npmrc").display().to_string(),
            ),
            (
                "npm_config_globalconfig",
                private.join("npmrc-global").display().to_string(),
            ),
            ("npm_config_offline", "true".to_string()),
            ("npm_config_registry", REGISTRY.to_string()),
            ("npm_config_audit", "false".to_string()),
            ("npm_config_fund", "false".to_string()),
            ("npm_config_update_notifier", "false".to_string()),
            ("npm_config_proxy", CLOSED_PORT.to_string()),
            ("npm_config_https_proxy", CLOSED_PORT.to_string()),
            ("HTTP_PROXY", CLOSED_PORT.to_string()),
            ("HTTPS_PROXY", CLOSED_PORT.to_string()),
            ("http_proxy", CLOSED_PORT.to_string()),
            ("https_proxy", CLOSED_PORT.to_string()),
            ("ALL_PROXY", CLOSED_PORT.to_string()),
            ("all_proxy", CLOSED_PORT.to_string()),
            ("SOURCE_DATE_EPOCH", request.source_date_epoch.to_string()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
        if let Some(hash) = request.git_build_hash {
            environment.insert("GIT_BUILD_HASH".to_string(), hash.to_string());
        }
        for (name, value) in &request.recipe.environment {
            environment.insert(name.clone(), value.clone());
        }
        Runner { environment, log }
    }

    /// Run `command` in `directory`, its output appended to the log; a failure shows the
    /// log's last lines.
    fn run(&self, command: &[String], directory: &Path) -> Result<(), WebError> {
        let Some((program, arguments)) = command.split_first() else {
            return Ok(());
        };
        let mut process = Command::new(program);
        process
            .args(arguments)
            .current_dir(directory)
            .env_clear()
            .envs(&self.environment);
        Ok(crate::runner::run_logged(
            process,
            &command.join(" "),
            &self.log,
            true,
        )?)
    }
}

/// Steps 3 to 8 (see the module's documentation).
pub fn build_at_fixed_path(
    request: &WebBuild,
    overrides: &[&NpmOverride],
    key: &Sha256,
    bucket: &Path,
) -> Result<BuildRecord, WebError> {
    let root = PathBuf::from(format!("/tmp/akpkg-web-{}", &key.as_str()[..16]));
    // One build per key at a time: the path is shared by every cache directory. A build that
    // finished while this one waited is taken as it is.
    let _lock = lock_exclusively(&PathBuf::from(format!("{}.lock", root.display())))?;
    let finished = bucket.join(key.as_str());
    if let Some(record) = super::finished_record(&finished)? {
        return Ok(record);
    }
    let mut directory = BuildDirectory::create(&root)?;
    let project = directory.root.join(&request.recipe.project);

    // 3.
    let runner = prepare(request, &directory.root, &bucket.join("logs"), key)?;
    // 4.
    let resolved = overrides
        .iter()
        .map(|entry| resolve_override(request, entry, &directory.root, &runner))
        .collect::<Result<Vec<_>, _>>()?;
    let lock_path = project.join("package-lock.json");
    let text =
        fs_err::read_to_string(&lock_path).map_err(WebError::io("cannot read", &lock_path))?;
    let rewritten = package_lock::rewrite(&lock_path, &text, &resolved)?;
    fs_err::write(&lock_path, &rewritten.text).map_err(WebError::io("cannot write", &lock_path))?;
    // 5.
    npm_ci(
        request,
        overrides,
        &rewritten.lock,
        &directory.root,
        &runner,
    )?;
    // 6.
    build_api_client(request, overrides, &project, &runner)?;
    // 7.
    for command in &request.recipe.build {
        runner.run(command, &project)?;
    }
    // 8.
    let output = project.join(&request.recipe.output);
    if !output.is_dir() {
        return Err(WebError::NoOutput { path: output });
    }
    let record = BuildRecord {
        overrides: resolved,
        warnings: rewritten.warnings,
    };
    publish(&output, &record, bucket, &finished)?;
    directory.failed = false;
    Ok(record)
}

/// Copy the inputs into the build directory, make its private HOME, TMPDIR, npm cache and
/// empty npmrc files, unpack Node and npm, and start the build's log.
fn prepare(request: &WebBuild, root: &Path, logs: &Path, key: &Sha256) -> Result<Runner, WebError> {
    for input in &request.recipe.inputs {
        copy_input(request.source, input, root)?;
    }
    let private = root.join(".akpkg");
    for name in ["home", "tmp", "npm-cache", "overrides"] {
        let path = private.join(name);
        fs_err::create_dir_all(&path).map_err(WebError::io("cannot create", &path))?;
    }
    // Empty configurations: the user's and the machine's npmrc must not change the build.
    for name in ["npmrc", "npmrc-global"] {
        fs_err::write(private.join(name), "")
            .map_err(WebError::io("cannot write", &private.join(name)))?;
    }
    let tools = Tools::unpack(request, &private)?;
    fs_err::create_dir_all(logs).map_err(WebError::io("cannot create", logs))?;
    let log = logs.join(format!("{key}.log"));
    fs_err::write(&log, "").map_err(WebError::io("cannot create", &log))?;
    Ok(Runner::new(request, root, &tools, log))
}

/// Fill npm's cache from the checked tarballs and the lock's metadata, then `npm ci` offline.
fn npm_ci(
    request: &WebBuild,
    overrides: &[&NpmOverride],
    lock: &serde_json::Value,
    root: &Path,
    runner: &Runner,
) -> Result<(), WebError> {
    let npm_cache = root.join(".akpkg/npm-cache");
    let mut cached = request.packages.to_vec();
    cached.extend(
        super::extra_downloads(request.recipe)
            .into_iter()
            .filter(|download| overrides.iter().any(|entry| entry.package == download.name)),
    );
    request.tarballs.fill(&cached, &npm_cache)?;
    let cache = crate::fetch::NpmCache::new(&npm_cache);
    for (url, document) in package_lock::packuments(lock, REGISTRY) {
        cache.put_packument(&url, &document)?;
    }
    let command = [
        "npm",
        "ci",
        "--offline",
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
    ];
    runner.run(&strings(&command), &root.join(&request.recipe.project))
}

/// The generated API client's own build, inside `node_modules` (its `prepare`, which
/// `--ignore-scripts` skipped).
fn build_api_client(
    request: &WebBuild,
    overrides: &[&NpmOverride],
    project: &Path,
    runner: &Runner,
) -> Result<(), WebError> {
    let generated = overrides
        .iter()
        .find(|entry| entry.source().ok() == Some(OverrideSource::ApiClient));
    let (Some(client), Some(entry)) = (&request.recipe.api_client, generated) else {
        return Ok(());
    };
    let installed = project.join("node_modules").join(&entry.package);
    for command in &client.build {
        runner.run(command, &installed)?;
    }
    Ok(())
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|word| (*word).to_string()).collect()
}

fn lock_exclusively(path: &Path) -> Result<fs_err::File, WebError> {
    Ok(crate::path_io::lock_exclusive(path, true)?)
}

/// Copy one input (a file or a directory of the source) to the same path in the build
/// directory; links may point at the other inputs.
fn copy_input(source: &Path, input: &str, root: &Path) -> Result<(), WebError> {
    let from = source.join(input);
    if from.is_dir() {
        crate::archive::copy_tree_under(&from, root, Path::new(input), &["node_modules"])?;
    } else {
        let contained = crate::contained::Contained::open(root)?;
        if let Some(parent) = Path::new(input)
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            contained.create_dir_all(parent)?;
        }
        contained.place(&from, Path::new(input), crate::contained::LinkMode::Copy)?;
    }
    Ok(())
}

/// Make an override's tarball and say what its lock entry becomes.
fn resolve_override(
    request: &WebBuild,
    entry: &NpmOverride,
    root: &Path,
    runner: &Runner,
) -> Result<ResolvedOverride, WebError> {
    let packed = |directory: &Path| pack(directory, entry, root, runner);
    let (version, resolved, integrity) = match entry.source()? {
        OverrideSource::Registry(registry) => (
            registry.version.clone(),
            registry.url.clone(),
            registry.integrity.clone(),
        ),
        OverrideSource::Workspace(directory) => packed(&root.join(directory))?,
        OverrideSource::ApiClient => {
            let (Some(client), Some(generator)) = (&request.recipe.api_client, &request.generator)
            else {
                return Err(WebError::Recipe {
                    field: "override.generated",
                    value: entry.package.clone(),
                    why: "there is no [web.api-client] to generate it with".to_string(),
                });
            };
            let mut command = vec![
                generator.java.display().to_string(),
                "-jar".to_string(),
                generator.jar.display().to_string(),
            ];
            command.extend(client.arguments.iter().cloned());
            runner.run(&command, root)?;
            packed(&root.join(&client.output))?
        }
    };
    Ok(ResolvedOverride {
        package: entry.package.clone(),
        version,
        resolved,
        integrity,
        source: entry.describe(),
    })
}

/// `npm pack` a directory (its scripts not run) into the build's overrides; the package must
/// be the one it overrides.
fn pack(
    directory: &Path,
    entry: &NpmOverride,
    root: &Path,
    runner: &Runner,
) -> Result<(String, String, NpmIntegrity), WebError> {
    let destination = root
        .join(".akpkg/overrides")
        .join(crate::digest::sha256_hex(entry.package.as_bytes()));
    fs_err::create_dir_all(&destination).map_err(WebError::io("cannot create", &destination))?;
    let mut command = strings(&["npm", "pack", "--ignore-scripts", "--pack-destination"]);
    command.push(destination.display().to_string());
    // Always a path with a slash in front: npm reads `packages/tsconfig` as a GitHub
    // repository and `gen-ts-api` as a registry package.
    let directory =
        std::path::absolute(directory).map_err(WebError::io("cannot resolve", directory))?;
    command.push(directory.display().to_string());
    runner.run(&command, root)?;
    let tarball = fs_err::read_dir(&destination)
        .map_err(WebError::io("cannot read", &destination))?
        .filter_map(Result::ok)
        .map(|file| file.path())
        .find(|path| path.extension().is_some_and(|extension| extension == "tgz"))
        .ok_or_else(|| WebError::NotAPackage {
            path: destination.clone(),
        })?;
    let manifest = crate::archive::read_top_level_file(&tarball, "package.json", 1 << 20)?
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .ok_or_else(|| WebError::NotAPackage {
            path: tarball.clone(),
        })?;
    let name = manifest["name"].as_str().unwrap_or_default();
    let version = manifest["version"].as_str().unwrap_or_default().to_string();
    if name != entry.package || version.is_empty() {
        return Err(WebError::Recipe {
            field: "override",
            value: entry.package.clone(),
            why: format!("{} packs `{name}`, not this package", directory.display()),
        });
    }
    let bytes = fs_err::read(&tarball).map_err(WebError::io("cannot read", &tarball))?;
    Ok((
        version,
        format!("file:{}", tarball.display()),
        NpmIntegrity::of_bytes(&bytes),
    ))
}

/// Copy the output into the cache under its key, with the record: beside, then renamed.
fn publish(
    output: &Path,
    record: &BuildRecord,
    bucket: &Path,
    finished: &Path,
) -> Result<(), WebError> {
    let incoming = crate::cache::incoming_dir_in(bucket)
        .map_err(WebError::io("cannot create a directory in", bucket))?;
    let copy = incoming.path().join("output");
    fs_err::create_dir_all(&copy).map_err(WebError::io("cannot create", &copy))?;
    crate::archive::copy_tree(output, &copy, &[])?;
    let record_path = incoming.path().join(RECORD);
    let text = serde_json::to_string_pretty(record).map_err(|error| WebError::Json {
        path: record_path.clone(),
        detail: error.to_string(),
    })?;
    fs_err::write(&record_path, text).map_err(WebError::io("cannot write", &record_path))?;
    crate::cache::publish_dir(incoming, finished, |entry| entry.join("output").is_dir())
        .map_err(WebError::io("cannot move the build into", finished))?;
    Ok(())
}
