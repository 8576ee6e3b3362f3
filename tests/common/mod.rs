//! Helpers shared by the CLI tests: the akpkg command, and wheels built from scratch.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod hostile;
pub mod registry;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};

use assert_cmd::Command;
use base64::Engine;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

pub fn akpkg() -> Command {
    let mut command = Command::cargo_bin("akpkg").unwrap();
    // Keep the user's environment from changing what the tests read.
    command.env_remove("RUST_LOG").env_remove("AKPKG_CACHE_DIR");
    command
}

/// Record that the calling test skips (part of) its work, and why: on stderr, and as a line in
/// the file `$AKPKG_SKIP_LOG` names, which `.ci/run` counts and prints after the tests, so a
/// skip never passes unseen.
#[allow(clippy::print_stderr)] // The skip's one visible line, beside the test's own output.
pub fn skip(test: &str, reason: &str) {
    let line = format!(
        "skipped: {test}: {}",
        reason.lines().last().unwrap_or(reason)
    );
    eprintln!("{line}");
    if let Some(log) = std::env::var_os("AKPKG_SKIP_LOG") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        writeln!(file, "{line}").unwrap();
    }
}

/// Whether `output` failed because PyPI (or the network to it) could not be reached.
pub fn pypi_unreachable(output: &std::process::Output) -> bool {
    let stderr = String::from_utf8_lossy(&output.stderr);
    !output.status.success()
        && ["no index lists", "failed after", "request failed"]
            .iter()
            .any(|symptom| stderr.contains(symptom))
}

/// The stderr of a command that needs PyPI: returns from the calling test, as skipped, when
/// PyPI could not be reached, and otherwise asserts that the command succeeded.
#[macro_export]
macro_rules! stderr_or_skip_without_pypi {
    ($output:expr) => {{
        let output: &std::process::Output = &$output;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if $crate::common::pypi_unreachable(output) {
            $crate::common::skip(module_path!(), &format!("PyPI is not reachable: {stderr}"));
            return;
        }
        assert!(output.status.success(), "{stderr}");
        stderr
    }};
}

pub fn stdout_of(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "akpkg failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// authentik 2025.12.4's lock as laid out in ../shared (read there, never copied).
pub fn authentik_lock() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/authentik/2025.12.4/uv.lock")
}

/// `akpkg plan --format FORMAT` of `lock` for CPython 3.13 on manylinux_2_36_x86_64
/// (described, so no interpreter is needed), with extra arguments.
pub fn plan_output(lock: &Path, format: &str, extra: &[&str]) -> String {
    stdout_of(
        akpkg()
            .args(["plan", "--format", format, "--python-version", "3.13"])
            .args(["--platform", "manylinux_2_36_x86_64"])
            .args(extra)
            .arg("--lock")
            .arg(lock),
    )
}

/// [`plan_output`] as JSON.
pub fn plan_json(lock: &Path, extra: &[&str]) -> serde_json::Value {
    serde_json::from_str(&plan_output(lock, "json", extra)).unwrap()
}

/// One distribution of a JSON plan, by name.
pub fn planned<'a>(plan: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    plan["distributions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|distribution| distribution["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not in the plan"))
}

/// stderr of a command that must fail with exit code 1.
pub fn failure_of(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stderr).unwrap()
}

fn record_hash(content: &[u8]) -> String {
    format!(
        "sha256={}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(content))
    )
}

/// A wheel assembled entry by entry, with a correct RECORD unless told otherwise.
pub struct WheelBuilder {
    name: String,
    version: String,
    tag: String,
    wheel_version: String,
    root_is_purelib: bool,
    files: Vec<(String, Vec<u8>, u32)>,
    /// Entries written into the zip but not into RECORD.
    unlisted: Vec<(String, Vec<u8>)>,
    symlinks: Vec<(String, String)>,
    /// (path, hash) rows that replace a file's correct RECORD row.
    record_overrides: Vec<(String, String)>,
}

