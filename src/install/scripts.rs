//! Launchers for entry points, and the interpreter line of `#!python` scripts.
//!
//! The default interpreter line is relocatable, as `uv venv --relocatable` writes it: a
//! `/bin/sh` line whose `exec` finds `python` beside the script's own resolved path, and which
//! Python reads as a string literal. A plain `#!/prefix/bin/python` is written only when asked
//! and when the kernel can take it (at most 127 bytes, no spaces).

use super::metadata::EntryPoint;

/// Longest `#!` line Linux reads whole (BINPRM_BUF_SIZE is 128 including the newline).
const MAX_SHEBANG_LENGTH: usize = 127;

/// The lines that start every script akpkg writes or rewrites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpreterLine {
    /// Finds `bin/python` next to the script wherever the prefix is moved.
    Relocatable,
    /// `#!<final prefix>/bin/python`.
    Absolute(String),
}

impl InterpreterLine {
    /// `absolute` when asked for and possible, otherwise relocatable.
    pub fn choose(absolute_requested: bool, final_python: &str) -> InterpreterLine {
        let line = format!("#!{final_python}");
        // A newline (or any control character) would end the `#!` line early and turn the rest
        // of the path into shell code.
        let fits = line.len() <= MAX_SHEBANG_LENGTH
            && !final_python.contains([' ', '\t'])
            && !final_python.chars().any(char::is_control);
        if absolute_requested && fits {
            InterpreterLine::Absolute(line)
        } else {
            if absolute_requested {
                tracing::warn!(
                    python = final_python,
                    "interpreter path too long, or with spaces or control characters, for a #! line; writing relocatable launchers"
                );
            }
            InterpreterLine::Relocatable
        }
    }

    pub fn text(&self) -> String {
        match self {
            InterpreterLine::Relocatable => concat!(
                "#!/bin/sh\n",
                "'''exec' \"$(dirname -- \"$(realpath -- \"$0\")\")\"/'python' \"$0\" \"$@\"\n",
                "' '''\n"
            )
            .to_string(),
            InterpreterLine::Absolute(line) => format!("{line}\n"),
        }
    }
}

/// The launcher of a console or GUI script, as pip and installer write them.
pub fn launcher(entry_point: &EntryPoint, interpreter: &InterpreterLine) -> String {
    let attribute = &entry_point.attribute;
    // `module:a.b` imports `a` and calls `a.b()`.
    let head = attribute.split('.').next().unwrap_or(attribute);
    let module = &entry_point.module;
    format!(
        "{}# -*- coding: utf-8 -*-\nimport re\nimport sys\nfrom {module} import {head}\nif __name__ == \"__main__\":\n    sys.argv[0] = re.sub(r\"(-script\\.pyw|\\.exe)?$\", \"\", sys.argv[0])\n    sys.exit({attribute}())\n",
        interpreter.text()
    )
}

/// Binary distribution format: "In wheel, scripts are packaged in
/// `{distribution}-{version}.data/scripts/`. If the first line of a file in `scripts/` starts
/// with exactly `b'#!python'`, rewrite to point to the correct interpreter." `#!pythonw` too.
/// Returns `None` for scripts that keep their own first line.
pub fn rewrite_script(content: &[u8], interpreter: &InterpreterLine) -> Option<Vec<u8>> {
    let rest = content
        .strip_prefix(b"#!pythonw")
        .or_else(|| content.strip_prefix(b"#!python"))?;
    // Drop the remainder of the first line (such as interpreter flags) with it.
    let body = match rest.iter().position(|&byte| byte == b'\n') {
        Some(newline) => &rest[newline + 1..],
        None => &[],
    };
    let mut rewritten = interpreter.text().into_bytes();
    rewritten.extend_from_slice(body);
    Some(rewritten)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(attribute: &str) -> EntryPoint {
        EntryPoint {
            name: "ak".into(),
            module: "lifecycle.ak".into(),
            attribute: attribute.to_string(),
            gui: false,
        }
    }

    #[test]
    fn relocatable_launcher() {
        insta::assert_snapshot!(launcher(&entry("main"), &InterpreterLine::Relocatable), @r#"
        #!/bin/sh
        '''exec' "$(dirname -- "$(realpath -- "$0")")"/'python' "$0" "$@"
        ' '''
        # -*- coding: utf-8 -*-
        import re
        import sys
        from lifecycle.ak import main
        if __name__ == "__main__":
            sys.argv[0] = re.sub(r"(-script\.pyw|\.exe)?$", "", sys.argv[0])
            sys.exit(main())
        "#);
    }

    #[test]
    fn absolute_launcher_with_dotted_attribute() {
        let line = InterpreterLine::choose(true, "/opt/authentik/bin/python");
        insta::assert_snapshot!(launcher(&entry("App.run"), &line), @r#"
        #!/opt/authentik/bin/python
        # -*- coding: utf-8 -*-
        import re
        import sys
        from lifecycle.ak import App
        if __name__ == "__main__":
            sys.argv[0] = re.sub(r"(-script\.pyw|\.exe)?$", "", sys.argv[0])
            sys.exit(App.run())
        "#);
    }

    #[test]
    fn long_or_spaced_paths_fall_back_to_relocatable() {
        assert_eq!(
            InterpreterLine::choose(true, &format!("/{}/bin/python", "x".repeat(130))),
            InterpreterLine::Relocatable
        );
        assert_eq!(
            InterpreterLine::choose(true, "/opt/my app/bin/python"),
            InterpreterLine::Relocatable
        );
        assert_eq!(
            InterpreterLine::choose(false, "/opt/a/bin/python"),
            InterpreterLine::Relocatable
        );
        // A newline would end the `#!` line and make the rest of the path shell code.
        assert_eq!(
            InterpreterLine::choose(true, "/opt/a\ntouch /tmp/pwned\n/bin/python"),
            InterpreterLine::Relocatable
        );
    }

    #[test]
    fn only_hash_bang_python_scripts_are_rewritten() {
        let line = InterpreterLine::Absolute("#!/p/bin/python".into());
        assert_eq!(
            rewrite_script(b"#!python -u\nprint(1)\n", &line).unwrap(),
            b"#!/p/bin/python\nprint(1)\n"
        );
        assert_eq!(
            rewrite_script(b"#!pythonw\nx\n", &line).unwrap(),
            b"#!/p/bin/python\nx\n"
        );
        assert_eq!(rewrite_script(b"#!/bin/sh\necho\n", &line), None);
        assert_eq!(rewrite_script(b"#! python\n", &line), None);
    }
}
