//! Before anything is fetched or built: can this machine assemble the lock? The interpreter,
//! `git` for git sources, and for native builds a C compiler, `pkg-config` and the development
//! files of the libraries they link against. Every check runs, so everything missing is
//! reported at once, with the packages that provide it on Debian and Fedora.

use std::process::{Command, Stdio};

use serde::Serialize;

use crate::lock::AkpkgLock;

/// How a check looks for what it needs.
#[derive(Debug, Clone, Copy)]
enum Probe {
    /// A command that answers `--version`.
    Command(&'static str),
    /// A `pkg-config` module.
    PkgConfig(&'static str),
    /// A C header the compiler finds.
    Header(&'static str),
}

/// What one native build needs besides a compiler and pkg-config.
struct NativeNeed {
    distribution: &'static str,
    what: &'static str,
    probe: Probe,
    debian: &'static str,
    fedora: &'static str,
}

/// The native sdists authentik's lock builds, and what each links against.
const NATIVE_NEEDS: &[NativeNeed] = &[
    NativeNeed {
        distribution: "psycopg-c",
        what: "libpq (pg_config)",
        probe: Probe::Command("pg_config"),
        debian: "libpq-dev",
        fedora: "libpq-devel",
    },
    NativeNeed {
        distribution: "gssapi",
        what: "krb5 (krb5-config)",
        probe: Probe::Command("krb5-config"),
        debian: "libkrb5-dev",
        fedora: "krb5-devel",
    },
    NativeNeed {
        distribution: "lxml",
        what: "libxml2",
        probe: Probe::PkgConfig("libxml-2.0"),
        debian: "libxml2-dev",
        fedora: "libxml2-devel",
    },
    NativeNeed {
        distribution: "lxml",
        what: "libxslt",
        probe: Probe::PkgConfig("libxslt"),
        debian: "libxslt1-dev",
        fedora: "libxslt-devel",
    },
    NativeNeed {
        distribution: "lxml",
        what: "zlib",
        probe: Probe::PkgConfig("zlib"),
        debian: "zlib1g-dev",
        fedora: "zlib-devel",
    },
    NativeNeed {
        distribution: "xmlsec",
        what: "xmlsec1",
        probe: Probe::PkgConfig("xmlsec1"),
        debian: "libxmlsec1-dev",
        fedora: "xmlsec1-devel",
    },
    NativeNeed {
        distribution: "xmlsec",
        what: "libltdl (ltdl.h)",
        probe: Probe::Header("ltdl.h"),
        debian: "libltdl-dev",
        fedora: "libtool-ltdl-devel",
    },
    NativeNeed {
        distribution: "cffi",
        what: "libffi",
        probe: Probe::PkgConfig("libffi"),
        debian: "libffi-dev",
        fedora: "libffi-devel",
    },
];

/// One thing checked.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub what: String,
    /// Which part of the assemble needs it.
    pub needed_for: String,
    /// What was found (a path or a version), or `None` when it is missing.
    pub found: Option<String>,
    /// What to install when it is missing.
    pub debian: Option<&'static str>,
    pub fedora: Option<&'static str>,
    /// Why it is missing and what to do, where no package line says it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Every check, in the order they ran.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

/// What the checks are about: the lock, the interpreter found for it (or why none was), and
/// whether git sources come from archives instead of `git`.
pub struct Inputs<'a> {
    pub lock: &'a AkpkgLock,
    pub interpreter: Result<String, String>,
    pub git_sources_from_archives: bool,
    /// The go command for the recipe's server (what was found, or why none fits), when the
    /// server is built.
    pub go: Option<Result<String, String>>,
    pub optional: OptionalTools,
}

/// Which generated API clients need java.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JavaFor {
    /// The web UI's TypeScript client (`[web.api-client]`).
    pub web: bool,
    /// The Go server's client (`[server.api-client]`).
    pub server: bool,
}

impl JavaFor {
    /// What java is needed for and how to leave it out; `None` when nothing needs it.
    fn needed_for(self) -> Option<&'static str> {
        match (self.web, self.server) {
            (false, false) => None,
            (true, false) => Some(
                "the web UI's API client generator; `akpkg assemble --no-web` or `akpkg assemble --api-client locked` leaves it out",
            ),
            (false, true) => Some(
                "the Go server's API client generator; `akpkg assemble --no-server` or `akpkg assemble --go-api-client locked` leaves it out",
            ),
            (true, true) => Some(
                "the API client generators of the web UI and the Go server; `akpkg assemble --api-client locked --go-api-client locked` leaves them out",
            ),
        }
    }
}

