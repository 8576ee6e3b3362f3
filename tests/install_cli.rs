//! `akpkg install` on wheels built by the tests: layout, scripts, data, launchers, RECORD,
//! relocation, and every refusal. The interpreter is the machine's CPython 3.13.

// This whole file is test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use common::{WheelBuilder, akpkg, failure_of, rename_entry, stdout_of};

const SITE: &str = "lib/python3.13/site-packages";

struct Workspace {
    directory: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        Workspace {
            directory: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.directory.path().join(relative)
    }

    fn wheels(&self) -> PathBuf {
        let directory = self.path("wheels");
        fs_err::create_dir_all(&directory).unwrap();
        directory
    }

    /// `akpkg install --python 3.13 --prefix <prefix> --cache-dir <cache> …`
    fn install(&self, prefix: &str, arguments: &[&str], wheels: &[PathBuf]) -> assert_cmd::Command {
        let mut command = akpkg();
        command
            .args(["install", "--python", "3.13", "--prefix"])
            .arg(self.path(prefix))
            .arg("--cache-dir")
            .arg(self.path("cache"))
            .args(arguments)
            .args(wheels);
        command
    }

    /// An error message with the temporary directory replaced by `[TMP]`.
    fn redact(&self, text: &str) -> String {
        text.replace(&self.directory.path().display().to_string(), "[TMP]")
    }
}

/// A wheel that uses every installation scheme key and both kinds of script.
fn complete_wheel() -> WheelBuilder {
    WheelBuilder::new("demo-tool", "1.2.0")
        .file("demo_tool/__init__.py", "VALUE = 42\n")
        .file("demo_tool/cli.py", "def main():\n    print('demo says', 42)\n    return 0\n")
        .file("demo_tool/__pycache__/cli.cpython-313.pyc", "not really bytecode")
        .entry_points("[console_scripts]\ndemo = demo_tool.cli:main\n\n[gui_scripts]\ndemo-gui = demo_tool.cli:main\n")
        .data("scripts", "demo-script", "#!python\nimport demo_tool\nprint('script', demo_tool.VALUE)\n")
        .data("scripts", "shell-script", "#!/bin/sh\necho shell\n")
        .data("data", "share/demo/readme.txt", "shared data\n")
        .data("headers", "demo.h", "#define DEMO 1\n")
        .data("purelib", "demo_extra.py", "EXTRA = True\n")
}

