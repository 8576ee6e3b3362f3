//! `akpkg plan` end to end: on authentik's real lock from ../shared and on small locks written
//! here.

// This whole file is test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

mod common;

use common::{akpkg, authentik_lock, plan_json, plan_output, planned, stdout_of};
use predicates::str::contains;

fn plan_authentik(format: &str) -> String {
    plan_output(&authentik_lock(), format, &[])
}

/// The exact lines of `uv export --frozen --no-dev --no-hashes --no-header --no-annotate` for
/// this lock (uv 0.13.9), less the three lines whose marker is false on Linux, markers dropped.
/// Checked against uv itself when this snapshot was written.
#[test]
fn authentik_requirements_equal_uv_export() {
    let requirements = plan_authentik("requirements");
    insta::assert_snapshot!("authentik_2025_12_4_requirements", requirements);
    let lines: Vec<&str> = requirements.lines().collect();
    assert_eq!(lines.len(), 179);
    assert_eq!(lines[..2], ["-e .", "-e ./packages/ak-guardian"]);
    assert!(lines.contains(&"opencontainers @ git+https://github.com/vsoch/oci-python@ceb4fcc090851717a3069d78e85ceb1e86c2740c"));
    for windows_only in ["colorama", "pywin32", "tzdata"] {
        assert!(
            !requirements.contains(&format!("\n{windows_only}==")),
            "{windows_only}"
        );
    }
}

#[test]
fn authentik_builds_are_the_expected_ones() {
    let json = plan_json(&authentik_lock(), &[]);
    let distributions = json["distributions"].as_array().unwrap();
    let find = |name: &str| planned(&json, name);
    let mut builds: Vec<(String, String)> = distributions
        .iter()
        .filter(|d| d["action"] == "build")
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_string(),
                d["build"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    builds.sort();
    let expected = [
        ("ak-guardian", "workspace"),
        ("authentik", "project"),
        ("django-channels-postgres", "workspace"),
        ("django-dramatiq-postgres", "workspace"),
        ("django-postgres-cache", "workspace"),
        ("gssapi", "sdist"),
        ("lxml", "sdist"),
        ("opencontainers", "git"),
        ("psycopg-c", "sdist"),
        ("xmlsec", "sdist"),
    ]
    .map(|(name, kind)| (name.to_string(), kind.to_string()));
    assert_eq!(builds, expected);
    assert!(
        find("lxml")["reason"]
            .as_str()
            .unwrap()
            .starts_with("no-binary: [tool.uv] no-binary-package")
    );
    assert_eq!(find("psycopg-c")["reason"], "no wheels in the lock");
    assert_eq!(
        find("gssapi")["reason"],
        "none of its 4 wheels fits this target"
    );
    assert_eq!(
        find("gssapi")["artifact"]["filename"],
        "gssapi-1.9.0.tar.gz"
    );
    // cryptography uses its abi3 manylinux wheel, with hash and size from the lock.
    let cryptography = find("cryptography");
    assert_eq!(cryptography["action"], "wheel");
    assert!(
        cryptography["tag"]
            .as_str()
            .unwrap()
            .starts_with("cp311-abi3-manylinux_2_34_x86_64")
    );
    assert_eq!(
        cryptography["artifact"]["sha256"].as_str().unwrap().len(),
        64
    );
    assert!(cryptography["artifact"]["size"].as_u64().unwrap() > 1_000_000);
    assert_eq!(
        find("psycopg-c")["required_by"],
        serde_json::json!(["authentik", "psycopg"])
    );
}

/// The machines here have CPython 3.13 under pyenv: the probed interpreter must plan exactly
/// what the described target plans.
#[test]
fn discovered_interpreter_plans_like_the_described_target() {
    let output = akpkg()
        .args(["plan", "--format", "requirements", "--lock"])
        .arg(authentik_lock())
        .output()
        .unwrap();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("no Python interpreter satisfies"),
            "{stderr}"
        );
        common::skip(module_path!(), "no CPython 3.13 here");
        return;
    }
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        plan_authentik("requirements")
    );
}

#[test]
fn text_table_explains_each_choice() {
    let table = plan_authentik("text");
    let first = table.lines().next().unwrap();
    assert_eq!(
        first,
        "179 distributions for CPython 3.13.0 on manylinux_2_36_x86_64: 169 wheels, 10 builds"
    );
    let gssapi = table
        .lines()
        .find(|line| line.starts_with("gssapi "))
        .unwrap();
    assert!(
        gssapi.contains("build (sdist)") && gssapi.contains("none of its 4 wheels fits"),
        "{gssapi}"
    );
}

