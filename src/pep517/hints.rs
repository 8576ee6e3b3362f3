//! What to install when a build fails for want of a native tool or library.

/// Known signs in a build's output, and the hint for each.
const SIGNS: &[(&[&str], &str)] = &[
    (
        &["pg_config"],
        "pg_config was not found: install libpq-dev (Debian) or libpq-devel, or put pg_config on PATH",
    ),
    (
        &["krb5-config"],
        "krb5-config was not found: install libkrb5-dev (Debian) or krb5-devel",
    ),
    (
        &["xmlsec1", "package 'xmlsec1"],
        "xmlsec1 is not known to pkg-config: install libxmlsec1-dev and pkg-config (Debian)",
    ),
    (
        &["-lltdl", "ltdl.h"],
        "libltdl is missing: install libltdl-dev (Debian)",
    ),
    (
        &["xslt-config", "libxslt", "libxml/xmlversion.h", "libxml2"],
        "libxml2/libxslt headers are missing: install libxml2-dev and libxslt1-dev (Debian)",
    ),
    (
        &[
            "pkg-config: not found",
            "pkg-config not found",
            "No such file or directory: 'pkg-config'",
        ],
        "pkg-config is missing: install pkg-config (Debian)",
    ),
    (
        &["ffi.h"],
        "libffi headers are missing: install libffi-dev (Debian)",
    ),
    (
        &["zlib.h"],
        "zlib headers are missing: install zlib1g-dev (Debian)",
    ),
    (
        &[
            "cargo: not found",
            "rustc: not found",
            "can't find Rust compiler",
            "Cargo, the Rust package manager, is not installed",
        ],
        "a Rust toolchain is missing: install cargo and rustc (rustup, or Debian's cargo)",
    ),
    (
        &[
            "command 'gcc' failed: No such file",
            "error: command 'cc' failed",
            "unable to execute 'gcc'",
            "gcc: not found",
        ],
        "no C compiler: install gcc (Debian: build-essential)",
    ),
];

/// The hints whose signs appear in `output`, one per line, in the table's order.
pub fn hints_for(output: &str) -> Vec<&'static str> {
    let lines: Vec<&str> = output
        .lines()
        .filter(|line| {
            let lower = line.to_ascii_lowercase();
            lower.contains("not found")
                || lower.contains("no such file")
                || lower.contains("error")
                || lower.contains("cannot find")
                || lower.contains("can't find")
                || lower.contains("not installed")
                || lower.contains("unable to execute")
                || lower.contains("no package")
                || lower.contains("was not found")
        })
        .collect();
    SIGNS
        .iter()
        .filter(|(signs, _)| {
            lines
                .iter()
                .any(|line| signs.iter().any(|sign| line.contains(sign)))
        })
        .map(|(_, hint)| *hint)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_failures_get_hints() {
        for (output, expected) in [
            ("Error: pg_config executable not found.", "libpq-dev"),
            ("/bin/sh: 1: krb5-config: not found", "libkrb5-dev"),
            (
                "Package xmlsec1 was not found in the pkg-config search path.",
                "libxmlsec1-dev",
            ),
            (
                "/usr/bin/ld: cannot find -lltdl: No such file or directory",
                "libltdl-dev",
            ),
            ("error: can't find Rust compiler", "Rust toolchain"),
        ] {
            let hints = hints_for(output);
            assert!(
                hints.iter().any(|hint| hint.contains(expected)),
                "{output}: {hints:?}"
            );
        }
        // A mention that is not a failure gives nothing.
        assert!(hints_for("running pg_config --includedir\nok").is_empty());
    }
}
