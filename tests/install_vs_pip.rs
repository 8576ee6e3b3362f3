//! akpkg's installer against pip on real wheels of authentik 2025.12.4's plan: the same files
//! under site-packages and bin. Needs PyPI; skipped (with a message) when it cannot be reached.

// This whole file is test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use common::{akpkg, authentik_lock, plan_json, planned, stdout_of};
use sha2::{Digest, Sha256};

/// Wheels chosen to cover: pure and abi3 and version-specific native wheels, console scripts,
/// `.data/scripts` (dumb-init ships a binary there), `.data/data` in a pure `py3-none-any`
/// wheel (jwcrypto), `.data/headers` (greenlet), and large trees.
const NAMES: [&str; 24] = [
    "jwcrypto",
    "greenlet",
    "django",
    "cryptography",
    "lxml",
    "pydantic-core",
    "uvicorn",
    "gunicorn",
    "pyyaml",
    "dumb-init",
    "watchdog",
    "setproctitle",
    "cffi",
    "orjson",
    "psycopg",
    "psycopg-pool",
    "structlog",
    "sentry-sdk",
    "channels",
    "asgiref",
    "msgpack",
    "charset-normalizer",
    "jsonpatch",
    "urllib3",
];

fn python313() -> String {
    let root = Process::new("pyenv")
        .arg("root")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let candidate = root
        .map(|root| format!("{root}/versions/3.13.0/bin/python3.13"))
        .unwrap_or_default();
    if Path::new(&candidate).is_file() {
        candidate
    } else {
        "python3.13".to_string()
    }
}

/// Every file below `root`, relative, `/`-separated.
fn files_below(root: &Path) -> BTreeSet<String> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(Result::unwrap)
        .filter(|entry| !entry.file_type().is_dir())
        .map(|entry| {
            entry
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// Installer-specific files that legitimately differ between installers.
fn comparable(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let in_dist_info = path.split('/').any(|part| part.ends_with(".dist-info"));
    let installer_file =
        in_dist_info && ["INSTALLER", "RECORD", "REQUESTED", "direct_url.json"].contains(&name);
    !installer_file && !path.contains("__pycache__/")
}

#[test]
fn installed_files_match_pip_install_target() {
    let directory = tempfile::tempdir().unwrap();
    let plan = plan_json(&authentik_lock(), &["--only-binary", "lxml"]);
    let chosen: Vec<(String, String, String)> = NAMES
        .iter()
        .map(|name| {
            let distribution = planned(&plan, name);
            assert_eq!(distribution["action"], "wheel", "{name}");
            let artifact = &distribution["artifact"];
            (
                artifact["filename"].as_str().unwrap().to_string(),
                artifact["url"].as_str().unwrap().to_string(),
                artifact["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();

    // Download with pip (the reference tool), then check each file against the lock's hash.
    let python = python313();
    let downloads = directory.path().join("wheels");
    let output = Process::new(&python)
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--dest",
        ])
        .arg(&downloads)
        .args(chosen.iter().map(|(_, url, _)| url))
        .output()
        .unwrap();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        common::skip(
            "install_vs_pip",
            &format!(
                "PyPI is not reachable ({})",
                stderr.lines().last().unwrap_or_default()
            ),
        );
        return;
    }
    let wheels: Vec<PathBuf> = chosen
        .iter()
        .map(|(filename, _, sha256)| {
            let path = downloads.join(filename);
            let digest = Sha256::digest(fs_err::read(&path).unwrap());
            let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
            assert_eq!(&hex, sha256, "{filename}");
            path
        })
        .collect();

    let prefix = directory.path().join("akpkg");
    stdout_of(
        akpkg()
            .args(["install", "--python", &python, "--prefix"])
            .arg(&prefix)
            .arg("--cache-dir")
            .arg(directory.path().join("cache"))
            .args(&wheels),
    );
    let target = directory.path().join("pip");
    let status = Process::new(&python)
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-compile",
            "--no-index",
            "--target",
        ])
        .arg(&target)
        .args(&wheels)
        .status()
        .unwrap();
    assert!(status.success());

    // pip --target puts package files and data files at the top and scripts in bin/; akpkg uses
    // a venv layout. Headers are left out: their place differs by design (pip's --target uses
    // its `home` scheme, a venv uses include/site/python3.X/<dist>).
    let site = prefix.join("lib/python3.13/site-packages");
    let mut ours_site: BTreeSet<String> = files_below(&site)
        .into_iter()
        .filter(|path| comparable(path))
        .collect();
    let ours_data: Vec<String> = files_below(&prefix)
        .into_iter()
        .filter(|path| {
            !["lib/", "bin/", "include/"]
                .iter()
                .any(|top| path.starts_with(top))
                && path != "pyvenv.cfg"
        })
        .collect();
    assert!(
        ours_data.iter().any(|path| path.starts_with("share/")),
        "jwcrypto's data files: {ours_data:?}"
    );
    ours_site.extend(ours_data);
    let ours_bin: BTreeSet<String> = files_below(&prefix.join("bin"))
        .into_iter()
        .filter(|name| !name.starts_with("python"))
        .collect();
    let pip_all = files_below(&target);
    let pip_bin: BTreeSet<String> = pip_all
        .iter()
        .filter_map(|path| path.strip_prefix("bin/"))
        .map(str::to_string)
        .collect();
    let pip_site: BTreeSet<String> = pip_all
        .into_iter()
        .filter(|path| {
            !path.starts_with("bin/") && !path.starts_with("include/") && comparable(path)
        })
        .collect();

    assert_eq!(ours_bin, pip_bin, "bin differs");
    let only_ours: Vec<_> = ours_site.difference(&pip_site).collect();
    let only_pip: Vec<_> = pip_site.difference(&ours_site).collect();
    assert!(
        only_ours.is_empty() && only_pip.is_empty(),
        "only akpkg: {only_ours:?}\nonly pip: {only_pip:?}"
    );
    assert!(
        ours_site.len() > 4000,
        "a real comparison: {} files",
        ours_site.len()
    );
    assert!(
        ours_bin.contains("dumb-init")
            && ours_bin.contains("gunicorn")
            && ours_bin.contains("uvicorn")
    );

    // And what akpkg installed works.
    let output = Process::new(prefix.join("bin/python"))
        .args([
            "-c",
            "import django, cryptography.fernet, lxml.etree, yaml, orjson, msgpack; print('ok')",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "ok\n",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
