//! The arrows between modules that must not exist, checked on every test run: a module lower in
//! the data flow (`lock` → `plan` → `fetch` → … → `assemble` → `layer`) or below all stages
//! (the HTTP edge, the leaves) names no module above it, and only the CLI names the CLI. One
//! crate keeps these by this test rather than by crate boundaries (docs/architecture.md says
//! why); a new arrow that runs back fails here, naming the file and the line.

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// `(module, modules it must not name)`; a module is a file or a folder under `src/`.
    const RULES: &[(&str, &[&str])] = &[
        (
            "http",
            &[
                "fetch", "registry", "assemble", "pipeline", "cli", "release", "web", "server",
            ],
        ),
        (
            "registry",
            &["fetch", "assemble", "pipeline", "cli", "release"],
        ),
        ("fetch", &["assemble", "pipeline", "cli", "release"]),
        (
            "pep517",
            &["assemble", "pipeline", "cli", "release", "closure"],
        ),
        (
            "install",
            &["assemble", "pipeline", "cli", "release", "fetch"],
        ),
        ("server", &["assemble", "pipeline", "cli", "release"]),
        ("web", &["assemble", "pipeline", "cli", "release"]),
        ("pipeline", &["assemble", "cli", "release"]),
        ("assemble", &["cli", "release"]),
        ("layer", &["cli", "release"]),
        ("release", &["cli"]),
        ("plan", &["fetch", "assemble", "pipeline", "cli"]),
        ("lock", &["fetch", "assemble", "pipeline", "cli", "plan"]),
        ("redact.rs", &["fetch", "registry", "assemble", "cli"]),
        ("limits.rs", &["fetch", "registry", "assemble", "cli"]),
        ("progress.rs", &["fetch", "registry", "assemble", "cli"]),
        ("timestamp.rs", &["fetch", "registry", "assemble", "cli"]),
        ("contained.rs", &["fetch", "registry", "assemble", "cli"]),
        ("cache", &["fetch", "registry", "assemble", "cli"]),
    ];

    /// The lines of `path` before its unit tests (tests may reach anywhere).
    fn code_lines(path: &Path) -> Vec<(usize, String)> {
        let text = fs_err::read_to_string(path).unwrap();
        let mut lines = Vec::new();
        let mut previous = "";
        for (index, line) in text.lines().enumerate() {
            if previous == "#[cfg(test)]" && line.starts_with("mod tests") {
                lines.pop();
                break;
            }
            lines.push((index + 1, line.to_string()));
            previous = line;
        }
        lines
    }

    fn files_of(module: &Path) -> Vec<std::path::PathBuf> {
        if module.is_file() {
            return vec![module.to_path_buf()];
        }
        walkdir::WalkDir::new(module)
            .into_iter()
            .filter_map(Result::ok)
            .map(|entry| entry.into_path())
            .filter(|path| path.extension().is_some_and(|extension| extension == "rs"))
            .collect()
    }

    /// Where `files` name one of `forbidden` (`crate::NAME::` or `use crate::NAME`).
    fn arrows(files: &[std::path::PathBuf], forbidden: &[&str]) -> Vec<String> {
        let mut found = Vec::new();
        for file in files {
            for (number, line) in code_lines(file) {
                for name in forbidden {
                    let path = format!("crate::{name}");
                    if line.contains(&format!("{path}::")) || line.contains(&format!("{path};")) {
                        found.push(format!("{}:{number} names {path}", file.display()));
                    }
                }
            }
        }
        found
    }

    #[test]
    fn no_arrow_runs_back() {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        for (module, forbidden) in RULES {
            let path = source.join(module);
            assert!(
                path.exists(),
                "the rule names {module}, which src/ does not have"
            );
            found.extend(arrows(&files_of(&path), forbidden));
        }
        assert!(
            found.is_empty(),
            "arrows that run back:\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn only_the_cli_names_the_cli() {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let outside: Vec<_> = files_of(&source)
            .into_iter()
            .filter(|file| !file.starts_with(source.join("cli")) && !file.ends_with("main.rs"))
            .collect();
        let found = arrows(&outside, &["cli"]);
        assert!(found.is_empty(), "{}", found.join("\n"));
    }

    #[test]
    fn a_back_arrow_is_found_and_named() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("edge.rs");
        fs_err::write(&file, "use crate::fetch::FetchOptions;\nfn f() {}\n").unwrap();
        let found = arrows(std::slice::from_ref(&file), &["fetch"]);
        assert_eq!(found, [format!("{}:1 names crate::fetch", file.display())]);
    }
}
