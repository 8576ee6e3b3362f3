//! `akpkg push` against a real registry: Debian's `docker-registry` (the CNCF distribution
//! registry) on 127.0.0.1, started here with its own configuration and storage, and `skopeo`
//! (Debian) pushing the same layout for comparison.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use common::registry::{Registry, docker_config};
use common::{akpkg, failure_of, stdout_of};
use sha2::{Digest, Sha256};

/// A small prefix and its OCI layout (gzip layer, as `akpkg layer --oci` writes by default).
fn layout(directory: &Path) -> PathBuf {
    let prefix = directory.join("prefix");
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    std::fs::write(
        prefix.join("bin/ak"),
        "#!/bin/sh\necho akpkg push fixture\n",
    )
    .unwrap();
    std::fs::write(prefix.join("README"), "a prefix pushed by the test\n").unwrap();
    let oci = directory.join("oci");
    akpkg()
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["layer", "--prefix"])
        .arg(&prefix)
        .arg("--output")
        .arg(directory.join("layer.tar.gz"))
        .arg("--oci")
        .arg(&oci)
        .assert()
        .success();
    oci
}

fn push(oci: &Path, reference: &str, docker_config: &Path) -> assert_cmd::Command {
    let mut command = akpkg();
    command
        .env("DOCKER_CONFIG", docker_config)
        .env("REGISTRY_AUTH_FILE", "/nonexistent/auth.json")
        .env("NETRC", "/nonexistent/netrc")
        .args(["push", "--json", "--retries", "0", "--oci"])
        .arg(oci)
        .arg(reference);
    command
}

fn json(command: &mut assert_cmd::Command) -> serde_json::Value {
    serde_json::from_str(&stdout_of(command)).unwrap()
}

fn skopeo(arguments: &[&str]) -> Vec<u8> {
    let output = Process::new("skopeo")
        .args(arguments)
        .output()
        .expect("skopeo (Debian's package) is the reference pusher");
    assert!(
        output.status.success(),
        "skopeo {arguments:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[test]
fn a_layout_pushed_by_akpkg_and_by_skopeo_gets_the_same_digest_with_credentials_from_docker_config()
{
    let directory = tempfile::tempdir().unwrap();
    let registry = Registry::start(directory.path(), Some(("builder", "s3cret")));
    let address = registry.address.clone();
    let oci = layout(directory.path());
    let reference = format!("{address}/akpkg/fixture:akpkg");

    // No credentials anywhere: refused, saying where credentials come from.
    let nobody = directory.path().join("no-docker-config");
    std::fs::create_dir_all(&nobody).unwrap();
    let message = failure_of(&mut push(&oci, &reference, &nobody));
    assert!(message.contains("refused akpkg/fixture (401)"), "{message}");
    assert!(message.contains("no credentials were found"), "{message}");
    assert!(message.contains("~/.docker/config.json"), "{message}");

    // A wrong password: refused, and never printed.
    let wrong = docker_config(directory.path(), &address, "builder", "wrong-password");
    let message = failure_of(&mut push(&oci, &reference, &wrong));
    assert!(
        message.contains("the credentials found were refused"),
        "{message}"
    );
    assert!(!message.contains("wrong-password"), "{message}");

    // The right one: every blob uploaded, then the manifest.
    let right = docker_config(directory.path(), &address, "builder", "s3cret");
    let report = json(&mut push(&oci, &reference, &right));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(oci.join("index.json")).unwrap()).unwrap();
    let layout_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(report["digest"], layout_digest.as_str(), "{report}");
    assert_eq!(report["blobs"], 2, "{report}");
    assert_eq!(report["uploaded"], 2, "{report}");
    assert!(report["bytes_uploaded"].as_u64().unwrap() > 0, "{report}");

    // Again: the registry has every blob; nothing is sent but the manifest.
    let again = json(&mut push(&oci, &reference, &right));
    assert_eq!(again["present"], 2, "{again}");
    assert_eq!(again["uploaded"], 0, "{again}");
    assert_eq!(again["digest"], layout_digest.as_str());

    // skopeo pushes the same layout to another tag: the same manifest digest.
    let credentials = "builder:s3cret";
    let skopeo_reference = format!("docker://{address}/akpkg/fixture:skopeo");
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        credentials,
        &format!("oci:{}", oci.display()),
        &skopeo_reference,
    ]);
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        credentials,
        &skopeo_reference,
    ]);
    assert_eq!(
        format!(
            "sha256:{}",
            Sha256::digest(&raw)
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect::<String>()
        ),
        layout_digest,
        "skopeo's push of the layout"
    );
    // And skopeo reads akpkg's push back, by the same digest.
    let inspected: serde_json::Value = serde_json::from_slice(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        credentials,
        &format!("docker://{reference}"),
    ]))
    .unwrap();
    assert_eq!(inspected["Digest"], layout_digest.as_str(), "{inspected}");
    assert_eq!(
        inspected["Labels"]["dev.akpkg.version"],
        env!("CARGO_PKG_VERSION")
    );

    // A pinned digest that is not the layout's is refused before anything is sent.
    let message = failure_of(&mut push(
        &oci,
        &format!("{address}/akpkg/fixture@sha256:{}", "0".repeat(64)),
        &right,
    ));
    assert!(message.contains("not the sha256:0000"), "{message}");
    drop(registry);
}

#[test]
fn blobs_are_mounted_across_repositories_and_a_damaged_layout_is_refused_with_its_path() {
    let directory = tempfile::tempdir().unwrap();
    let registry = Registry::start(directory.path(), None);
    let address = registry.address.clone();
    let oci = layout(directory.path());
    let nobody = directory.path().join("no-docker-config");
    std::fs::create_dir_all(&nobody).unwrap();

    let first = json(&mut push(&oci, &format!("{address}/base/image:1"), &nobody));
    assert_eq!(first["uploaded"], 2, "{first}");
    let mounted = json(
        push(&oci, &format!("{address}/apps/authentik:1"), &nobody)
            .args(["--mount-from", "base/image"]),
    );
    assert_eq!(mounted["mounted"], 2, "{mounted}");
    assert_eq!(mounted["uploaded"], 0, "{mounted}");
    assert_eq!(mounted["digest"], first["digest"]);
    assert!(
        registry
            .storage
            .join("docker/registry/v2/repositories/apps/authentik/_layers")
            .is_dir()
    );

    // A layer cut short in the layout: refused, naming the file, before the manifest is sent.
    let manifest_digest = first["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(oci.join("blobs/sha256").join(manifest_digest)).unwrap(),
    )
    .unwrap();
    let layer = oci.join("blobs/sha256").join(
        manifest["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    let bytes = std::fs::read(&layer).unwrap();
    std::fs::write(&layer, &bytes[..bytes.len() / 2]).unwrap();
    let message = failure_of(&mut push(
        &oci,
        &format!("{address}/apps/broken:1"),
        &nobody,
    ));
    assert!(message.contains(&layer.display().to_string()), "{message}");
    assert!(message.contains("the manifest says"), "{message}");

    // Bytes that do not match their digest: the registry refuses the upload.
    let mut tampered = bytes.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    std::fs::write(&layer, &tampered).unwrap();
    let message = failure_of(&mut push(
        &oci,
        &format!("{address}/apps/tampered:1"),
        &nobody,
    ));
    assert!(
        message.contains("DIGEST_INVALID") || message.contains("400"),
        "{message}"
    );

    // A registry that is not there: the connection error names the URL.
    drop(registry);
    let message = failure_of(&mut push(&oci, &format!("{address}/apps/gone:1"), &nobody));
    assert!(message.contains(&address), "{message}");
}
