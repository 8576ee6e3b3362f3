//! No file of the prefix may name a path of the machine that built it: the staging
//! directory, the prefix's own path, the cache, the build interpreter. Such a path serves
//! nothing where the prefix is used, and it makes two builders' prefixes differ.
//!
//! Every regular file is searched (bytecode included) for all the paths at once
//! (Aho-Corasick); a hit counts only when the whole path is there (`/srv/app` is not found in
//! `/srv/application`, nor `/authentik` in `/static/authentik/`).

use std::path::{Path, PathBuf};

use aho_corasick::AhoCorasick;
use rayon::prelude::*;

use super::ClosureError;

/// A path that must not appear, and what it is.
#[derive(Debug, Clone)]
pub struct BuildPath {
    pub path: PathBuf,
    pub what: &'static str,
    /// Files (relative to the prefix) allowed to name it: the runtime interpreter's path in
    /// `pyvenv.cfg`, when the prefix runs with the build's own interpreter.
    pub allowed_in: Vec<PathBuf>,
}

/// One file that names a build path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: PathBuf,
    pub path: PathBuf,
    pub what: &'static str,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{} holds a path of the build machine, {} ({})",
            self.file.display(),
            self.path.display(),
            self.what
        )
    }
}

use crate::interpreter::is_system_prefix;

/// Every file below `root` that names one of `paths`, sorted.
pub fn find(root: &Path, paths: &[BuildPath]) -> Result<Vec<Finding>, ClosureError> {
    let paths: Vec<&BuildPath> = paths
        .iter()
        .filter(|path| !is_system_prefix(&path.path) && path.path.is_absolute())
        .collect();
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let patterns: Vec<String> = paths
        .iter()
        .map(|path| path.path.display().to_string())
        .collect();
    let automaton = AhoCorasick::new(&patterns).map_err(|error| {
        ClosureError::Io(crate::path_io::PathIoError::new(
            "cannot search for",
            patterns.join(", "),
            std::io::Error::other(error),
        ))
    })?;
    let files: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_file())
        .map(walkdir::DirEntry::into_path)
        .collect();
    let mut findings: Vec<Finding> = files
        .par_iter()
        .map(|file| {
            let bytes = fs_err::read(file).map_err(ClosureError::io("cannot read", file))?;
            let relative = file.strip_prefix(root).unwrap_or(file);
            let mut found: Vec<Finding> = Vec::new();
            for hit in automaton.find_overlapping_iter(&bytes) {
                let path = paths[hit.pattern().as_usize()];
                // A whole path, not the tail or the start of another name: `/authentik` is not
                // found in `/static/authentik/` nor in `/authentik-web`.
                let name_character =
                    |byte: &u8| byte.is_ascii_alphanumeric() || b"._-".contains(byte);
                let ends_there = bytes
                    .get(hit.end())
                    .is_none_or(|next| !name_character(next));
                let starts_there = hit
                    .start()
                    .checked_sub(1)
                    .and_then(|before| bytes.get(before))
                    .is_none_or(|before| !name_character(before));
                if starts_there
                    && ends_there
                    && !path.allowed_in.iter().any(|allowed| allowed == relative)
                    && !found.iter().any(|finding| finding.path == path.path)
                {
                    found.push(Finding {
                        file: relative.to_path_buf(),
                        path: path.path.clone(),
                        what: path.what,
                    });
                }
            }
            Ok(found)
        })
        .collect::<Result<Vec<_>, ClosureError>>()?
        .into_iter()
        .flatten()
        .collect();
    findings.sort_by(|a, b| a.file.cmp(&b.file).then(a.path.cmp(&b.path)));
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_found_only_where_it_ends_and_where_it_is_not_allowed() {
        let root = tempfile::tempdir().unwrap();
        let write = |name: &str, content: &[u8]| {
            let path = root.path().join(name);
            fs_err::create_dir_all(path.parent().unwrap()).unwrap();
            fs_err::write(path, content).unwrap();
        };
        write("lib/a.so", b"\x7fELF\0/srv/build/app/lib\0");
        write("lib/b.txt", b"see /srv/build/application\n");
        write("lib/e.js", b"fetch('/static/srv/build/app/x.js')");
        write("lib/f.json", b"{\"url\": \"file:///srv/build/app/src\"}");
        write("pyvenv.cfg", b"home = /opt/python/bin\n");
        write("lib/c.pyc", b"\0/opt/python\0");
        let paths = [
            BuildPath {
                path: "/srv/build/app".into(),
                what: "the staging directory",
                allowed_in: Vec::new(),
            },
            BuildPath {
                path: "/opt/python".into(),
                what: "the build interpreter",
                allowed_in: vec!["pyvenv.cfg".into()],
            },
            BuildPath {
                path: "/usr".into(),
                what: "a system path",
                allowed_in: Vec::new(),
            },
        ];
        let findings = find(root.path(), &paths).unwrap();
        assert_eq!(
            findings.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "lib/a.so holds a path of the build machine, /srv/build/app (the staging directory)",
                "lib/c.pyc holds a path of the build machine, /opt/python (the build interpreter)",
                "lib/f.json holds a path of the build machine, /srv/build/app (the staging directory)",
            ]
        );
    }
}
