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

    // Bytes that do not match their digest: refused before the registry sees any of them.
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
        message.contains(&layer.display().to_string())
            && message.contains("not to the digest it is named after; nothing of it was sent"),
        "{message}"
    );

    // A registry that is not there: the connection error names the URL.
    drop(registry);
    let message = failure_of(&mut push(&oci, &format!("{address}/apps/gone:1"), &nobody));
    assert!(message.contains(&address), "{message}");
}

/// A hostile registry on 127.0.0.1 (hand-written, `common::hostile`) that sends its token
/// requests, upload locations and a redirect to another server it runs on another port, and
/// then to a name that is not loopback. The registry's credentials never reach the other
/// server (it records every request); plain HTTP to another origin is refused, naming the flag
/// that allows it; with that flag the token request goes anonymously, the upload and the
/// redirected request without `Authorization`.
#[test]
fn registry_credentials_stay_with_the_registrys_own_origin() {
    use common::hostile::{Answer, Server};
    let directory = tempfile::tempdir().unwrap();
    let oci = layout(directory.path());
    let other = Server::start(|request| {
        if request.target.starts_with("/token") {
            Answer::new(200).body(r#"{"token":"granted"}"#)
        } else if request.method == "PUT" {
            Answer::new(201)
        } else {
            Answer::new(404)
        }
    });
    let other_origin = other.origin();
    let realm = std::sync::Arc::new(std::sync::Mutex::new(format!("{other_origin}/token")));
    let realm_for_registry = realm.clone();
    let registry = Server::start(move |request| {
        let bearer =
            request.headers.get("authorization").map(String::as_str) == Some("Bearer granted");
        if !bearer {
            let realm = realm_for_registry.lock().unwrap().clone();
            return Answer::new(401).header(
                "WWW-Authenticate",
                format!(r#"Bearer realm="{realm}",service="hostile""#),
            );
        }
        match request.method.as_str() {
            "HEAD" => Answer::new(307).header(
                "Location",
                format!("{other_origin}/redirected{}", request.target),
            ),
            "POST" => Answer::new(202).header("Location", format!("{other_origin}/upload/1")),
            _ => Answer::new(201),
        }
    });
    let address = format!("127.0.0.1:{}", registry.port);
    let docker = docker_config(directory.path(), &address, "builder", "s3cret");
    let reference = format!("{address}/apps/authentik:1");
    let secret = "YnVpbGRlcjpzM2NyZXQ="; // builder:s3cret

    // Another port on loopback over plain HTTP: refused before anything is sent there.
    let message = failure_of(&mut push(&oci, &reference, &docker));
    assert!(
        message.contains("--allow-insecure-host 127.0.0.1"),
        "{message}"
    );
    assert!(other.received().is_empty(), "{:?}", other.received());

    // A token realm on a name that is not loopback: refused the same way.
    *realm.lock().unwrap() = "http://auth.invalid/token".to_string();
    let message = failure_of(&mut push(&oci, &reference, &docker));
    assert!(
        message.contains("--allow-insecure-host auth.invalid"),
        "{message}"
    );

    // Allowed: the token request carries no credential (none is configured for the other
    // origin), the redirected HEAD and the upload no Authorization.
    *realm.lock().unwrap() = format!("{}/token", other.origin());
    let pushed = json(push(&oci, &reference, &docker).args(["--allow-insecure-host", "127.0.0.1"]));
    assert!(
        pushed["digest"].as_str().unwrap().starts_with("sha256:"),
        "{pushed}"
    );
    let received = other.received();
    for kind in ["/token", "/redirected/", "/upload/1"] {
        assert!(
            received
                .iter()
                .any(|request| request.target.starts_with(kind)),
            "no {kind} request reached the other server: {received:?}"
        );
    }
    for request in &received {
        assert!(
            !request.headers.contains_key("authorization"),
            "{} {} carried Authorization",
            request.method,
            request.target
        );
        let text = format!("{request:?}");
        assert!(!text.contains(secret) && !text.contains("s3cret"), "{text}");
    }
    // The registry itself got the bearer token, never the password either: it asked for a
    // token, not for Basic.
    assert!(registry.received().iter().all(|request| {
        request.headers.get("authorization").map(String::as_str) != Some(&format!("Basic {secret}"))
    }));
}

/// `mkfifo path` (coreutils).
fn mkfifo(path: &Path) {
    std::fs::remove_file(path).ok();
    assert!(Process::new("mkfifo").arg(path).status().unwrap().success());
}

/// Layouts that are input, with a FIFO where a reader opens a file (`push`'s index.json,
/// `--oci-base`'s index.json and its manifest blob) or with a config edited after its digest
/// was taken: each refused promptly, naming the file and what is wrong with it.
#[test]
fn layouts_with_special_files_or_edited_blobs_are_refused_without_hanging() {
    let directory = tempfile::tempdir().unwrap();
    let oci = layout(directory.path());
    let nobody = directory.path().join("no-docker-config");
    std::fs::create_dir_all(&nobody).unwrap();
    let base_of = |name: &str| {
        let copy = directory.path().join(name);
        assert!(
            Process::new("cp")
                .args(["-a"])
                .arg(&oci)
                .arg(&copy)
                .status()
                .unwrap()
                .success()
        );
        copy
    };
    let layer_onto = |base: &Path| {
        let mut command = akpkg();
        command
            .timeout(std::time::Duration::from_secs(30))
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["layer", "--prefix"])
            .arg(directory.path().join("prefix"))
            .arg("--output")
            .arg(
                directory
                    .path()
                    .join(format!("on-{}.tar", base.display().to_string().len())),
            )
            .arg("--oci")
            .arg(directory.path().join("out"))
            .arg("--oci-base")
            .arg(base);
        command
    };

    let fifo_index = base_of("fifo-index");
    mkfifo(&fifo_index.join("index.json"));
    let message = failure_of(
        akpkg()
            .timeout(std::time::Duration::from_secs(30))
            .env("DOCKER_CONFIG", &nobody)
            .args(["push", "--retries", "0", "--oci"])
            .arg(&fifo_index)
            .arg("127.0.0.1:9/apps/authentik:1"),
    );
    assert!(
        message.contains("index.json") && message.contains("a FIFO"),
        "{message}"
    );
    let message = failure_of(&mut layer_onto(&fifo_index));
    assert!(
        message.contains("index.json") && message.contains("a FIFO"),
        "{message}"
    );

    // The base's manifest blob a FIFO; then its config's bytes edited.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(oci.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let fifo_blob = base_of("fifo-blob");
    mkfifo(&fifo_blob.join("blobs/sha256").join(&manifest_digest));
    let message = failure_of(&mut layer_onto(&fifo_blob));
    assert!(
        message.contains(&manifest_digest) && message.contains("a FIFO"),
        "{message}"
    );

    let edited = base_of("edited-config");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(edited.join("blobs/sha256").join(&manifest_digest)).unwrap(),
    )
    .unwrap();
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let config_path = edited.join("blobs/sha256").join(&config_digest);
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["config"]["Env"] = serde_json::json!(["LD_PRELOAD=/tmp/evil.so"]);
    std::fs::write(&config_path, config.to_string()).unwrap();
    let message = failure_of(&mut layer_onto(&edited));
    assert!(
        message.contains(&config_digest) && message.contains("not to the digest it is named after"),
        "{message}"
    );
}