/// Tools only some runs need.
#[derive(Debug, Clone, Copy, Default)]
pub struct OptionalTools {
    /// java, for the API clients the recipe generates. `assemble` looks for it itself, after
    /// its no-op check: starting java costs a fifth of a second.
    pub java: JavaFor,
    /// patchelf (`--self-contained` rewrites ELF files).
    pub patchelf: bool,
}

pub fn check(inputs: &Inputs) -> Report {
    let mut checks = vec![Pending::Ready(Check {
        what: format!("CPython {}", inputs.lock.target.python_version),
        needed_for: "building and running the prefix".to_string(),
        found: inputs.interpreter.as_ref().ok().cloned(),
        debian: None,
        fedora: None,
        problem: None,
    })];
    if !inputs.lock.git.is_empty() && !inputs.git_sources_from_archives {
        let names: Vec<&str> = inputs
            .lock
            .git
            .iter()
            .map(|git| git.name.as_str())
            .collect();
        checks.push(probe_check(
            "git",
            &names.join(", "),
            Probe::Command("git"),
            "git",
            "git",
        ));
    }
    let native: Vec<&NativeNeed> = NATIVE_NEEDS
        .iter()
        .filter(|need| {
            inputs.lock.build.iter().any(|build| {
                build.kind == crate::lock::BuildKind::Sdist && build.name == need.distribution
            })
        })
        .collect();
    let builds_native_code = !native.is_empty();
    if builds_native_code {
        let mut names: Vec<&str> = native.iter().map(|need| need.distribution).collect();
        names.dedup(); // the table lists each distribution's needs together
        let names = names.join(", ");
        checks.push(probe_check(
            "a C compiler (cc)",
            &names,
            Probe::Command("cc"),
            "build-essential",
            "gcc",
        ));
        checks.push(probe_check(
            "pkg-config",
            &names,
            Probe::Command("pkg-config"),
            "pkg-config",
            "pkgconf-pkg-config",
        ));
    }
    for need in native {
        checks.push(probe_check(
            need.what,
            need.distribution,
            need.probe,
            need.debian,
            need.fedora,
        ));
    }
    if let (Some(go), Some(locked)) = (&inputs.go, &inputs.lock.go) {
        // Distributions ship older Go than servers need (Debian 12: 1.19): no package line.
        checks.push(Pending::Ready(Check {
            what: format!("Go {} or newer, with a C compiler for cgo", locked.go),
            needed_for: "the Go server, bin/authentik; `akpkg assemble --no-server` leaves it out"
                .to_string(),
            found: go.as_ref().ok().cloned(),
            debian: None,
            fedora: None,
            problem: go.as_ref().err().cloned(),
        }));
    }
    // Extension modules built by an interpreter that links with an rpath (pyenv's does) carry
    // RUNPATH entries outside the prefix, which the closure stage drops with patchelf: known
    // only once they are built, so asked for before anything is.
    let patchelf_for = match (inputs.optional.patchelf, builds_native_code) {
        (true, _) => Some("--self-contained, which grafts libraries into the prefix"),
        (false, true) => Some(
            "the extension modules built here, whose RUNPATH entries outside the prefix are dropped",
        ),
        (false, false) => None,
    };
    if let Some(needed_for) = patchelf_for {
        checks.push(probe_check(
            "patchelf",
            needed_for,
            Probe::Command("patchelf"),
            "patchelf",
            "patchelf",
        ));
    }
    if let Some(needed_for) = inputs.optional.java.needed_for() {
        checks.push(probe_check(
            "a Java runtime (java)",
            needed_for,
            Probe::Command("java"),
            "default-jre-headless",
            "java-17-openjdk-headless",
        ));
    }
    Report {
        checks: run_all(checks),
    }
}

/// A check whose probe has not run yet: `check` starts every probe at once (each is a process
/// start or two, and together they are most of a no-op assemble's time when run one by one).
fn probe_check(
    what: &str,
    needed_for: &str,
    probe: Probe,
    debian: &'static str,
    fedora: &'static str,
) -> Pending {
    Pending::Probe(
        Check {
            what: what.to_string(),
            needed_for: needed_for.to_string(),
            found: None,
            debian: Some(debian),
            fedora: Some(fedora),
            problem: None,
        },
        probe,
    )
}

enum Pending {
    Ready(Check),
    Probe(Check, Probe),
}

/// Run the pending probes concurrently; the checks keep their order.
fn run_all(pending: Vec<Pending>) -> Vec<Check> {
    std::thread::scope(|scope| {
        let running: Vec<_> = pending
            .into_iter()
            .map(|pending| match pending {
                Pending::Ready(check) => (check, None),
                Pending::Probe(check, probe) => {
                    (check, Some(scope.spawn(move || run_probe(probe))))
                }
            })
            .collect();
        running
            .into_iter()
            .map(|(check, probe)| match probe {
                None => check,
                Some(probe) => Check {
                    found: probe.join().ok().flatten(),
                    ..check
                },
            })
            .collect()
    })
}

