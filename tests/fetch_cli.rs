//! `akpkg fetch` and `akpkg cache` end to end: a static HTTP server on 127.0.0.1 over files the
//! test writes, offline runs with the network pointed at a closed port, and (when reachable) a
//! few real wheels from PyPI.

// This whole file is test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};

use common::{
    StaticServer, akpkg, authentik_lock, failure_of, plan_json, planned, stdout_of, without_network,
};

/// Serve `directory/www`, whose `files/` holds the wheel and sdist that `write_lock` names.
fn serve_files(directory: &Path, wheel: &[u8], sdist: &[u8]) -> (StaticServer, PathBuf) {
    let files = directory.join("www/files");
    fs_err::create_dir_all(&files).unwrap();
    fs_err::write(files.join("wheel_only-1.0-py3-none-any.whl"), wheel).unwrap();
    fs_err::write(files.join("source_only-2.0.tar.gz"), sdist).unwrap();
    (StaticServer::serve(&directory.join("www")), files)
}

fn sha256(content: &[u8]) -> String {
    akpkg::digest::sha256_hex(content)
}

/// A lock whose `wheel` package has one wheel and whose `source` package has only an sdist,
/// both under `base`.
fn write_lock(directory: &Path, base: &str, wheel: &[u8], sdist: &[u8]) -> PathBuf {
    let lock = format!(
        r#"version = 1
revision = 3
requires-python = ">=3.12"

[[package]]
name = "app"
version = "1.0"
source = {{ virtual = "." }}
dependencies = [{{ name = "wheel-only" }}, {{ name = "source-only" }}]

[[package]]
name = "wheel-only"
version = "1.0"
source = {{ registry = "{base}/simple" }}
wheels = [{{ url = "{base}/files/wheel_only-1.0-py3-none-any.whl", hash = "sha256:{}", size = {} }}]

[[package]]
name = "source-only"
version = "2.0"
source = {{ registry = "{base}/simple" }}
sdist = {{ url = "{base}/files/source_only-2.0.tar.gz", hash = "sha256:{}", size = {} }}
"#,
        sha256(wheel),
        wheel.len(),
        sha256(sdist),
        sdist.len()
    );
    let path = directory.join("uv.lock");
    fs_err::write(&path, lock).unwrap();
    path
}

fn fetch(lock: &Path, cache: &Path, extra: &[&str]) -> assert_cmd::Command {
    let mut command = akpkg();
    command
        .args([
            "fetch",
            "--python-version",
            "3.13",
            "--platform",
            "manylinux_2_17_x86_64",
            "--lock",
        ])
        .arg(lock)
        .arg("--cache-dir")
        .arg(cache)
        .args(extra);
    command
}