impl WheelBuilder {
    pub fn new(name: &str, version: &str) -> WheelBuilder {
        WheelBuilder {
            name: name.to_string(),
            version: version.to_string(),
            tag: "py3-none-any".to_string(),
            wheel_version: "1.0".to_string(),
            root_is_purelib: true,
            files: Vec::new(),
            unlisted: Vec::new(),
            symlinks: Vec::new(),
            record_overrides: Vec::new(),
        }
    }

    pub fn tag(mut self, tag: &str) -> Self {
        self.tag = tag.to_string();
        self
    }

    pub fn wheel_version(mut self, version: &str) -> Self {
        self.wheel_version = version.to_string();
        self
    }

    pub fn platlib(mut self) -> Self {
        self.root_is_purelib = false;
        self
    }

    pub fn file(mut self, path: &str, content: &str) -> Self {
        self.files
            .push((path.to_string(), content.as_bytes().to_vec(), 0o644));
        self
    }

    pub fn executable(mut self, path: &str, content: &str) -> Self {
        self.files
            .push((path.to_string(), content.as_bytes().to_vec(), 0o755));
        self
    }

    /// `<dist>.data/<key>/<path>`.
    pub fn data(self, key: &str, path: &str, content: &str) -> Self {
        let data_dir = format!("{}.data", self.dist_stem());
        self.file(&format!("{data_dir}/{key}/{path}"), content)
    }

    pub fn entry_points(self, text: &str) -> Self {
        let path = format!("{}.dist-info/entry_points.txt", self.dist_stem());
        self.file(&path, text)
    }

    pub fn unlisted(mut self, path: &str, content: &str) -> Self {
        self.unlisted
            .push((path.to_string(), content.as_bytes().to_vec()));
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.symlinks.push((path.to_string(), target.to_string()));
        self
    }

    pub fn record_hash_for(mut self, path: &str, hash: &str) -> Self {
        self.record_overrides
            .push((path.to_string(), hash.to_string()));
        self
    }

    fn dist_stem(&self) -> String {
        format!("{}-{}", self.name.replace('-', "_"), self.version)
    }

    pub fn filename(&self) -> String {
        format!("{}-{}.whl", self.dist_stem(), self.tag)
    }

    /// Write the wheel into `directory`; returns its path.
    pub fn build(&self, directory: &Path) -> PathBuf {
        let dist_info = format!("{}.dist-info", self.dist_stem());
        let mut files = self.files.clone();
        files.push((
            format!("{dist_info}/METADATA"),
            format!(
                "Metadata-Version: 2.1\nName: {}\nVersion: {}\n",
                self.name, self.version
            )
            .into_bytes(),
            0o644,
        ));
        files.push((
            format!("{dist_info}/WHEEL"),
            format!(
                "Wheel-Version: {}\nGenerator: akpkg-tests\nRoot-Is-Purelib: {}\nTag: {}\n",
                self.wheel_version, self.root_is_purelib, self.tag
            )
            .into_bytes(),
            0o644,
        ));
        let mut record = String::new();
        for (path, content, _) in &files {
            let hash = self
                .record_overrides
                .iter()
                .find(|(overridden, _)| overridden == path)
                .map_or_else(|| record_hash(content), |(_, hash)| hash.clone());
            record.push_str(&format!("{path},{hash},{}\n", content.len()));
        }
        record.push_str(&format!("{dist_info}/RECORD,,\n"));
        files.push((format!("{dist_info}/RECORD"), record.into_bytes(), 0o644));

        let path = directory.join(self.filename());
        let mut writer = zip::ZipWriter::new(fs_err::File::create(&path).unwrap());
        let unlisted = self
            .unlisted
            .iter()
            .map(|(name, content)| (name.clone(), content.clone(), 0o644));
        files.extend(unlisted);
        for (name, content, mode) in &files {
            let options = SimpleFileOptions::default().unix_permissions(*mode);
            writer.start_file(name.as_str(), options).unwrap();
            writer.write_all(content).unwrap();
        }
        for (name, target) in &self.symlinks {
            writer
                .add_symlink(name.as_str(), target.as_str(), SimpleFileOptions::default())
                .unwrap();
        }
        writer.finish().unwrap();
        path
    }
}