#[test]
fn a_newer_python_is_planned_without_an_interpreter() {
    // authentik 2025.12.4 pins Python 3.13: a 3.14 target is refused with the reason.
    akpkg()
        .args([
            "plan",
            "--python-version",
            "3.14",
            "--platform",
            "manylinux_2_36_x86_64",
            "--lock",
        ])
        .arg(authentik_lock())
        .assert()
        .failure()
        .stderr(contains(
            "requires Python ==3.13.*, but the target is Python 3.14.0",
        ));
}

#[test]
fn no_binary_and_only_binary_flags_change_the_plan() {
    let plan = plan_json(&authentik_lock(), &["--no-binary", "cryptography,pyyaml"]);
    let cryptography = planned(&plan, "cryptography");
    assert_eq!(cryptography["build"], "sdist");
    assert_eq!(
        cryptography["reason"],
        "no-binary: --no-binary cryptography"
    );
    assert_eq!(planned(&plan, "pyyaml")["build"], "sdist");

    // The command line overrides [tool.uv] no-binary-package.
    let plan = plan_json(&authentik_lock(), &["--only-binary", "lxml"]);
    assert_eq!(planned(&plan, "lxml")["action"], "wheel");

    akpkg()
        .args(["plan", "--python-version", "3.13", "--platform", "manylinux_2_36_x86_64"])
        .args(["--only-binary", ":all:", "--lock"])
        .arg(authentik_lock())
        .assert()
        .failure()
        .stderr(contains("`authentik` must be built from source (editable), but only wheels are allowed for it (--only-binary :all:)"));
}

fn write(directory: &Path, name: &str, text: &str) -> PathBuf {
    let path = directory.join(name);
    fs_err::write(&path, text).unwrap();
    path
}

