//! Rewriting ELF files with Debian's `patchelf`, as auditwheel does.
//!
//! No Rust crate rewrites ELF dynamic sections reliably yet (arwen is at 0.0.x); patchelf is
//! what auditwheel and conda rely on, and it also renames the version-needed entries that
//! point at a renamed library. Every edit is made on a copy beside the file, which is then
//! renamed over it: a file hard-linked from a cache is never modified in place, and a failed
//! edit leaves the original.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::ClosureError;
use crate::contained::{Contained, LinkMode};

/// What to change in one ELF file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElfEdit {
    /// A new `DT_SONAME` (for a grafted library under its new name).
    pub soname: Option<String>,
    /// `DT_NEEDED` renames: (old, new).
    pub replace_needed: Vec<(String, String)>,
    /// The new RUNPATH (empty: none at all); `None` leaves it.
    pub runpath: Option<Vec<String>>,
}

impl ElfEdit {
    pub fn is_empty(&self) -> bool {
        self.soname.is_none() && self.replace_needed.is_empty() && self.runpath.is_none()
    }

    /// patchelf's arguments, one list per run: patchelf 0.14 (Debian 12's) loses all but one
    /// of several changes that add strings in one run (a new soname and a new RUNPATH end up
    /// the same string), so each kind of change runs alone; several `--replace-needed` pairs
    /// share one run safely. A RUNPATH to remove is first set to empty (patchelf overwrites the
    /// old text with `X`s then) and removed in a further run: removed directly, its text, a
    /// path of the build machine, would stay in the string table.
    fn invocations(&self) -> Vec<Vec<String>> {
        let mut runs = Vec::new();
        if !self.replace_needed.is_empty() {
            runs.push(
                self.replace_needed
                    .iter()
                    .flat_map(|(old, new)| {
                        ["--replace-needed".to_string(), old.clone(), new.clone()]
                    })
                    .collect(),
            );
        }
        if let Some(soname) = &self.soname {
            runs.push(vec!["--set-soname".to_string(), soname.clone()]);
        }
        match self.runpath.as_deref() {
            Some([]) => {
                runs.push(vec!["--set-rpath".to_string(), String::new()]);
                runs.push(vec!["--remove-rpath".to_string()]);
            }
            Some(entries) => runs.push(vec!["--set-rpath".to_string(), entries.join(":")]),
            None => {}
        }
        runs
    }
}

/// The `patchelf` program.
#[derive(Debug, Clone)]
pub struct Patchelf {
    program: PathBuf,
}

impl Patchelf {
    /// `patchelf` from PATH, checked to run.
    pub fn find() -> Result<Patchelf, ClosureError> {
        let program = PathBuf::from("patchelf");
        match Command::new(&program).arg("--version").output() {
            Ok(output) if output.status.success() => Ok(Patchelf { program }),
            Ok(output) => Err(ClosureError::PatchelfMissing {
                reason: format!(
                    "`patchelf --version` failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            }),
            Err(error) => Err(ClosureError::PatchelfMissing {
                reason: format!("cannot run patchelf: {error}"),
            }),
        }
    }

    /// Apply `edit` to the file `relative` inside `prefix`.
    pub fn apply(
        &self,
        prefix: &Contained,
        relative: &Path,
        edit: &ElfEdit,
    ) -> Result<(), ClosureError> {
        if edit.is_empty() {
            return Ok(());
        }
        let name = relative
            .file_name()
            .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
        let temporary =
            relative.with_file_name(Contained::temporary_name(&format!(".{name}.akpkg-patch-")));
        prefix.place(&prefix.path(relative), &temporary, LinkMode::Copy)?;
        let path = prefix.path(&temporary);
        let failure = edit
            .invocations()
            .iter()
            .find_map(|arguments| self.run(arguments, &path, &prefix.path(relative)).err());
        if let Some(error) = failure {
            prefix.remove_file(&temporary)?;
            return Err(error);
        }
        prefix.rename_within(&temporary, relative)?;
        Ok(())
    }
}

impl Patchelf {
    fn run(&self, arguments: &[String], file: &Path, named: &Path) -> Result<(), ClosureError> {
        let output = Command::new(&self.program)
            .args(arguments)
            .arg(file)
            .output()
            .map_err(ClosureError::io("cannot run patchelf on", named))?;
        if output.status.success() {
            return Ok(());
        }
        Err(ClosureError::Patchelf {
            path: named.to_path_buf(),
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_becomes_one_patchelf_run_per_kind_of_change() {
        let edit = ElfEdit {
            soname: Some("libz-0123abcd.so.1".to_string()),
            replace_needed: vec![
                ("libc.so.7".to_string(), "libc-1.so.7".to_string()),
                ("libd.so.1".to_string(), "libd-2.so.1".to_string()),
            ],
            runpath: Some(vec!["$ORIGIN".to_string(), "$ORIGIN/../lib".to_string()]),
        };
        assert_eq!(
            edit.invocations(),
            [
                vec![
                    "--replace-needed",
                    "libc.so.7",
                    "libc-1.so.7",
                    "--replace-needed",
                    "libd.so.1",
                    "libd-2.so.1"
                ],
                vec!["--set-soname", "libz-0123abcd.so.1"],
                vec!["--set-rpath", "$ORIGIN:$ORIGIN/../lib"],
            ]
        );
        let removal = ElfEdit {
            runpath: Some(Vec::new()),
            ..ElfEdit::default()
        };
        assert_eq!(
            removal.invocations(),
            [vec!["--set-rpath", ""], vec!["--remove-rpath"]]
        );
        assert!(ElfEdit::default().is_empty());
        assert!(ElfEdit::default().invocations().is_empty());
    }
}