#[test]
fn fetches_from_a_local_server_then_works_offline() {
    let directory = tempfile::tempdir().unwrap();
    let (wheel, sdist) = (b"wheel bytes".to_vec(), b"sdist bytes".to_vec());
    let (server, _) = serve_files(directory.path(), &wheel, &sdist);
    let lock = write_lock(directory.path(), &server.base, &wheel, &sdist);
    let cache = directory.path().join("cache");

    let summary = stdout_of(&mut fetch(&lock, &cache, &[]));
    assert!(
        summary.starts_with("2 artifacts in ") && summary.contains("(2 downloaded"),
        "{summary}"
    );
    assert_eq!(
        fs_err::read(cache.join("artifacts-v1/sha256").join(sha256(&sdist))).unwrap(),
        sdist
    );
    drop(server);

    // Offline, with the network unusable, the cache is enough.
    let summary = stdout_of(without_network(&mut fetch(&lock, &cache, &["--offline"])));
    assert!(summary.contains("(0 downloaded"), "{summary}");

    // An empty cache offline lists everything missing at once.
    let error = failure_of(without_network(&mut fetch(
        &lock,
        &directory.path().join("empty"),
        &["--offline"],
    )));
    insta::assert_snapshot!(error, @"
    error: 2 artifacts are not in the cache and --offline forbids downloading them:
      source-only 2.0 (source_only-2.0.tar.gz)
      wheel-only 1.0 (wheel_only-1.0-py3-none-any.whl)
    ");

    // cache verify finds the two good files; a corrupted one is removed and named.
    let verified = stdout_of(akpkg().args(["cache", "verify", "--cache-dir"]).arg(&cache));
    assert!(
        verified.starts_with("checked 2 artifacts") && verified.contains(": 0 corrupt"),
        "{verified}"
    );
    fs_err::write(
        cache.join("artifacts-v1/sha256").join(sha256(&wheel)),
        b"rot",
    )
    .unwrap();
    let verified = stdout_of(akpkg().args(["cache", "verify", "--cache-dir"]).arg(&cache));
    assert!(
        verified.contains(": 1 corrupt") && verified.contains(&sha256(&wheel)),
        "{verified}"
    );
    let cleaned = stdout_of(akpkg().args(["cache", "clean", "--cache-dir"]).arg(&cache));
    assert!(
        cleaned.starts_with("removed ") && !cache.exists(),
        "{cleaned}"
    );
}

#[test]
fn mirrors_serve_what_the_lock_names_elsewhere() {
    let directory = tempfile::tempdir().unwrap();
    let (wheel, sdist) = (b"w".to_vec(), b"s".to_vec());
    let (server, files) = serve_files(directory.path(), &wheel, &sdist);
    // The lock names a host that does not exist; the mirror maps it to the local server.
    let lock = write_lock(
        directory.path(),
        "https://files.example.invalid",
        &wheel,
        &sdist,
    );
    let mirror = format!("--mirror=https://files.example.invalid/={}/", server.base);
    let summary = stdout_of(&mut fetch(
        &lock,
        &directory.path().join("cache"),
        &[&mirror],
    ));
    assert!(summary.contains("(2 downloaded"), "{summary}");

    // Into an empty cache, so the file is downloaded again.
    let refused = || {
        failure_of(&mut fetch(
            &lock,
            &directory.path().join("other"),
            &[&mirror],
        ))
    };
    // A larger file than the lock's size is cut off at that size.
    fs_err::write(files.join("source_only-2.0.tar.gz"), b"not s").unwrap();
    let error = refused();
    assert!(error.contains("sent more than 1 bytes"), "{error}");

    // A wrong file of the right size is refused, naming the package and both hashes.
    fs_err::write(files.join("source_only-2.0.tar.gz"), b"x").unwrap();
    let error = refused();
    let error = error.replace(&server.base, "http://127.0.0.1:PORT");
    assert!(error.contains("`source-only` 2.0: http://127.0.0.1:PORT/files/source_only-2.0.tar.gz has the wrong content"), "{error}");
    assert!(
        error.contains(&format!("the lock expects {}", sha256(&sdist))),
        "{error}"
    );
}

#[test]
fn find_links_files_are_taken_by_name_and_verified() {
    let directory = tempfile::tempdir().unwrap();
    let links = directory.path().join("links");
    fs_err::create_dir_all(&links).unwrap();
    let (wheel, sdist) = (b"linked wheel".to_vec(), b"linked sdist".to_vec());
    fs_err::write(links.join("wheel_only-1.0-py3-none-any.whl"), &wheel).unwrap();
    fs_err::write(links.join("source_only-2.0.tar.gz"), &sdist).unwrap();
    // The lock's host is closed: everything must come from the directory.
    let lock = write_lock(directory.path(), "http://127.0.0.1:9", &wheel, &sdist);
    let find_links = format!("--find-links={}", links.display());
    let summary = stdout_of(without_network(&mut fetch(
        &lock,
        &directory.path().join("cache"),
        &[&find_links],
    )));
    assert!(summary.contains("(0 downloaded"), "{summary}");

    // Same name, other bytes: refused with the file named, never used.
    fs_err::write(links.join("source_only-2.0.tar.gz"), b"swapped").unwrap();
    let error = failure_of(without_network(&mut fetch(
        &lock,
        &directory.path().join("other"),
        &[&find_links],
    )));
    let expected = format!(
        "error: `source-only` 2.0: {} has the wrong content",
        links.join("source_only-2.0.tar.gz").display()
    );
    assert!(error.starts_with(&expected), "{error}");
}

/// A static PEP 503 tree (what any HTTP server over a directory serves) stands in for the lock's
/// URLs: files are found by their sha256 on the project pages.
#[test]
fn a_static_simple_index_serves_the_files() {
    let directory = tempfile::tempdir().unwrap();
    let (wheel, sdist) = (b"indexed wheel".to_vec(), b"indexed sdist".to_vec());
    let (server, _) = serve_files(directory.path(), &wheel, &sdist);
    for (project, file, content) in [
        ("wheel-only", "wheel_only-1.0-py3-none-any.whl", &wheel),
        ("source-only", "source_only-2.0.tar.gz", &sdist),
    ] {
        let page = directory.path().join("www/simple").join(project);
        fs_err::create_dir_all(&page).unwrap();
        fs_err::write(
            page.join("index.html"),
            format!("<!DOCTYPE html><html><body><a href=\"../../files/{file}#sha256={}\">{file}</a></body></html>", sha256(content)),
        )
        .unwrap();
    }
    // The lock's own URLs point at a closed port: only the index can supply the files.
    let lock = write_lock(directory.path(), "http://127.0.0.1:9", &wheel, &sdist);
    let index = format!("--index-url={}/simple", server.base);
    let summary = stdout_of(&mut fetch(
        &lock,
        &directory.path().join("cache"),
        &[&index, "--retries=0"],
    ));
    assert!(summary.contains("(2 downloaded"), "{summary}");
}

/// requirements.txt lines that pin only hashes: the index lists the files, the target's tags
/// choose the wheel among those with a pinned hash, and an sdist is the fallback.
#[test]
fn hash_only_requirements_are_found_on_the_index() {
    let directory = tempfile::tempdir().unwrap();
    let www = directory.path().join("www");
    let files = www.join("files");
    fs_err::create_dir_all(&files).unwrap();
    let mut links = String::new();
    let mut pinned = Vec::new();
    for (name, content) in [
        ("pkg-1.0-py3-none-any.whl", b"any wheel".as_slice()),
        (
            "pkg-1.0-cp313-cp313-manylinux_2_17_x86_64.whl",
            b"native wheel",
        ),
        ("pkg-1.0-cp313-cp313-win_amd64.whl", b"windows wheel"),
        ("pkg-1.0.tar.gz", b"sdist"),
        ("pkg-1.1-py3-none-any.whl", b"newer, not pinned"),
    ] {
        fs_err::write(files.join(name), content).unwrap();
        links.push_str(&format!(
            "<a href=\"../../files/{name}#sha256={}\">{name}</a>\n",
            sha256(content)
        ));
        if !name.starts_with("pkg-1.1") {
            pinned.push(format!("--hash=sha256:{}", sha256(content)));
        }
    }
    fs_err::create_dir_all(www.join("simple/pkg")).unwrap();
    fs_err::write(www.join("simple/pkg/index.html"), links).unwrap();
    let server = StaticServer::serve(&www);
    let requirements = directory.path().join("requirements.txt");
    fs_err::write(&requirements, format!("pkg==1.0 {}\n", pinned.join(" "))).unwrap();
    let cache = directory.path().join("cache");
    let index = format!("--index-url={}/simple", server.base);
    stdout_of(&mut fetch(&requirements, &cache, &[&index, "--retries=0"]));
    // The native wheel ranks above the pure one on manylinux_2_17_x86_64; nothing else came.
    let stored: Vec<String> = fs_err::read_dir(cache.join("artifacts-v1/sha256"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(stored, [sha256(b"native wheel")]);

    // Only the sdist pinned: the sdist.
    fs_err::write(
        &requirements,
        format!("pkg==1.0 --hash=sha256:{}\n", sha256(b"sdist")),
    )
    .unwrap();
    stdout_of(&mut fetch(&requirements, &cache, &[&index, "--retries=0"]));
    assert!(
        cache
            .join("artifacts-v1/sha256")
            .join(sha256(b"sdist"))
            .is_file()
    );
    // A hash the index does not have: a clear error.
    fs_err::write(
        &requirements,
        format!("pkg==1.0 --hash=sha256:{}\n", "0".repeat(64)),
    )
    .unwrap();
    let error = failure_of(&mut fetch(&requirements, &cache, &[&index, "--retries=0"]));
    assert!(
        error.contains(
            "`pkg` 1.0: none of the 1 pinned hashes names a wheel for this target or an sdist"
        ),
        "{error}"
    );
}

/// Two processes filling one cache at once both succeed, and the cache stays consistent.
#[test]
fn two_fetches_share_one_cache() {
    let directory = tempfile::tempdir().unwrap();
    let (wheel, sdist) = (vec![7u8; 3_000_000], vec![9u8; 2_000_000]);
    let (server, _) = serve_files(directory.path(), &wheel, &sdist);
    let lock = write_lock(directory.path(), &server.base, &wheel, &sdist);
    let cache = directory.path().join("cache");
    let spawn = || {
        Process::new(env!("CARGO_BIN_EXE_akpkg"))
            .args([
                "fetch",
                "--python-version",
                "3.13",
                "--platform",
                "manylinux_2_17_x86_64",
                "--lock",
            ])
            .arg(&lock)
            .arg("--cache-dir")
            .arg(&cache)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    for child in [first, second] {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let verified = stdout_of(akpkg().args(["cache", "verify", "--cache-dir"]).arg(&cache));
    assert!(
        verified.starts_with("checked 2 artifacts") && verified.contains(": 0 corrupt"),
        "{verified}"
    );
}

/// A git source is fetched at its commit and reported with its tree id; offline it must be in
/// the cache already.
#[test]
fn git_sources_are_fetched_at_their_commit() {
    let directory = tempfile::tempdir().unwrap();
    let origin = directory.path().join("origin");
    fs_err::create_dir_all(&origin).unwrap();
    let git = |arguments: &[&str]| common::git(&origin, arguments);
    fs_err::write(
        origin.join("setup.py"),
        "from setuptools import setup\nsetup(name='vcs')\n",
    )
    .unwrap();
    git(&["init", "--quiet"]);
    git(&["add", "."]);
    git(&["commit", "--quiet", "-m", "one"]);
    let (commit, tree) = (
        git(&["rev-parse", "HEAD"]),
        git(&["rev-parse", "HEAD^{tree}"]),
    );
    let lock = directory.path().join("uv.lock");
    fs_err::write(
        &lock,
        format!(
            "version = 1\nrevision = 3\n\n[[package]]\nname = \"app\"\nversion = \"1\"\nsource = {{ virtual = \".\" }}\ndependencies = [{{ name = \"vcs\" }}]\n\n[[package]]\nname = \"vcs\"\nversion = \"0.1\"\nsource = {{ git = \"file://{}?rev=main#{commit}\" }}\n",
            origin.display()
        ),
    )
    .unwrap();
    let cache = directory.path().join("cache");
    let summary = stdout_of(&mut fetch(&lock, &cache, &[]));
    assert!(
        summary.contains(&format!(
            "git vcs file://{} at {commit}: tree {tree}",
            origin.display()
        )),
        "{summary}"
    );

    let error = failure_of(without_network(&mut fetch(
        &lock,
        &directory.path().join("empty"),
        &["--offline"],
    )));
    assert!(
        error.contains(&format!(
            "  vcs 0.1 (git file://{} at {commit}; give it with --git-archive vcs=PATH)",
            origin.display()
        )),
        "{error}"
    );
    // With the checkout cached, offline works.
    stdout_of(without_network(&mut fetch(&lock, &cache, &["--offline"])));

    // A bundle carries the checkout and its tree id: an empty cache takes it from there.
    let bundle = directory.path().join("bundle");
    stdout_of(fetch(&lock, &cache, &["--dest"]).arg(&bundle));
    let from_bundle = stdout_of(
        without_network(&mut fetch(
            &lock,
            &directory.path().join("from-bundle"),
            &["--offline", "--bundle"],
        ))
        .arg(&bundle),
    );
    assert!(
        from_bundle.contains(&format!("tree {tree}")),
        "{from_bundle}"
    );

    // A forge-style archive (one top-level directory) is accepted when its files hash to the
    // pinned tree, refused without a pin, and refused when they differ.
    let archive = directory.path().join("vcs.tar.gz");
    git(&[
        "archive",
        "--format=tar.gz",
        "--prefix=vcs-main/",
        "-o",
        archive.to_str().unwrap(),
        "HEAD",
    ]);
    let archive_flag = format!("vcs={}", archive.display());
    let unpinned = failure_of(without_network(&mut fetch(
        &lock,
        &directory.path().join("unpinned"),
        &["--offline", "--git-archive", &archive_flag],
    )));
    assert!(
        unpinned.contains(&format!(
            "no tree id is recorded for commit {commit}, so its files (tree "
        )) && unpinned.contains(&format!("--git-tree {commit}=TREE")),
        "{unpinned}"
    );
    let pin = format!("{commit}={tree}");
    let pinned = stdout_of(without_network(&mut fetch(
        &lock,
        &directory.path().join("pinned"),
        &[
            "--offline",
            "--git-archive",
            &archive_flag,
            "--git-tree",
            &pin,
        ],
    )));
    assert!(pinned.contains(&format!("tree {tree}")), "{pinned}");
    let wrong_pin = format!("{commit}={}", "1".repeat(40));
    let refused = failure_of(without_network(&mut fetch(
        &lock,
        &directory.path().join("wrong"),
        &[
            "--offline",
            "--git-archive",
            &archive_flag,
            "--git-tree",
            &wrong_pin,
        ],
    )));
    assert!(
        refused.contains(&format!("but commit {commit} has tree {}", "1".repeat(40))),
        "{refused}"
    );
}

/// authentik 2025.10.1's lock, reduced to the project and its two git sources
/// (djangorestframework from authentik's fork, opencontainers): both are taken from archives,
/// offline, each checked against its pinned tree. The archives are stand-ins made here: the
/// real repositories are not reachable from the test machines.
#[test]
fn two_git_sources_of_authentik_2025_10_1_come_from_archives() {
    let upstream = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/authentik/2025.10.1");
    let mut document: toml_edit::DocumentMut = fs_err::read_to_string(upstream.join("uv.lock"))
        .unwrap()
        .parse()
        .unwrap();
    let kept = ["authentik", "djangorestframework", "opencontainers"];
    document["manifest"]["members"] = toml_edit::value(toml_edit::Array::from_iter(["authentik"]));
    let packages = document["package"].as_array_of_tables_mut().unwrap();
    packages.retain(|package| kept.contains(&package["name"].as_str().unwrap()));
    let mut commits = Vec::new();
    for package in packages.iter_mut() {
        for key in ["optional-dependencies", "dev-dependencies", "metadata"] {
            package.remove(key);
        }
        if let Some(dependencies) = package
            .get_mut("dependencies")
            .and_then(|item| item.as_array_mut())
        {
            dependencies.retain(|edge| {
                let name = edge.as_inline_table().unwrap()["name"].as_str().unwrap();
                kept.contains(&name)
            });
        }
        if let Some(git) = package["source"].get("git").and_then(|url| url.as_str()) {
            let name = package["name"].as_str().unwrap().to_string();
            commits.push((name, git.rsplit_once('#').unwrap().1.to_string()));
        }
    }
    assert_eq!(commits.len(), 2, "{commits:?}");
    let directory = tempfile::tempdir().unwrap();
    let lock = directory.path().join("uv.lock");
    fs_err::write(&lock, document.to_string()).unwrap();
    fs_err::copy(
        upstream.join("pyproject.toml"),
        directory.path().join("pyproject.toml"),
    )
    .unwrap();

    let mut arguments = vec!["--offline".to_string()];
    let mut trees = Vec::new();
    for (name, commit) in &commits {
        let archive = directory.path().join(format!("{name}-archive"));
        fs_err::create_dir_all(archive.join("src")).unwrap();
        fs_err::write(archive.join("setup.py"), format!("# stand-in for {name}\n")).unwrap();
        fs_err::write(archive.join("src/__init__.py"), name.as_bytes()).unwrap();
        let tree = akpkg::fetch::tree_id(&archive).unwrap();
        arguments.extend([
            "--git-archive".to_string(),
            format!("{name}={}", archive.display()),
            "--git-tree".to_string(),
            format!("{commit}={tree}"),
        ]);
        trees.push((name.clone(), commit.clone(), tree));
    }
    let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
    let cache = directory.path().join("cache");
    let summary = stdout_of(without_network(&mut fetch(&lock, &cache, &arguments)));
    for (name, commit, tree) in &trees {
        assert!(
            summary.contains(&format!("git {name} "))
                && summary.contains(&format!("at {commit}: tree {tree}")),
            "{summary}"
        );
    }

    // Without the archives, offline, both are listed as missing.
    let error = failure_of(without_network(&mut fetch(
        &lock,
        &directory.path().join("empty"),
        &["--offline"],
    )));
    for (name, commit, _) in &trees {
        assert!(
            error.contains(&format!("  {name} "))
                && error.contains(&format!(
                    "at {commit}; give it with --git-archive {name}=PATH"
                )),
            "{error}"
        );
    }
}

/// A few small real wheels of authentik's lock, fetched from PyPI and checked by hash.
#[test]
fn fetches_real_wheels_from_pypi() {
    let plan = plan_json(&authentik_lock(), &[]);
    let directory = tempfile::tempdir().unwrap();
    let mut packages = String::new();
    let names = ["asgiref", "sqlparse", "idna"];
    for name in names {
        let artifact = &planned(&plan, name)["artifact"];
        packages.push_str(&format!(
            "[[package]]\nname = \"{name}\"\nversion = \"{}\"\nsource = {{ registry = \"https://pypi.org/simple\" }}\nwheels = [{{ url = \"{}\", hash = \"sha256:{}\", size = {} }}]\n\n",
            planned(&plan, name)["version"].as_str().unwrap(),
            artifact["url"].as_str().unwrap(),
            artifact["sha256"].as_str().unwrap(),
            artifact["size"]
        ));
    }
    let lock = directory.path().join("uv.lock");
    fs_err::write(
        &lock,
        format!("version = 1\nrevision = 3\n\n[[package]]\nname = \"app\"\nversion = \"1\"\nsource = {{ virtual = \".\" }}\ndependencies = [{}]\n\n{packages}",
            names.map(|name| format!("{{ name = \"{name}\" }}")).join(", ")),
    )
    .unwrap();
    let cache = directory.path().join("cache");
    let output = fetch(&lock, &cache, &["--retries", "1"]).output().unwrap();
    stderr_or_skip_without_pypi!(output);
    for name in names {
        let sha256 = planned(&plan, name)["artifact"]["sha256"]
            .as_str()
            .unwrap()
            .to_string();
        let stored = cache.join("artifacts-v1/sha256").join(&sha256);
        assert_eq!(
            akpkg::digest::sha256_hex_of_file(&stored).unwrap(),
            sha256,
            "{name}"
        );
    }
}

/// `cache clean` deletes only a directory akpkg marked as its cache.
#[test]
fn cache_clean_removes_only_a_marked_cache() {
    let directory = tempfile::tempdir().unwrap();
    let precious = directory.path().join("home");
    fs_err::create_dir_all(&precious).unwrap();
    fs_err::write(precious.join("notes.txt"), "mine").unwrap();
    let error = failure_of(
        akpkg()
            .args(["cache", "clean", "--cache-dir"])
            .arg(&precious),
    );
    assert!(error.contains("is not an akpkg cache"), "{error}");
    assert!(error.contains("nothing was removed"), "{error}");
    assert_eq!(
        fs_err::read_to_string(precious.join("notes.txt")).unwrap(),
        "mine"
    );

    // Another tool's cache directory tag, and a FIFO in its place: not akpkg's, refused (the
    // FIFO without hanging on it).
    let other = directory.path().join("other-cache");
    fs_err::create_dir_all(&other).unwrap();
    fs_err::write(
        other.join("CACHEDIR.TAG"),
        "Signature: 8a477f597d28d172789f06886806bc55\n# created by another tool\n",
    )
    .unwrap();
    let fifo_cache = directory.path().join("fifo-cache");
    fs_err::create_dir_all(&fifo_cache).unwrap();
    assert!(
        Process::new("mkfifo")
            .arg(fifo_cache.join("CACHEDIR.TAG"))
            .status()
            .unwrap()
            .success()
    );
    for foreign in [&other, &fifo_cache] {
        let error = failure_of(
            akpkg()
                .timeout(std::time::Duration::from_secs(30))
                .args(["cache", "clean", "--cache-dir"])
                .arg(foreign),
        );
        assert!(error.contains("is not an akpkg cache"), "{error}");
        assert!(foreign.join("CACHEDIR.TAG").exists());
    }

    // A cache akpkg used carries the marker, and is removed.
    let cache = directory.path().join("cache");
    stdout_of(akpkg().args(["cache", "verify", "--cache-dir"]).arg(&cache));
    assert!(cache.join("CACHEDIR.TAG").is_file());
    // A FIFO among the artifacts is corrupt, not a reason to hang.
    let artifacts = cache.join("artifacts-v1/sha256");
    fs_err::create_dir_all(&artifacts).unwrap();
    let fifo = artifacts.join(sha256(b"anything"));
    assert!(
        Process::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let verified = stdout_of(
        akpkg()
            .timeout(std::time::Duration::from_secs(30))
            .args(["cache", "verify", "--cache-dir"])
            .arg(&cache),
    );
    assert!(verified.contains(": 1 corrupt"), "{verified}");
    assert!(!fifo.exists());
    stdout_of(akpkg().args(["cache", "clean", "--cache-dir"]).arg(&cache));
    assert!(!cache.exists());
}

/// `package/package.json` and `package/index.js` as an npm tarball.
fn npm_tarball(directory: &Path, name: &str, version: &str) -> PathBuf {
    let path = directory.join(format!("{name}-{version}.tgz"));
    let gzip = flate2::write::GzEncoder::new(
        fs_err::File::create(&path).unwrap(),
        flate2::Compression::default(),
    );
    let mut archive = tar::Builder::new(gzip);
    for (file, content) in [
        (
            "package/package.json",
            format!("{{\"name\":\"{name}\",\"version\":\"{version}\",\"main\":\"index.js\"}}"),
        ),
        (
            "package/index.js",
            format!("module.exports = \"{name} {version}\";\n"),
        ),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        archive
            .append_data(&mut header, file, content.as_bytes())
            .unwrap();
    }
    archive.into_inner().unwrap().finish().unwrap();
    path
}

/// The web stage's groundwork, end to end (through the library: no command takes it yet):
/// a package-lock's downloads are fetched from a registry on 127.0.0.1 and checked by sha512,
/// npm's cache is filled from them, and the real `npm ci --offline` installs with every proxy
/// closed and the registry gone; a tarball whose bytes differ from the lock is refused.
#[test]
fn npm_tarballs_are_checked_and_npm_ci_installs_them_offline() {
    let directory = tempfile::tempdir().unwrap();
    let directory = directory.path();
    let registry = directory.join("registry");
    fs_err::create_dir_all(&registry).unwrap();
    let left = npm_tarball(&registry, "fixture-left", "1.0.0");
    let right = npm_tarball(&registry, "fixture-right", "2.0.0");
    let served = StaticServer::serve(&registry);
    let integrity = |path: &Path| {
        akpkg::identity::NpmIntegrity::of_bytes(&fs_err::read(path).unwrap()).to_string()
    };
    let project = directory.join("project");
    fs_err::create_dir_all(project.join("packages/own")).unwrap();
    fs_err::write(
        project.join("packages/own/package.json"),
        r#"{"name":"own","version":"0.0.0"}"#,
    )
    .unwrap();
    fs_err::write(
        project.join("package.json"),
        r#"{"name":"fixture-web","version":"1.0.0","workspaces":["packages/*"],"dependencies":{"fixture-left":"^1.0.0","fixture-right":"^2.0.0"}}"#,
    )
    .unwrap();
    let lock = |right_integrity: &str| {
        serde_json::json!({
            "name": "fixture-web", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
            "packages": {
                "": { "name": "fixture-web", "version": "1.0.0", "workspaces": ["packages/*"],
                      "dependencies": { "fixture-left": "^1.0.0", "fixture-right": "^2.0.0" } },
                "node_modules/fixture-left": { "version": "1.0.0",
                    "resolved": format!("{}/fixture-left-1.0.0.tgz", served.base),
                    "integrity": integrity(&left) },
                "node_modules/fixture-right": { "version": "2.0.0",
                    "resolved": format!("{}/fixture-right-2.0.0.tgz", served.base),
                    "integrity": right_integrity },
                "node_modules/own": { "resolved": "packages/own", "link": true },
                "packages/own": { "name": "own", "version": "0.0.0" },
            },
        })
        .to_string()
    };
    let lock_path = project.join("package-lock.json");
    fs_err::write(&lock_path, lock(&integrity(&right))).unwrap();
    let packages =
        akpkg::lock::read_npm_lock(&lock_path, &fs_err::read_to_string(&lock_path).unwrap())
            .unwrap();
    assert_eq!(
        packages.len(),
        2,
        "the link and the workspace source are not downloads"
    );

    let options =
        akpkg::fetch::FetchOptions::new(akpkg::cache::Cache::new(directory.join("cache")));
    let tarballs = akpkg::fetch::fetch_npm_tarballs(&packages, &options).unwrap();
    assert_eq!((tarballs.tarballs, tarballs.downloaded), (2, 2));
    let again = akpkg::fetch::fetch_npm_tarballs(&packages, &options).unwrap();
    assert_eq!(again.downloaded, 0);

    // A registry that serves other bytes: refused with the URL and both digests, not kept.
    let other = akpkg::identity::NpmIntegrity::of_bytes(b"other").to_string();
    let tampered_lock = directory.join("tampered-lock.json");
    fs_err::write(&tampered_lock, lock(&other)).unwrap();
    let tampered = akpkg::lock::read_npm_lock(
        &tampered_lock,
        &fs_err::read_to_string(&tampered_lock).unwrap(),
    )
    .unwrap();
    let fresh =
        akpkg::fetch::FetchOptions::new(akpkg::cache::Cache::new(directory.join("fresh-cache")));
    let error = akpkg::fetch::fetch_npm_tarballs(&tampered, &fresh)
        .unwrap_err()
        .to_string();
    assert!(error.contains("fixture-right-2.0.0.tgz"), "{error}");
    assert!(
        error.contains(&format!("the lock pins {other}, the tarball has sha512-")),
        "{error}"
    );
    // Whatever was kept is named by its own sha512: the bad bytes were not.
    for entry in fs_err::read_dir(directory.join("fresh-cache/npm-v1/sha512")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let digest = akpkg::identity::NpmIntegrity::of_bytes(&fs_err::read(&path).unwrap());
        assert_eq!(name, format!("{}.tgz", digest.hex()));
    }

    // npm installs from the cache akpkg filled, with the registry gone and proxies closed.
    drop(served);
    let npm_cache = directory.join("npm-cache");
    tarballs.fill(&packages, &npm_cache).unwrap();
    let mut command = Process::new("npm");
    command
        .args([
            "ci",
            "--offline",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--cache",
        ])
        .arg(&npm_cache)
        .current_dir(&project)
        .env("npm_config_registry", "http://127.0.0.1:9/");
    for variable in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
        command.env(variable, "http://127.0.0.1:9");
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for (name, version) in [("fixture-left", "1.0.0"), ("fixture-right", "2.0.0")] {
        assert_eq!(
            fs_err::read_to_string(project.join(format!("node_modules/{name}/index.js"))).unwrap(),
            format!("module.exports = \"{name} {version}\";\n")
        );
    }
}

/// A hostile remote cache (hand-written, on 127.0.0.1) whose blobs never end: one as fast as
/// it can under a declared terabyte, one dripping a byte every 400 ms. Each is given up on
/// within the lock's size and the stall rule (bytes per interval, not per read), in bounded
/// time and memory, and the files are downloaded from the lock's URLs instead.
#[test]
fn remote_cache_blobs_that_never_end_or_drip_are_given_up_in_bounded_time() {
    use common::hostile::{Answer, Server};
    use std::time::{Duration, Instant};
    let directory = tempfile::tempdir().unwrap();
    let (wheel, sdist) = (b"wheel bytes".to_vec(), b"sdist bytes".to_vec());
    let (server, _) = serve_files(directory.path(), &wheel, &sdist);
    let lock = write_lock(directory.path(), &server.base, &wheel, &sdist);
    let wheel_blob = format!("/blobs/sha256:{}", sha256(&wheel));
    let registry = Server::start(move |request| match request.method.as_str() {
        "GET" if request.target.ends_with(&wheel_blob) => {
            Answer::new(200).endless(64 * 1024, Duration::ZERO, 1 << 40)
        }
        "GET" if request.target.contains("/blobs/") => {
            Answer::new(200).endless(1, Duration::from_millis(400), 1 << 30)
        }
        // Everything is "there already", so nothing is uploaded to it.
        "HEAD" => Answer::new(200),
        _ => Answer::new(201),
    });
    let remote = format!("oci://127.0.0.1:{}/cache", registry.port);
    let started = Instant::now();
    let output = fetch(
        &lock,
        &directory.path().join("cache"),
        &["--remote-cache", &remote, "--stall-timeout", "2", "-v"],
    )
    .output()
    .unwrap();
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}: {stderr}");
    assert_eq!(
        stderr.matches("downloading it instead").count(),
        2,
        "{stderr}"
    );
    assert!(stderr.contains("more than 11 bytes"), "{stderr}");
    assert!(stderr.contains("stalled:"), "{stderr}");
    let peak: u64 = stderr
        .split("peak memory of akpkg itself: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|megabytes| megabytes.parse().ok())
        .unwrap_or_else(|| panic!("no peak memory in {stderr}"));
    assert!(peak < 200, "{peak} MB");
    eprintln!("gave up on both in {elapsed:?}, peak {peak} MB");
    assert!(
        stdout_of(&mut fetch(
            &lock,
            &directory.path().join("cache"),
            &["--offline"]
        ))
        .contains("(0 downloaded")
    );
}