fn run(program: &Path) -> String {
    let output = Process::new(program).output().unwrap();
    assert!(
        output.status.success(),
        "{}: {}",
        program.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn installs_every_scheme_key_with_working_scripts() {
    let workspace = Workspace::new();
    let wheel = complete_wheel().build(&workspace.wheels());
    let summary = stdout_of(&mut workspace.install("prefix", &[], &[wheel]));
    assert!(
        summary.starts_with("installed 1 distributions"),
        "{summary}"
    );

    let prefix = workspace.path("prefix");
    let site = prefix.join(SITE);
    assert!(site.join("demo_tool/__init__.py").is_file());
    assert!(site.join("demo_extra.py").is_file(), "purelib key");
    assert!(
        site.join("demo_tool/__pycache__/cli.cpython-313.pyc")
            .is_file(),
        "a wheel's own pyc is kept"
    );
    assert_eq!(
        fs_err::read_to_string(prefix.join("share/demo/readme.txt")).unwrap(),
        "shared data\n"
    );
    assert!(
        prefix
            .join("include/site/python3.13/demo_tool/demo.h")
            .is_file(),
        "headers key"
    );
    assert!(
        !site.join("demo_tool-1.2.0.data").exists(),
        "the .data directory is not installed"
    );
    let config = fs_err::read_to_string(prefix.join("pyvenv.cfg")).unwrap();
    assert!(
        config.contains("include-system-site-packages = false")
            && config.contains("version = 3.13"),
        "{config}"
    );

    // Entry points and #!python scripts run through the prefix's interpreter.
    assert_eq!(run(&prefix.join("bin/demo")), "demo says 42\n");
    assert_eq!(run(&prefix.join("bin/demo-gui")), "demo says 42\n");
    assert_eq!(run(&prefix.join("bin/demo-script")), "script 42\n");
    assert_eq!(run(&prefix.join("bin/shell-script")), "shell\n");
    let script = fs_err::read_to_string(prefix.join("bin/demo-script")).unwrap();
    assert!(script.starts_with("#!/bin/sh\n'''exec'"), "{script}");
    let mode = fs_err::metadata(prefix.join("bin/shell-script"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "scripts are executable");

    let dist_info = site.join("demo_tool-1.2.0.dist-info");
    assert_eq!(
        fs_err::read_to_string(dist_info.join("INSTALLER")).unwrap(),
        "akpkg\n"
    );
    assert!(dist_info.join("REQUESTED").is_file());
    insta::assert_snapshot!(
        "complete_wheel_record",
        fs_err::read_to_string(dist_info.join("RECORD")).unwrap()
    );
}

#[test]
fn relocated_prefix_still_runs_its_scripts() {
    let workspace = Workspace::new();
    let wheel = complete_wheel().build(&workspace.wheels());
    stdout_of(&mut workspace.install("before", &[], &[wheel]));
    fs_err::rename(workspace.path("before"), workspace.path("after")).unwrap();
    let prefix = workspace.path("after");
    assert_eq!(run(&prefix.join("bin/demo")), "demo says 42\n");
    assert_eq!(run(&prefix.join("bin/demo-script")), "script 42\n");
    // A link to a launcher resolves to the prefix it points into.
    std::os::unix::fs::symlink(prefix.join("bin/demo"), workspace.path("demo-link")).unwrap();
    assert_eq!(run(&workspace.path("demo-link")), "demo says 42\n");
}

#[test]
fn destdir_stages_files_for_the_final_prefix() {
    let workspace = Workspace::new();
    let wheel = complete_wheel().build(&workspace.wheels());
    let mut command = akpkg();
    command
        .args([
            "install",
            "--python",
            "3.13",
            "--prefix",
            "/opt/demo",
            "--absolute-shebangs",
            "--compile",
            "--destdir",
        ])
        .arg(workspace.path("stage"))
        .arg("--cache-dir")
        .arg(workspace.path("cache"))
        .arg(&wheel);
    stdout_of(&mut command);
    let staged = workspace.path("stage/opt/demo");
    let launcher = fs_err::read_to_string(staged.join("bin/demo")).unwrap();
    assert!(
        launcher.starts_with("#!/opt/demo/bin/python\n"),
        "{launcher}"
    );
    // Bytecode records the module's path inside the prefix: neither where it was staged nor
    // where the prefix will be (CPython puts the real path in when it loads the pyc).
    let pyc = fs_err::read(
        staged
            .join(SITE)
            .join("demo_tool/__pycache__/__init__.cpython-313.pyc"),
    )
    .unwrap();
    let staging_path = workspace.path("stage").display().to_string();
    assert!(
        !pyc.windows(staging_path.len())
            .any(|window| window == staging_path.as_bytes())
    );
    let recorded = b"lib/python3.13/site-packages/demo_tool/__init__.py";
    assert!(pyc.windows(recorded.len()).any(|window| window == recorded));
    assert!(!pyc.windows(9).any(|window| window == b"/opt/demo"));
    // Unchecked-hash pyc (PEP 552 flags = 0b01): no timestamp to vary.
    assert_eq!(&pyc[4..8], &[1, 0, 0, 0]);
}

#[test]
fn compile_writes_pycs_into_record_once() {
    let workspace = Workspace::new();
    let wheel = complete_wheel().build(&workspace.wheels());
    stdout_of(&mut workspace.install("prefix", &["--compile"], &[wheel]));
    let record = fs_err::read_to_string(
        workspace
            .path("prefix")
            .join(SITE)
            .join("demo_tool-1.2.0.dist-info/RECORD"),
    )
    .unwrap();
    for pyc in [
        "demo_tool/__pycache__/__init__.cpython-313.pyc",
        "demo_tool/__pycache__/cli.cpython-313.pyc",
        "__pycache__/demo_extra.cpython-313.pyc",
    ] {
        assert_eq!(
            record
                .lines()
                .filter(|line| line.starts_with(&format!("{pyc},")))
                .count(),
            1,
            "{pyc} in\n{record}"
        );
    }
    // The wheel's fake pyc was replaced by real bytecode.
    let pyc = fs_err::read(
        workspace
            .path("prefix")
            .join(SITE)
            .join("demo_tool/__pycache__/cli.cpython-313.pyc"),
    )
    .unwrap();
    assert_ne!(pyc, b"not really bytecode");
}

/// A second install for the same final prefix restores the cached pycs byte for byte.
#[test]
fn warm_compile_reuses_cached_bytecode() {
    let workspace = Workspace::new();
    let wheel = complete_wheel().build(&workspace.wheels());
    let install = |stage: &str| {
        let mut command = akpkg();
        command
            .args([
                "-vv",
                "install",
                "--python",
                "3.13",
                "--prefix",
                "/opt/demo",
                "--compile",
                "--destdir",
            ])
            .arg(workspace.path(stage))
            .arg("--cache-dir")
            .arg(workspace.path("cache"))
            .arg(&wheel);
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stderr).unwrap()
    };
    let cold = install("cold");
    let warm = install("warm");
    assert!(cold.contains("restored=0 to_compile=3"), "{cold}");
    assert!(warm.contains("restored=3 to_compile=0"), "{warm}");
    let pyc = |stage: &str| {
        fs_err::read(
            workspace
                .path(stage)
                .join("opt/demo")
                .join(SITE)
                .join("demo_tool/__pycache__/cli.cpython-313.pyc"),
        )
        .unwrap()
    };
    assert_eq!(pyc("cold"), pyc("warm"));
    let record = |stage: &str| {
        fs_err::read_to_string(
            workspace
                .path(stage)
                .join("opt/demo")
                .join(SITE)
                .join("demo_tool-1.2.0.dist-info/RECORD"),
        )
        .unwrap()
    };
    assert_eq!(record("cold"), record("warm"));
}

#[test]
fn namespace_packages_split_over_two_wheels() {
    let workspace = Workspace::new();
    let shared_init = "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n";
    let first = WheelBuilder::new("ns-one", "1.0")
        .file("ns/__init__.py", shared_init)
        .file("ns/one.py", "X = 1\n")
        .build(&workspace.wheels());
    let second = WheelBuilder::new("ns-two", "1.0")
        .file("ns/__init__.py", shared_init)
        .file("ns/two.py", "X = 2\n")
        .build(&workspace.wheels());
    stdout_of(&mut workspace.install("prefix", &[], &[first.clone(), second]));
    let output = Process::new(workspace.path("prefix/bin/python"))
        .args(["-c", "import ns.one, ns.two; print(ns.one.X + ns.two.X)"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "3\n");

    // A different __init__.py is a real conflict, naming both wheels.
    let clashing = WheelBuilder::new("ns-three", "1.0")
        .file("ns/__init__.py", "X = 3\n")
        .build(&workspace.wheels());
    let error = failure_of(&mut workspace.install("other", &[], &[first, clashing]));
    insta::assert_snapshot!(error, @"error: ns_one-1.0-py3-none-any.whl and ns_three-1.0-py3-none-any.whl both install lib/python3.13/site-packages/ns/__init__.py with different contents: it is a Python module");
    assert!(
        !workspace.path("other").exists(),
        "nothing is written when a conflict is found"
    );
}

#[test]
fn existing_files_are_never_overwritten() {
    let workspace = Workspace::new();
    let wheel = WheelBuilder::new("once", "1.0")
        .file("once.py", "")
        .build(&workspace.wheels());
    stdout_of(&mut workspace.install("prefix", &[], std::slice::from_ref(&wheel)));
    let error = failure_of(&mut workspace.install("prefix", &[], &[wheel]));
    insta::assert_snapshot!(workspace.redact(&error), @"error: [TMP]/prefix/lib/python3.13/site-packages/once-1.0.dist-info/METADATA already exists (from once-1.0-py3-none-any.whl); akpkg installs into a fresh prefix and never overwrites");
}

#[test]
fn a_record_mismatch_is_refused_unless_relaxed() {
    let workspace = Workspace::new();
    let wheel = WheelBuilder::new("tampered", "1.0")
        .file("tampered.py", "print('changed')\n")
        .record_hash_for(
            "tampered.py",
            "sha256=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )
        .build(&workspace.wheels());
    let error = failure_of(&mut workspace.install("prefix", &[], std::slice::from_ref(&wheel)));
    insta::assert_snapshot!(workspace.redact(&error), @"error: [TMP]/wheels/tampered-1.0-py3-none-any.whl: RECORD disagrees with `tampered.py`: RECORD says sha256=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA, the file has sha256=ZBNWbkTRdm9KBjP0F81VDFKTO2XB1wSDvWNSXRZqJ-8; the wheel is corrupt or was altered (--no-verify-record installs it anyway)");
    assert!(!workspace.path("prefix").exists());

    let summary = stdout_of(&mut workspace.install("prefix", &["--no-verify-record"], &[wheel]));
    assert!(
        summary.contains("warning: ")
            && summary.contains(
                "tampered-1.0-py3-none-any.whl was installed although its RECORD disagrees"
            ),
        "{summary}"
    );
    // The new RECORD has the true hash.
    let record = fs_err::read_to_string(
        workspace
            .path("prefix")
            .join(SITE)
            .join("tampered-1.0.dist-info/RECORD"),
    )
    .unwrap();
    assert!(
        record.contains("tampered.py,sha256=ZBNWbkTRdm9KBjP0F81VDFKTO2XB1wSDvWNSXRZqJ-8,"),
        "{record}"
    );
}

#[test]
fn files_missing_from_record_are_refused() {
    let workspace = Workspace::new();
    let wheel = WheelBuilder::new("sneaky", "1.0")
        .file("sneaky.py", "")
        .unlisted("sneaky_extra.py", "x = 1\n")
        .build(&workspace.wheels());
    let error = failure_of(&mut workspace.install("prefix", &[], &[wheel]));
    assert!(
        error.contains("RECORD disagrees with `sneaky_extra.py`: the file is not listed"),
        "{error}"
    );
}

/// The global bound on what an archive unpacks to reaches the wheel's unpacking (the CLI puts
/// it into the install's options; no stage reads a process-wide setting).
#[test]
fn the_unpacked_size_flag_bounds_a_wheel() {
    let workspace = Workspace::new();
    let wheel = WheelBuilder::new("roomy", "1.0")
        .file("roomy.py", &"x = 1\n".repeat(200))
        .build(&workspace.wheels());
    let error = failure_of(&mut workspace.install(
        "prefix",
        &["--max-unpacked-size", "100"],
        std::slice::from_ref(&wheel),
    ));
    assert!(
        error.contains("it unpacks to more than 100 bytes (raise it with --max-unpacked-size)"),
        "{error}"
    );
    assert!(
        !workspace
            .path("prefix")
            .join(SITE)
            .join("roomy.py")
            .exists()
    );
    workspace
        .install("prefix", &[], &[wheel])
        .assert()
        .success();
}

/// Each hostile archive is refused with the wheel and the entry named; nothing is written.
#[test]
fn hostile_archives_are_refused() {
    let workspace = Workspace::new();
    let cases = [
        (
            "parent",
            WheelBuilder::new("parent", "1.0").unlisted("../../escape.py", ""),
        ),
        (
            "absolute",
            WheelBuilder::new("absolute", "1.0").unlisted("/tmp/akpkg-escape.py", ""),
        ),
        (
            "symlink",
            WheelBuilder::new("symlink", "1.0").symlink("symlink/passwd", "/etc/passwd"),
        ),
    ];
    let mut messages = Vec::new();
    for (name, builder) in cases {
        let wheel = builder.build(&workspace.wheels());
        let error = failure_of(&mut workspace.install(name, &[], &[wheel]));
        assert!(!workspace.path(name).exists(), "{name}: nothing written");
        messages.push(workspace.redact(&error));
    }
    insta::assert_snapshot!(messages.join(""), @r"
    error: [TMP]/wheels/parent-1.0-py3-none-any.whl: refusing entry `../../escape.py`: `..` component escapes the destination
    error: [TMP]/wheels/absolute-1.0-py3-none-any.whl: refusing entry `/tmp/akpkg-escape.py`: absolute path
    error: [TMP]/wheels/symlink-1.0-py3-none-any.whl: refusing entry `symlink/passwd`: symbolic links are not allowed in wheels
    ");
    assert!(!Path::new("/tmp/akpkg-escape.py").exists());
}

#[test]
fn duplicate_entries_are_refused() {
    let workspace = Workspace::new();
    let wheel = WheelBuilder::new("twice", "1.0")
        .file("twice/one.py", "A = 1\n")
        .file("twice/two.py", "B = 2\n")
        .build(&workspace.wheels());
    rename_entry(&wheel, "twice/two.py", "twice/one.py");
    let error = failure_of(&mut workspace.install("prefix", &[], &[wheel]));
    insta::assert_snapshot!(workspace.redact(&error), @"error: [TMP]/wheels/twice-1.0-py3-none-any.whl: the archive lists `twice/one.py` twice");
}

#[test]
fn metadata_problems_are_refused() {
    let workspace = Workspace::new();
    let newer = WheelBuilder::new("future", "1.0")
        .wheel_version("2.0")
        .file("future.py", "")
        .build(&workspace.wheels());
    let wrong_tags = WheelBuilder::new("native", "1.0")
        .tag("cp312-cp312-manylinux_2_17_x86_64")
        .platlib()
        .file("native.py", "")
        .build(&workspace.wheels());
    let bad_key = WheelBuilder::new("badkey", "1.0")
        .data("etc", "x.conf", "")
        .build(&workspace.wheels());
    let bad_entry_point = WheelBuilder::new("badep", "1.0")
        .entry_points("[console_scripts]\n../x = a:b\n")
        .build(&workspace.wheels());
    let mut messages = Vec::new();
    for wheel in [newer, wrong_tags, bad_key, bad_entry_point] {
        messages.push(workspace.redact(&failure_of(&mut workspace.install(
            "prefix",
            &[],
            &[wheel],
        ))));
    }
    insta::assert_snapshot!(messages.join(""), @r"
    error: [TMP]/wheels/future-1.0-py3-none-any.whl: Wheel-Version 2.0 is not supported; akpkg installs Wheel-Version 1.x
    error: [TMP]/wheels/native-1.0-cp312-cp312-manylinux_2_17_x86_64.whl: its tags (cp312-cp312-manylinux_2_17_x86_64) do not fit the target interpreter, whose best tags are cp313-cp313-manylinux_2_36_x86_64, cp313-cp313-manylinux_2_35_x86_64, cp313-cp313-manylinux_2_34_x86_64
    error: [TMP]/wheels/badkey-1.0-py3-none-any.whl: `etc` is not an installation scheme key; a .data directory may hold purelib, platlib, scripts, headers or data (entry `badkey-1.0.data/etc/x.conf`)
    error: [TMP]/wheels/badep-1.0-py3-none-any.whl: invalid entry point `../x = a:b` in entry_points.txt: the script name must be a plain file name
    ");
}

#[test]
fn link_modes_install_the_same_tree() {
    let workspace = Workspace::new();
    let wheel = complete_wheel().build(&workspace.wheels());
    for mode in ["copy", "hardlink", "reflink"] {
        stdout_of(&mut workspace.install(
            mode,
            &["--link-mode", mode],
            std::slice::from_ref(&wheel),
        ));
        assert_eq!(
            run(&workspace.path(mode).join("bin/demo")),
            "demo says 42\n",
            "{mode}"
        );
    }
    let record = |mode: &str| {
        fs_err::read_to_string(
            workspace
                .path(mode)
                .join(SITE)
                .join("demo_tool-1.2.0.dist-info/RECORD"),
        )
        .unwrap()
    };
    assert_eq!(record("copy"), record("hardlink"));
    assert_eq!(record("copy"), record("reflink"));
    // Hard links share the cache's inode; the RECORD akpkg wrote does not.
    let linked = fs_err::metadata(
        workspace
            .path("hardlink")
            .join(SITE)
            .join("demo_tool/cli.py"),
    )
    .unwrap();
    assert!(std::os::unix::fs::MetadataExt::nlink(&linked) >= 2);
}
