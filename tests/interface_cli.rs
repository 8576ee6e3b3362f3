//! The command line itself: help headings, completions, the man page, `akpkg doctor`.

mod common;

use common::{akpkg, stdout_of};

#[test]
fn help_groups_the_options_and_completions_and_a_man_page_come_from_it() {
    let help = stdout_of(akpkg().args(["assemble", "--help"]));
    for heading in [
        "Options:",
        "Source and recipe:",
        "Interpreter:",
        "Building:",
        "Downloads and the network:",
        "Cache:",
        "Layer and image:",
        "Global options:",
        "Limits on untrusted input:",
    ] {
        assert!(help.contains(heading), "{heading}: {help}");
    }
    let global = help.find("Global options:").unwrap();
    for flag in ["--verbose", "--quiet", "--color <WHEN>"] {
        assert!(help[global..].contains(flag), "{flag}: {help}");
    }
    let bash = stdout_of(akpkg().args(["completions", "bash"]));
    assert!(
        bash.contains("_akpkg()") && bash.contains("assemble"),
        "{bash}"
    );
    let zsh = stdout_of(akpkg().args(["completions", "zsh"]));
    assert!(zsh.starts_with("#compdef akpkg"), "{zsh}");
    let man = stdout_of(akpkg().arg("man"));
    assert!(man.starts_with(".ie") || man.contains(".TH akpkg"), "{man}");
    assert!(man.contains("assemble"), "{man}");
}

#[test]
fn doctor_reports_everything_missing_at_once_with_the_install_lines() {
    // The interpreter as this machine has it.
    let report = akpkg()
        .args(["doctor", "--json", "--python", "3.14"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let interpreter = report["checks"][0]["found"].as_str().unwrap();
    let python = interpreter.split(" (").next().unwrap();

    // Without anything on PATH: every tool and library is missing, all reported together.
    let empty = tempfile::tempdir().unwrap();
    let output = akpkg()
        .env("PATH", empty.path())
        .args(["doctor", "--python", python])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout).replace(interpreter, "[PYTHON]");
    insta::assert_snapshot!(text, @r"
    what assembling authentik 2026.2.2 needs on this machine:
      ok      CPython 3.14 (for building and running the prefix): [PYTHON]
      missing git (for opencontainers): not found
      missing a C compiler (cc) (for psycopg-c, gssapi, lxml, xmlsec): not found
      missing pkg-config (for psycopg-c, gssapi, lxml, xmlsec): not found
      missing libpq (pg_config) (for psycopg-c): not found
      missing krb5 (krb5-config) (for gssapi): not found
      missing libxml2 (for lxml): not found
      missing libxslt (for lxml): not found
      missing zlib (for lxml): not found
      missing xmlsec1 (for xmlsec): not found
      missing libltdl (ltdl.h) (for xmlsec): not found
      missing Go 1.25.5 or newer, with a C compiler for cgo (for the Go server, bin/authentik; `akpkg assemble --no-server` leaves it out): not found
              the server needs the go command, and `go` cannot be run (No such file or directory (os error 2)). Install Go 1.25.5 or newer and put it on PATH, or give its path with --go
      missing patchelf (for the extension modules built here, whose RUNPATH entries outside the prefix are dropped): not found
      missing a Java runtime (java) (for the API client generators of the web UI and the Go server; `akpkg assemble --api-client locked --go-api-client locked` leaves them out): not found
    install what is missing:
      Debian/Ubuntu: apt-get install -y git build-essential pkg-config libpq-dev libkrb5-dev libxml2-dev libxslt1-dev zlib1g-dev libxmlsec1-dev libltdl-dev patchelf default-jre-headless
      Fedora:        dnf install -y git gcc pkgconf-pkg-config libpq-devel krb5-devel libxml2-devel libxslt-devel zlib-devel xmlsec1-devel libtool-ltdl-devel patchelf java-17-openjdk-headless
    ");
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("requirements missing"), "{error}");

    // assemble's pre-flight says the same before it fetches anything.
    let cache = empty.path().join("cache");
    let output = akpkg()
        .env("PATH", empty.path())
        .args(["assemble", "--prefix"])
        .arg(empty.path().join("authentik"))
        .args(["--python", python, "--cache-dir"])
        .arg(&cache)
        .output()
        .unwrap();
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.starts_with("error: this machine cannot assemble authentik 2026.2.2 yet:")
            && error.contains(
                "Debian/Ubuntu: apt-get install -y git build-essential pkg-config libpq-dev"
            ),
        "{error}"
    );
    assert!(!cache.join("artifacts-v1").exists(), "nothing was fetched");
}

/// `akpkg layer` labels an image from the prefix's manifest: a directory akpkg did not assemble
/// (no manifest) gets no labels from it, and a manifest that is there but unreadable is an
/// error naming it, never a silently unlabelled image.
#[test]
fn layer_reads_the_manifest_typed_and_refuses_a_broken_one() {
    let directory = tempfile::tempdir().unwrap();
    let prefix = directory.path().join("prefix");
    fs_err::create_dir_all(&prefix).unwrap();
    fs_err::write(prefix.join("README"), "plain\n").unwrap();
    let layer = |name: &str| {
        let mut command = akpkg();
        command
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["layer", "--prefix"])
            .arg(&prefix)
            .arg("--output")
            .arg(directory.path().join(format!("{name}.tar")))
            .arg("--oci")
            .arg(directory.path().join(name));
        command
    };
    let config_labels = |name: &str| {
        let layout = directory.path().join(name);
        let index: serde_json::Value =
            serde_json::from_slice(&fs_err::read(layout.join("index.json")).unwrap()).unwrap();
        let blob = |digest: &str| {
            let hex = digest.trim_start_matches("sha256:");
            serde_json::from_slice::<serde_json::Value>(
                &fs_err::read(layout.join("blobs/sha256").join(hex)).unwrap(),
            )
            .unwrap()
        };
        let manifest = blob(index["manifests"][0]["digest"].as_str().unwrap());
        blob(manifest["config"]["digest"].as_str().unwrap())["config"]["Labels"].clone()
    };
    layer("plain").assert().success();
    let labels = config_labels("plain");
    assert!(labels.get("dev.akpkg.version").is_some(), "{labels}");
    assert!(labels.get("dev.akpkg.source-tree").is_none(), "{labels}");

    fs_err::write(
        prefix.join("akpkg-manifest.json"),
        r#"{"recipe": "app", "source": {"commit": "c0ffee", "recipe-tree": "t", "tree": "t", "verified": true}, "native": {"debian-packages": ["libpq5", "zlib1g"]}}"#,
    )
    .unwrap();
    layer("labelled").assert().success();
    let labels = config_labels("labelled");
    assert_eq!(labels["org.opencontainers.image.title"], "app", "{labels}");
    assert_eq!(
        labels["org.opencontainers.image.revision"], "c0ffee",
        "{labels}"
    );
    assert_eq!(labels["dev.akpkg.source-tree"], "t", "{labels}");
    assert_eq!(
        labels["dev.akpkg.debian-packages"], "libpq5 zlib1g",
        "{labels}"
    );

    fs_err::write(prefix.join("akpkg-manifest.json"), "{ not json").unwrap();
    let output = layer("broken").output().unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("akpkg-manifest.json"), "{message}");
}