/// What the probe found, or `None`.
fn run_probe(probe: Probe) -> Option<String> {
    let quiet = |command: &mut Command| {
        command
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|output| output.status.success())
    };
    match probe {
        Probe::Command(name) => {
            let output = quiet(Command::new(name).arg("--version"))?;
            let text = String::from_utf8_lossy(&output.stdout);
            Some(text.lines().next().unwrap_or(name).trim().to_string())
        }
        Probe::PkgConfig(module) => {
            let output = quiet(Command::new("pkg-config").args(["--modversion", module]))?;
            Some(format!(
                "{module} {}",
                String::from_utf8_lossy(&output.stdout).trim()
            ))
        }
        Probe::Header(header) => {
            let mut child = Command::new("cc")
                .args(["-E", "-x", "c", "-"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            let mut stdin = child.stdin.take()?;
            std::io::Write::write_all(&mut stdin, format!("#include <{header}>\n").as_bytes())
                .ok()?;
            drop(stdin);
            child
                .wait()
                .ok()
                .filter(|status| status.success())
                .map(|_| header.to_string())
        }
    }
}

impl Report {
    pub fn missing(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|check| check.found.is_none())
            .collect()
    }

    /// One install line per distribution family for everything missing, or `None`.
    pub fn install_lines(&self) -> Option<(String, String)> {
        let missing = self.missing();
        let packages = |pick: fn(&Check) -> Option<&'static str>| {
            let mut names: Vec<&str> = Vec::new();
            for name in missing.iter().filter_map(|check| pick(check)) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            names.join(" ")
        };
        let debian = packages(|check| check.debian);
        let fedora = packages(|check| check.fedora);
        (!debian.is_empty()).then(|| {
            (
                format!("apt-get install -y {debian}"),
                format!("dnf install -y {fedora}"),
            )
        })
    }

    /// What is missing, one line each, then the install lines: for an error message.
    pub fn describe_missing(&self) -> String {
        let mut text = String::new();
        for check in self.missing() {
            text.push_str(&format!(
                "  missing: {} (for {})\n",
                check.what, check.needed_for
            ));
            if let Some(problem) = &check.problem {
                text.push_str(&format!("    {problem}\n"));
            }
        }
        if let Some((debian, fedora)) = self.install_lines() {
            text.push_str(&format!(
                "Debian/Ubuntu: {debian}\nFedora:        {fedora}\n"
            ));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_that_is_not_there_is_missing_and_one_that_is_is_found() {
        assert!(run_probe(Probe::Command("akpkg-no-such-command")).is_none());
        assert!(
            run_probe(Probe::Command("sh")).is_some() || run_probe(Probe::Command("ls")).is_some()
        );
    }

    #[test]
    fn install_lines_name_each_missing_package_once() {
        let check = |what: &str, found: Option<&str>, debian, fedora| Check {
            what: what.to_string(),
            needed_for: "lxml".to_string(),
            found: found.map(str::to_string),
            debian: Some(debian),
            fedora: Some(fedora),
            problem: None,
        };
        let report = Report {
            checks: vec![
                check("libxml2", None, "libxml2-dev", "libxml2-devel"),
                check("libxml2 again", None, "libxml2-dev", "libxml2-devel"),
                check("zlib", Some("zlib 1.2.13"), "zlib1g-dev", "zlib-devel"),
                check("libxslt", None, "libxslt1-dev", "libxslt-devel"),
            ],
        };
        insta::assert_snapshot!(report.describe_missing(), @r"
          missing: libxml2 (for lxml)
          missing: libxml2 again (for lxml)
          missing: libxslt (for lxml)
        Debian/Ubuntu: apt-get install -y libxml2-dev libxslt1-dev
        Fedora:        dnf install -y libxml2-devel libxslt-devel
        ");
    }

    #[test]
    fn java_is_needed_for_the_clients_the_recipe_generates_and_says_how_to_leave_each_out() {
        let needed = |web, server| JavaFor { web, server }.needed_for();
        assert_eq!(needed(false, false), None);
        let web = needed(true, false).unwrap();
        assert!(web.contains("web UI") && web.contains("--no-web"), "{web}");
        let server = needed(false, true).unwrap();
        assert!(
            server.contains("Go server") && server.contains("--go-api-client locked"),
            "{server}"
        );
        let both = needed(true, true).unwrap();
        assert!(
            both.contains("--api-client locked --go-api-client locked"),
            "{both}"
        );
    }
}