#[test]
fn malformed_lock_is_reported_with_file_line_and_column() {
    let directory = tempfile::tempdir().unwrap();
    let lock = write(
        directory.path(),
        "uv.lock",
        "version = 1\nrevision = 3\n\n[[package]]\nname = \"x\"\nversion = \n",
    );
    let output = akpkg()
        .current_dir(directory.path())
        .args([
            "plan",
            "--python-version",
            "3.13",
            "--platform",
            "linux_x86_64",
            "--lock",
            "uv.lock",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    insta::assert_snapshot!(String::from_utf8_lossy(&output.stderr), @"error: uv.lock:6:11: malformed TOML: string values must be quoted, expected literal string");
    drop(lock);
}

#[test]
fn requirements_and_pylock_files_plan_too() {
    let directory = tempfile::tempdir().unwrap();
    let requirements = write(
        directory.path(),
        "requirements.txt",
        "# pinned\nsix==1.17.0 \\\n    --hash=sha256:4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274\npywin32==310 ; sys_platform == 'win32' --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000\n",
    );
    let output = stdout_of(
        akpkg()
            .args([
                "plan",
                "--format",
                "requirements",
                "--python-version",
                "3.13",
                "--platform",
                "manylinux_2_17_x86_64",
                "--lock",
            ])
            .arg(&requirements),
    );
    assert_eq!(output, "six==1.17.0\n");

    let pylock = write(
        directory.path(),
        "pylock.toml",
        r#"lock-version = "1.0"
requires-python = ">=3.9"
created-by = "hand"

[[packages]]
name = "six"
version = "1.17.0"
index = "https://pypi.org/simple"
wheels = [{ url = "https://files.pythonhosted.org/packages/b7/ce/149a00dd41f10bc29e5921b496af8b574d8413afcd5e30dfa0ed46c2cc5e/six-1.17.0-py2.py3-none-any.whl", size = 11050, hashes = { sha256 = "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274" } }]

[[packages]]
name = "pywin32"
version = "310"
marker = "sys_platform == 'win32'"
wheels = [{ name = "pywin32-310-cp313-cp313-win_amd64.whl", url = "https://files.example/pywin32.whl", hashes = { sha256 = "0000000000000000000000000000000000000000000000000000000000000000" } }]
"#,
    );
    let table = stdout_of(
        akpkg()
            .args([
                "plan",
                "--python-version",
                "3.13",
                "--platform",
                "manylinux_2_17_x86_64",
                "--lock",
            ])
            .arg(&pylock),
    );
    insta::assert_snapshot!(table, @"
    1 distributions for CPython 3.13.0 on manylinux_2_17_x86_64: 1 wheels, 0 builds
    NAME  VERSION  SOURCE    ACTION              WHY                                 REQUIRED BY
    six   1.17.0   registry  wheel py3-none-any  best of 1 compatible wheels (of 1)  (root)
    ");
}

#[test]
fn target_flags_are_checked_by_the_parser() {
    akpkg()
        .args(["plan", "--python-version", "3.13"])
        .assert()
        .code(2)
        .stderr(contains("--platform <TAG>"));
    akpkg()
        .args([
            "plan",
            "--python",
            "/usr/bin/python3",
            "--python-version",
            "3.13",
            "--platform",
            "linux_x86_64",
        ])
        .assert()
        .code(2)
        .stderr(contains("cannot be used with"));
}

#[test]
fn a_missing_interpreter_is_named() {
    let directory = tempfile::tempdir().unwrap();
    write(directory.path(), "uv.lock", "version = 1\n");
    akpkg()
        .current_dir(directory.path())
        .args(["plan", "--python", "/nonexistent/python3.13"])
        .assert()
        .failure()
        .stderr(contains("error: cannot run the Python interpreter /nonexistent/python3.13: No such file or directory"));
}

#[test]
fn help_explains_the_flags() {
    let help = stdout_of(akpkg().args(["plan", "--help"]));
    for flag in [
        "--lock <FILE>",
        "--python <PYTHON>",
        "--python-version",
        "--platform <TAG>",
        "--format",
        "--group",
        "--all-groups",
        "--no-binary",
        "--only-binary",
        "--project",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

/// authentik 2025.10.1 takes djangorestframework and opencontainers from git.
#[test]
fn two_git_sources_are_planned_as_git_builds() {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/authentik/2025.10.1/uv.lock");
    let requirements = plan_output(&lock, "requirements", &[]);
    let git_lines: Vec<&str> = requirements
        .lines()
        .filter(|line| line.contains(" @ git+"))
        .collect();
    assert_eq!(
        git_lines,
        [
            "djangorestframework @ git+https://github.com/goauthentik/django-rest-framework@896722bab969fabc74a08b827da59409cf9f1a4e",
            "opencontainers @ git+https://github.com/vsoch/oci-python@ceb4fcc090851717a3069d78e85ceb1e86c2740c",
        ]
    );
}

/// authentik 2025.10.1's lock takes djangorestframework from authentik's fork and
/// opencontainers from git: both are planned as git builds at their commits, and an override
/// can put the index's release back.
#[test]
fn the_2025_10_1_lock_plans_two_git_sources() {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/authentik/2025.10.1/uv.lock");
    let plan = plan_json(&lock, &[]);
    for (name, commit) in [
        (
            "djangorestframework",
            "896722bab969fabc74a08b827da59409cf9f1a4e",
        ),
        ("opencontainers", "ceb4fcc090851717a3069d78e85ceb1e86c2740c"),
    ] {
        let distribution = planned(&plan, name);
        assert_eq!(distribution["action"], "build", "{name}");
        assert_eq!(distribution["build"], "git", "{name}");
        assert!(
            distribution["reason"]
                .as_str()
                .unwrap()
                .contains(&commit[..12]),
            "{name}: {distribution}"
        );
    }
    // Overridden back to an index release (its files come from PyPI, skipped without it).
    let output = akpkg()
        .args(["plan", "--format", "json", "--python-version", "3.13"])
        .args([
            "--platform",
            "manylinux_2_36_x86_64",
            "--override",
            "djangorestframework===3.16.0",
        ])
        .arg("--lock")
        .arg(&lock)
        .output()
        .unwrap();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("no index lists"), "{stderr}");
        return;
    }
    let overridden: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let drf = planned(&overridden, "djangorestframework");
    assert_eq!(drf["action"], "wheel");
    assert!(
        drf["reason"]
            .as_str()
            .unwrap()
            .starts_with("override: version 3.16.0 from the index")
    );
}

/// Credentials in a lock's URLs never reach `plan --format json`.
#[test]
fn json_plans_redact_url_credentials() {
    let directory = tempfile::tempdir().unwrap();
    let requirements = write(
        directory.path(),
        "requirements.txt",
        &format!(
            "six @ https://deploy:s3cret@files.example/six-1.17.0-py2.py3-none-any.whl --hash=sha256:{}\n",
            "47".repeat(32)
        ),
    );
    let output = stdout_of(
        akpkg()
            .args([
                "plan",
                "--format",
                "json",
                "--python-version",
                "3.13",
                "--platform",
                "manylinux_2_17_x86_64",
                "--lock",
            ])
            .arg(&requirements),
    );
    assert!(!output.contains("s3cret"), "{output}");
    assert!(
        output.contains("https://***@files.example/six-1.17.0-py2.py3-none-any.whl"),
        "{output}"
    );
}

/// A version asked for with --python is the user's flag: the message says so, not that the
/// lock's requires-python failed.
#[test]
fn a_missing_requested_version_is_named_as_the_flag() {
    let error = common::failure_of(
        akpkg()
            .args(["plan", "--python", "3.99", "--lock"])
            .arg(common::authentik_lock()),
    );
    let first = error.lines().next().unwrap();
    insta::assert_snapshot!(first, @"error: no Python 3.99 found for --python 3.99; install it, or pass one with --python PATH. Tried:");
}