/// Rename every occurrence of `from` in a zip's bytes to `to` (same length), which is how a
/// test makes an archive with a duplicate entry: zip writers refuse to.
pub fn rename_entry(wheel: &Path, from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let bytes = fs_err::read(wheel).unwrap();
    let mut renamed = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index..].starts_with(from.as_bytes()) {
            renamed.extend_from_slice(to.as_bytes());
            index += from.len();
        } else {
            renamed.push(bytes[index]);
            index += 1;
        }
    }
    fs_err::write(wheel, renamed).unwrap();
}

/// `python3 -m http.server` on a free loopback port, stopped when dropped.
pub struct StaticServer {
    child: Child,
    pub base: String,
}

impl StaticServer {
    pub fn serve(directory: &Path) -> StaticServer {
        let mut child = Process::new("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(directory)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .split(" port ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap();
        StaticServer {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Point every proxy variable at a closed port, so any network access would fail.
pub fn without_network(command: &mut assert_cmd::Command) -> &mut assert_cmd::Command {
    for variable in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        command.env(variable, "http://127.0.0.1:9");
    }
    command.env_remove("NO_PROXY").env_remove("no_proxy")
}

/// Write the release's listing of `source` to `path`, as `git ls-tree -r` prints it (a
/// recipe's `files`: a mismatch names the file).
pub fn write_file_listing(source: &Path, path: &Path) {
    let listing: String = akpkg::fetch::file_ids(source)
        .unwrap()
        .iter()
        .map(|(path, object)| format!("{object}\t{path}\n"))
        .collect();
    fs_err::write(path, listing).unwrap();
}

/// Run git in `directory` with a fixed identity; its trimmed stdout.
pub fn git(directory: &Path, arguments: &[&str]) -> String {
    let output = Process::new("git")
        .arg("-C")
        .arg(directory)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(arguments)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {arguments:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// The fixture monorepo's uv.lock (tests/fixtures/monorepo), written at test time: its own
/// workspace entries, plus asgiref's and sqlparse's entries as authentik 2025.12.4's lock in
/// ../shared pins them (read there, never copied into the repository).
pub fn fixture_uv_lock() -> String {
    let upstream = fs_err::read_to_string(authentik_lock()).unwrap();
    let mut text = FIXTURE_WORKSPACE_LOCK.to_string();
    for name in ["asgiref", "sqlparse"] {
        let start = upstream
            .find(&format!("[[package]]\nname = \"{name}\"\n"))
            .unwrap_or_else(|| panic!("{name} is not in authentik's lock"));
        let end = upstream[start + 1..]
            .find("\n[[package]]")
            .map_or(upstream.len(), |end| start + 1 + end);
        text.push('\n');
        text.push_str(upstream[start..end].trim_end());
        text.push('\n');
    }
    text
}

/// A copy of the fixture monorepo in `directory/source`, with its uv.lock.
pub fn fixture_source(directory: &Path) -> PathBuf {
    let source = directory.join("source");
    fs_err::create_dir_all(&source).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/monorepo");
    akpkg::archive::copy_tree(&fixture, &source, &[]).unwrap();
    fs_err::write(source.join("uv.lock"), fixture_uv_lock()).unwrap();
    source
}

const FIXTURE_WORKSPACE_LOCK: &str = include_str!("../fixtures/locks/fixture-workspace.uv.lock");

/// A tarball shaped as the npm registry serves one: each `(path, content, mode)` under
/// `package/`, gzip-compressed, in the order given.
pub fn npm_package(path: &Path, entries: &[(String, Vec<u8>, u32)]) -> PathBuf {
    let gzip = flate2::write::GzEncoder::new(
        fs_err::File::create(path).unwrap(),
        flate2::Compression::fast(),
    );
    let mut archive = tar::Builder::new(gzip);
    for (file, content, mode) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(*mode);
        header.set_cksum();
        archive
            .append_data(&mut header, format!("package/{file}"), content.as_slice())
            .unwrap();
    }
    archive.into_inner().unwrap().finish().unwrap();
    path.to_path_buf()
}

/// The sha512 integrity of a file, as a package-lock writes it.
pub fn npm_integrity(path: &Path) -> String {
    akpkg::identity::NpmIntegrity::of_bytes(&fs_err::read(path).unwrap()).to_string()
}
