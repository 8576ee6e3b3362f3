//! `akpkg build-wheel` end to end: fixture projects with in-tree backends (no index needed), a
//! backend that asks for more in `get_requires_for_build_wheel` (served by a simple index on
//! 127.0.0.1), a failing build, and, when PyPI is reachable, hatchling and setuptools projects
//! and a real sdist.

// This whole file is test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};

use common::{StaticServer, WheelBuilder, akpkg, failure_of, stdout_of, without_network};

/// A tiny PEP 517 backend, written into `tools/backend.py` of a project: it writes a wheel with
/// one module whose text comes from `make_module()`, defined by each test.
const BACKEND: &str = r#"
import base64, hashlib, os, sys, zipfile

NAME, VERSION = "fixture", "1.0"

def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    dist_info = f"{NAME}-{VERSION}.dist-info"
    files = {
        f"{NAME}.py": make_module(config_settings).encode(),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: fixture\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "\n".join(_record_line(path, data) for path, data in files.items())
    record += f"\n{dist_info}/RECORD,,\n"
    files[f"{dist_info}/RECORD"] = record.encode()
    filename = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as archive:
        for path, data in files.items():
            archive.writestr(zipfile.ZipInfo(path, (1980, 1, 1, 0, 0, 0)), data)
    return filename
"#;

/// A project whose in-tree backend is `BACKEND` plus `extra` (which defines `make_module`).
fn in_tree_project(directory: &Path, extra: &str) -> PathBuf {
    let project = directory.join("project");
    fs_err::create_dir_all(project.join("tools")).unwrap();
    fs_err::write(
        project.join("pyproject.toml"),
        "[build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\"tools\"]\n",
    )
    .unwrap();
    fs_err::write(
        project.join("tools/backend.py"),
        format!("{BACKEND}\n{extra}"),
    )
    .unwrap();
    // A module of the same name at the root must not shadow the in-tree backend.
    fs_err::write(
        project.join("backend.py"),
        "raise SystemExit('wrong backend')\n",
    )
    .unwrap();
    project
}

fn build_wheel(source: &Path, out: &Path, cache: &Path) -> assert_cmd::Command {
    let mut command = akpkg();
    command
        .args(["build-wheel", "--python", "3.13", "--cache-dir"])
        .arg(cache)
        .arg("-o")
        .arg(out)
        .arg(source);
    command
}

/// `akpkg fetch` of a requirements file into `cache`, with a bundle written to `bundle`; the
/// caller adds the target.
fn fetch_to_bundle(requirements: &Path, cache: &Path, bundle: &Path) -> assert_cmd::Command {
    let mut command = akpkg();
    command
        .arg("fetch")
        .arg("--lock")
        .arg(requirements)
        .arg("--cache-dir")
        .arg(cache)
        .arg("--dest")
        .arg(bundle);
    command
}

/// The text of one file inside a wheel.
fn wheel_file(wheel: &Path, name: &str) -> String {
    let mut archive = zip::ZipArchive::new(fs_err::File::open(wheel).unwrap()).unwrap();
    let mut text = String::new();
    archive
        .by_name(name)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// An in-tree backend (`backend-path`) builds with no index at all, sees the scrubbed
/// environment and the config settings, and a second build comes from the build cache.
#[test]
fn in_tree_backend_builds_offline_in_a_scrubbed_environment() {
    let directory = tempfile::tempdir().unwrap();
    let project = in_tree_project(
        directory.path(),
        r#"
def make_module(config_settings):
    return "\n".join([
        f"SETTINGS = {config_settings!r}",
        f"EPOCH = {os.environ.get('SOURCE_DATE_EPOCH')!r}",
        f"HASHSEED = {os.environ.get('PYTHONHASHSEED')!r}",
        f"SECRET = {os.environ.get('AKPKG_TEST_SECRET')!r}",
        f"EXTRA = {os.environ.get('AKPKG_TEST_EXTRA')!r}",
        f"ROOT_ON_PATH = {os.getcwd() in sys.path or '' in sys.path}",
    ]) + "\n"
"#,
    );
    let (out, cache) = (directory.path().join("out"), directory.path().join("cache"));
    let summary = stdout_of(
        without_network(&mut build_wheel(&project, &out, &cache))
            .env("AKPKG_TEST_SECRET", "leaked")
            .args(["--build-env", "AKPKG_TEST_EXTRA=given"])
            .args([
                "--config-setting",
                "mode=fast",
                "--config-setting",
                "mode=safe",
            ])
            .args(["--config-setting", "other-dist:ignored=1"]),
    );
    assert!(summary.contains("environment: (empty)"), "{summary}");
    let wheel = out.join("fixture-1.0-py3-none-any.whl");
    let module = wheel_file(&wheel, "fixture.py");
    assert_eq!(
        module,
        "SETTINGS = {'mode': ['fast', 'safe']}\nEPOCH = '315532800'\nHASHSEED = '0'\nSECRET = None\nEXTRA = 'given'\nROOT_ON_PATH = False\n"
    );

    // The same inputs again: nothing is built.
    let again = stdout_of(
        without_network(&mut build_wheel(&project, &out, &cache))
            .args(["--build-env", "AKPKG_TEST_EXTRA=given"])
            .args([
                "--config-setting",
                "mode=fast",
                "--config-setting",
                "mode=safe",
            ]),
    );
    assert!(again.contains("from the build cache"), "{again}");
    // A changed source is a new build.
    fs_err::write(project.join("README"), "changed\n").unwrap();
    let changed = stdout_of(without_network(&mut build_wheel(&project, &out, &cache)));
    assert!(!changed.contains("from the build cache"), "{changed}");
}

/// A backend that asks for `helper` in `get_requires_for_build_wheel` gets it, resolved on a
/// simple index served from 127.0.0.1, installed before `build_wheel`.
#[test]
fn dynamic_requirements_are_resolved_and_installed() {
    let directory = tempfile::tempdir().unwrap();
    let index = directory.path().join("index");
    let files = index.join("files");
    fs_err::create_dir_all(&files).unwrap();
    let mut links = String::new();
    for version in ["1.0", "2.0", "3.0"] {
        let wheel = WheelBuilder::new("helper", version)
            .file("helper.py", &format!("VERSION = '{version}'\n"))
            .build(&files);
        let bytes = fs_err::read(&wheel).unwrap();
        let hex: String = <sha2::Sha256 as sha2::Digest>::digest(&bytes)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let name = wheel.file_name().unwrap().to_string_lossy().into_owned();
        links.push_str(&format!(
            "<a href=\"../../files/{name}#sha256={hex}\">{name}</a>\n"
        ));
    }
    fs_err::create_dir_all(index.join("simple/helper")).unwrap();
    fs_err::write(
        index.join("simple/helper/index.html"),
        format!("<html><body>{links}</body></html>"),
    )
    .unwrap();
    let server = StaticServer::serve(&index);

    let project = in_tree_project(
        directory.path(),
        r#"
def get_requires_for_build_wheel(config_settings=None):
    return ["helper<3"]

def make_module(config_settings):
    import helper
    return f"HELPER = {helper.VERSION!r}\n"
"#,
    );
    let (out, cache) = (directory.path().join("out"), directory.path().join("cache"));
    let summary = stdout_of(
        without_network(&mut build_wheel(&project, &out, &cache))
            .env("NO_PROXY", "127.0.0.1")
            .args(["--index-url", &format!("{}/simple", server.base)]),
    );
    assert!(summary.contains("environment: helper==2.0"), "{summary}");
    assert_eq!(
        wheel_file(&out.join("fixture-1.0-py3-none-any.whl"), "fixture.py"),
        "HELPER = '2.0'\n"
    );
}

/// A failing build names the distribution, the backend and the hook, shows the end of the
/// output with the log's path, and hints at the missing native tool.
#[test]
fn failed_builds_show_the_output_and_a_hint() {
    let directory = tempfile::tempdir().unwrap();
    let project = in_tree_project(
        directory.path(),
        r#"
def make_module(config_settings):
    for line in range(50):
        print(f"compiling step {line}")
    print("Error: pg_config executable not found.", file=sys.stderr)
    raise RuntimeError("native build failed")
"#,
    );
    let (out, cache) = (directory.path().join("out"), directory.path().join("cache"));
    let error = failure_of(without_network(&mut build_wheel(&project, &out, &cache)));
    let log = cache.join("build-logs-v1");
    let error = error.replace(&log.display().to_string(), "CACHE/build-logs-v1");
    // The log's name carries a hash of the source; the traceback's frames vary with paths
    // and Python versions, so only its first and last lines are kept.
    let mut in_traceback = false;
    let error: String = error
        .lines()
        .filter_map(|line| {
            if line.starts_with("--- the full log is ") {
                return Some(
                    "--- the full log is CACHE/build-logs-v1/project-<hash>.log".to_string(),
                );
            }
            if line.starts_with("Traceback ") {
                in_traceback = true;
                return Some(line.to_string());
            }
            if in_traceback && line.starts_with(' ') {
                return None;
            }
            in_traceback = false;
            Some(line.to_string())
        })
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!(error);
    assert!(!out.exists(), "no wheel directory after a failure");
}

/// Where PyPI is reachable: a hatchling workspace member and a setuptools project with only a
/// setup.py build, and the hatchling wheel installs and imports.
#[test]
fn hatchling_and_setuptools_projects_build_from_pypi() {
    let directory = tempfile::tempdir().unwrap();
    let member = directory.path().join("packages/django-fixture-cache");
    fs_err::create_dir_all(member.join("django_fixture_cache")).unwrap();
    fs_err::write(
        member.join("pyproject.toml"),
        "[project]\nname = \"django-fixture-cache\"\nversion = \"0.1.0\"\nrequires-python = \">=3.12\"\n\n[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n",
    )
    .unwrap();
    fs_err::write(
        member.join("django_fixture_cache/__init__.py"),
        "NAME = 'cache'\n",
    )
    .unwrap();
    let legacy = directory.path().join("legacy");
    fs_err::create_dir_all(legacy.join("legacy_mod")).unwrap();
    fs_err::write(
        legacy.join("setup.py"),
        "from setuptools import setup\nsetup(name='legacy-mod', version='2.0', packages=['legacy_mod'])\n",
    )
    .unwrap();
    fs_err::write(legacy.join("legacy_mod/__init__.py"), "").unwrap();

    let (out, cache) = (directory.path().join("out"), directory.path().join("cache"));
    let output = build_wheel(&member, &out, &cache).output().unwrap();
    stderr_or_skip_without_pypi!(output);
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains("backend hatchling.build, environment: hatchling=="),
        "{summary}"
    );
    let wheel = out.join("django_fixture_cache-0.1.0-py3-none-any.whl");
    assert!(wheel.is_file(), "{summary}");

    let summary = stdout_of(&mut build_wheel(&legacy, &out, &cache));
    assert!(
        summary.contains("backend setuptools.build_meta:__legacy__, environment: setuptools=="),
        "{summary}"
    );
    assert!(
        out.join("legacy_mod-2.0-py3-none-any.whl").is_file(),
        "{summary}"
    );

    // The member's wheel installs and imports.
    let prefix = directory.path().join("prefix");
    stdout_of(
        akpkg()
            .args(["install", "--python", "3.13", "--cache-dir"])
            .arg(&cache)
            .arg("--prefix")
            .arg(&prefix)
            .arg(&wheel),
    );
    let imported = std::process::Command::new(prefix.join("bin/python"))
        .args(["-c", "import django_fixture_cache as m; print(m.NAME)"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&imported.stdout), "cache\n");
}

/// Where PyPI is reachable: a real sdist (six 1.17.0, setuptools through pyproject.toml),
/// fetched by hash through a requirements.txt lock, then built.
#[test]
fn a_real_sdist_from_pypi_builds() {
    let directory = tempfile::tempdir().unwrap();
    let url = "https://files.pythonhosted.org/packages/94/e7/b2c673351809dca68a0e064b6af791aa332cf192da575fd474ed7d6f16a2/six-1.17.0.tar.gz";
    let sha256 = "ff70335d468e7eb6ec65b95b99d3a2836546063f63acc5171de367e834932a81";
    let requirements = directory.path().join("requirements.txt");
    fs_err::write(
        &requirements,
        format!("six @ {url} --hash=sha256:{sha256}\n"),
    )
    .unwrap();
    let cache = directory.path().join("cache");
    let bundle = directory.path().join("bundle");
    let output = fetch_to_bundle(&requirements, &cache, &bundle)
        .args([
            "--python-version",
            "3.13",
            "--platform",
            "manylinux_2_17_x86_64",
        ])
        .output()
        .unwrap();
    stderr_or_skip_without_pypi!(output);
    let out = directory.path().join("out");
    let summary = stdout_of(&mut build_wheel(
        &bundle.join("artifacts/six-1.17.0.tar.gz"),
        &out,
        &cache,
    ));
    assert!(summary.contains("environment: setuptools=="), "{summary}");
    let wheel = out.join("six-1.17.0-py2.py3-none-any.whl");
    assert!(
        wheel_file(&wheel, "six.py")
            .contains("Utilities for writing code that runs on Python 2 and 3")
    );
}

/// A directory source holding a fifo is refused at once, naming it, instead of waiting forever
/// for a writer while the tree is copied.
#[test]
fn a_fifo_in_a_directory_source_is_refused_not_waited_on() {
    let directory = tempfile::tempdir().unwrap();
    let project = in_tree_project(directory.path(), "");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        project.join("pipe"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let output = build_wheel(
        &project,
        &directory.path().join("out"),
        &directory.path().join("cache"),
    )
    .timeout(std::time::Duration::from_secs(120))
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("pipe is a device, socket or fifo"),
        "{stderr}"
    );
}

/// The build path real users hit first: a native sdist (psycopg-c, authentik's pin) compiled
/// against Debian's libpq, installed with psycopg, and loaded as psycopg's C implementation.
/// `.ci/run` installs libpq-dev; without pg_config this is a skip, and under CI a failure.
#[test]
fn a_native_sdist_builds_against_libpq_and_imports() {
    let has_pg_config = std::process::Command::new("pg_config")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !has_pg_config {
        assert!(
            std::env::var("CI").is_err(),
            "CI must install libpq-dev (pg_config) for the native build test"
        );
        common::skip(
            "a_native_sdist_builds_against_libpq_and_imports",
            "no pg_config here (apt-get install libpq-dev)",
        );
        return;
    }
    let directory = tempfile::tempdir().unwrap();
    let requirements = directory.path().join("requirements.txt");
    fs_err::write(
        &requirements,
        "psycopg-c @ https://files.pythonhosted.org/packages/83/7f/6147cb842081b0b32692bf5a0fdf58e9ac95418ebac1184d4431ec44b85f/psycopg_c-3.2.9.tar.gz --hash=sha256:8c9f654f20c6c56bddc4543a3caab236741ee94b6732ab7090b95605502210e2\n\
         psycopg @ https://files.pythonhosted.org/packages/44/b0/a73c195a56eb6b92e937a5ca58521a5c3346fb233345adc80fd3e2f542e2/psycopg-3.2.9-py3-none-any.whl --hash=sha256:01a8dadccdaac2123c916208c96e06631641c0566b22005493f09663c7a8d3b6\n",
    )
    .unwrap();
    let cache = directory.path().join("cache");
    let bundle = directory.path().join("bundle");
    let output = fetch_to_bundle(&requirements, &cache, &bundle)
        .args(["--python", "3.13"])
        .output()
        .unwrap();
    stderr_or_skip_without_pypi!(output);
    let out = directory.path().join("out");
    let summary = stdout_of(&mut build_wheel(
        &bundle.join("artifacts/psycopg_c-3.2.9.tar.gz"),
        &out,
        &cache,
    ));
    let wheel = fs_err::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|extension| extension == "whl"))
        .unwrap_or_else(|| panic!("no wheel: {summary}"));
    assert!(
        wheel
            .file_name()
            .unwrap()
            .to_string_lossy()
            .contains("-cp313-cp313-linux_x86_64"),
        "{}",
        wheel.display()
    );
    let prefix = directory.path().join("prefix");
    stdout_of(
        akpkg()
            .args(["install", "--python", "3.13", "--prefix"])
            .arg(&prefix)
            .arg("--cache-dir")
            .arg(&cache)
            .arg(&wheel)
            .arg(bundle.join("artifacts/psycopg-3.2.9-py3-none-any.whl")),
    );
    let loaded = std::process::Command::new(prefix.join("bin/python"))
        .env("PSYCOPG_IMPL", "c")
        .env_remove("LD_LIBRARY_PATH")
        .args([
            "-c",
            "import psycopg; print(psycopg.pq.__impl__, psycopg.pq.version())",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&loaded.stdout);
    assert!(
        loaded.status.success() && text.starts_with("c "),
        "{text}{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
}
