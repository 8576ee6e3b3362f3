//! The `patch` stage: reviewable edits to a source tree, applied before it is built.
//!
//! Two kinds of patch file, both plain text in `patches/`:
//! - **substitutions** (`*.toml`): `[[substitute]]` entries with `file`, the exact `old` text,
//!   the `new` text and the `count` of times `old` must occur (default 1). Like Nix's
//!   `substituteInPlace --replace-fail`, an entry that does not match exactly `count` times
//!   fails, naming the file and the text;
//! - **unified diffs** (`*.diff`): one file each, applied with diffy; the target is the `+++`
//!   path without its `b/`.
//!
//! A recipe lists its patches in order. All are computed in memory first and written only when
//! every one applied, so a failing set leaves the tree as it was.

mod error;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

pub use error::PatchError;

/// One patch file, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// Where it was read from, or its embedded name; for messages and manifests.
    pub origin: String,
    pub kind: PatchKind,
    /// sha256 of the patch file's text, for manifests.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchKind {
    Substitutions(Vec<Substitution>),
    /// The target file and the diff's text.
    Diff {
        file: String,
        text: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Substitution {
    pub file: String,
    pub old: String,
    pub new: String,
    #[serde(default = "one")]
    pub count: usize,
}

fn one() -> usize {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubstitutionFile {
    #[serde(default)]
    #[allow(dead_code)] // Read so reviewers can say why; not used by akpkg.
    description: Option<String>,
    substitute: Vec<Substitution>,
}

/// What applying (or checking) one patch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchReport {
    pub origin: String,
    pub sha256: String,
    /// The files it changed.
    pub files: Vec<String>,
}

impl Patch {
    /// Parse a patch file's text; `origin` ends in `.toml` or `.diff`.
    pub fn parse(origin: &str, text: &str) -> Result<Patch, PatchError> {
        let invalid = |message: String| PatchError::Invalid {
            patch: origin.to_string(),
            message,
        };
        let kind = if origin.ends_with(".toml") {
            let file: SubstitutionFile =
                toml::from_str(text).map_err(|error| invalid(error.to_string()))?;
            if file.substitute.is_empty() {
                return Err(invalid("it has no [[substitute]] entries".to_string()));
            }
            for substitution in &file.substitute {
                checked_relative(&substitution.file).ok_or_else(|| {
                    invalid(format!(
                        "`{}` is not a path inside the source tree",
                        substitution.file
                    ))
                })?;
                if substitution.old.is_empty() || substitution.count == 0 {
                    return Err(invalid(format!(
                        "the substitution in `{}` needs a non-empty `old` and a count of at least 1",
                        substitution.file
                    )));
                }
            }
            PatchKind::Substitutions(file.substitute)
        } else if origin.ends_with(".diff") || origin.ends_with(".patch") {
            let parsed = diffy::Patch::from_str(text)
                .map_err(|error| invalid(format!("not a unified diff: {error}")))?;
            let target = parsed
                .modified()
                .or(parsed.original())
                .map(|path| path.trim().trim_start_matches("b/").to_string())
                .ok_or_else(|| invalid("the diff names no file (`+++ b/PATH`)".to_string()))?;
            checked_relative(&target).ok_or_else(|| {
                invalid(format!("`{target}` is not a path inside the source tree"))
            })?;
            PatchKind::Diff {
                file: target,
                text: text.to_string(),
            }
        } else {
            return Err(invalid(
                "a patch file is a `.toml` of substitutions or a `.diff`".to_string(),
            ));
        };
        Ok(Patch {
            origin: origin.to_string(),
            kind,
            sha256: crate::digest::sha256_hex(text.as_bytes()),
        })
    }

    /// Read a patch file.
    pub fn read(path: &Path) -> Result<Patch, PatchError> {
        let text = fs_err::read_to_string(path).map_err(|source| {
            PatchError::Io(crate::path_io::PathIoError::new(
                "cannot read",
                path.to_path_buf(),
                source,
            ))
        })?;
        Patch::parse(&path.display().to_string(), &text)
    }
}

/// A relative path with no `..` or root, or `None`.
fn checked_relative(path: &str) -> Option<PathBuf> {
    let path = Path::new(path);
    path.components()
        .all(|component| matches!(component, Component::Normal(_) | Component::CurDir))
        .then(|| path.to_path_buf())
        .filter(|path| !path.as_os_str().is_empty())
}

/// Each patch checked alone against the pristine tree at `root` (so that every one that no
/// longer applies is found, not only the first): its origin and, when it fails, why.
pub fn check_each(patches: &[Patch], root: &Path) -> Vec<(String, Option<PatchError>)> {
    patches
        .iter()
        .map(|patch| {
            let failure = apply(std::slice::from_ref(patch), root, true).err();
            (patch.origin.clone(), failure)
        })
        .collect()
}

/// Apply `patches` in order to the tree at `root`; with `dry_run`, only check that they apply.
pub fn apply(
    patches: &[Patch],
    root: &Path,
    dry_run: bool,
) -> Result<Vec<PatchReport>, PatchError> {
    // Every file's new text, kept in memory until all patches applied. Files are read beneath
    // the tree: a link that leads out of it is not read through.
    let tree = crate::contained::Contained::open(root)?;
    let mut contents: BTreeMap<String, String> = BTreeMap::new();
    let mut reports = Vec::new();
    for patch in patches {
        let mut files = Vec::new();
        let text_of =
            |file: &str, contents: &mut BTreeMap<String, String>| -> Result<String, PatchError> {
                if let Some(text) = contents.get(file) {
                    return Ok(text.clone());
                }
                tree.read_to_string(Path::new(file))
                    .map_err(|source| PatchError::Target {
                        patch: patch.origin.clone(),
                        file: file.to_string(),
                        message: source.to_string(),
                    })
            };
        match &patch.kind {
            PatchKind::Substitutions(substitutions) => {
                for substitution in substitutions {
                    let text = text_of(&substitution.file, &mut contents)?;
                    let found = text.matches(substitution.old.as_str()).count();
                    if found != substitution.count {
                        return Err(PatchError::Mismatch {
                            patch: patch.origin.clone(),
                            file: substitution.file.clone(),
                            old: substitution.old.clone(),
                            expected: substitution.count,
                            found,
                        });
                    }
                    contents.insert(
                        substitution.file.clone(),
                        text.replace(substitution.old.as_str(), &substitution.new),
                    );
                    if !files.contains(&substitution.file) {
                        files.push(substitution.file.clone());
                    }
                }
            }
            PatchKind::Diff { file, text: diff } => {
                let text = text_of(file, &mut contents)?;
                let parsed = diffy::Patch::from_str(diff).map_err(|error| PatchError::Invalid {
                    patch: patch.origin.clone(),
                    message: error.to_string(),
                })?;
                let patched = diffy::apply(&text, &parsed).map_err(|error| PatchError::Target {
                    patch: patch.origin.clone(),
                    file: file.clone(),
                    message: format!("the diff does not apply: {error}"),
                })?;
                contents.insert(file.clone(), patched);
                files.push(file.clone());
            }
        }
        reports.push(PatchReport {
            origin: patch.origin.clone(),
            sha256: patch.sha256.clone(),
            files,
        });
    }
    if !dry_run {
        for (file, text) in &contents {
            // Replace rather than write through: the tree may share files with a cache, and a
            // link at the patched name must not lead the write elsewhere.
            let executable = std::fs::symlink_metadata(root.join(file)).is_ok_and(|metadata| {
                std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o111 != 0
            });
            tree.write(
                Path::new(file),
                text.as_bytes(),
                crate::contained::FileMode::from_executable(executable),
                crate::contained::Existing::Replace,
            )?;
        }
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let directory = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(directory.path().join("app")).unwrap();
        fs_err::write(
            directory.path().join("app/settings.py"),
            "BASE_DIR = Path(__file__).parent\nLOCALE_PATHS = [\"./locale\"]\n",
        )
        .unwrap();
        directory
    }

    const SUBSTITUTIONS: &str = r#"
description = "paths from the prefix"
[[substitute]]
file = "app/settings.py"
old = "BASE_DIR = Path(__file__).parent"
new = "BASE_DIR = Path(sys.prefix)"

[[substitute]]
file = "app/settings.py"
old = '"./locale"'
new = 'str(BASE_DIR / "locale")'
"#;

    const DIFF: &str = "--- a/app/settings.py\n+++ b/app/settings.py\n@@ -1,2 +1,3 @@\n+import sys\n BASE_DIR = Path(sys.prefix)\n LOCALE_PATHS = [str(BASE_DIR / \"locale\")]\n";

    #[test]
    fn substitutions_then_diffs_apply_in_order() {
        let directory = tree();
        let patches = [
            Patch::parse("paths.toml", SUBSTITUTIONS).unwrap(),
            Patch::parse("import.diff", DIFF).unwrap(),
        ];
        let checked = apply(&patches, directory.path(), true).unwrap();
        assert_eq!(checked[1].files, ["app/settings.py"]);
        // A dry run writes nothing.
        assert!(
            fs_err::read_to_string(directory.path().join("app/settings.py"))
                .unwrap()
                .contains("__file__")
        );
        apply(&patches, directory.path(), false).unwrap();
        insta::assert_snapshot!(fs_err::read_to_string(directory.path().join("app/settings.py")).unwrap(), @r#"
        import sys
        BASE_DIR = Path(sys.prefix)
        LOCALE_PATHS = [str(BASE_DIR / "locale")]
        "#);
    }

    #[test]
    fn a_file_reached_through_a_link_out_of_the_tree_is_not_read_or_written() {
        let outside = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(outside.path().join("app")).unwrap();
        let secret = outside.path().join("app/settings.py");
        fs_err::write(&secret, "BASE_DIR = Path(__file__).parent\n\"./locale\"\n").unwrap();
        let directory = tempfile::tempdir().unwrap();
        // `app` descends into a link that leads out: the patch's target is outside.
        std::os::unix::fs::symlink(outside.path().join("app"), directory.path().join("app"))
            .unwrap();
        let patches = [Patch::parse("paths.toml", SUBSTITUTIONS).unwrap()];
        let error = apply(&patches, directory.path(), false).unwrap_err();
        assert!(
            matches!(&error, PatchError::Target { file, .. } if file == "app/settings.py"),
            "{error}"
        );
        assert!(
            fs_err::read_to_string(&secret)
                .unwrap()
                .contains("__file__")
        );
    }

    #[test]
    fn a_patch_that_does_not_match_fails_and_changes_nothing() {
        let directory = tree();
        let first =
            "[[substitute]]\nfile = \"app/settings.py\"\nold = \"./locale\"\nnew = \"locale\"\n";
        let wrong = SUBSTITUTIONS.replace("parent\"\nnew", "parent.parent\"\nnew");
        let patches = [
            Patch::parse("locale.toml", first).unwrap(),
            Patch::parse("paths.toml", &wrong).unwrap(),
        ];
        let error = apply(&patches, directory.path(), false)
            .unwrap_err()
            .to_string();
        insta::assert_snapshot!(error, @r#"
        patch paths.toml: expected 1 occurrence(s) in app/settings.py of:
        BASE_DIR = Path(__file__).parent.parent
        but found 0; the source changed, so the patch must be updated
        "#);
        // The first patch applied in memory only: the file is as it was.
        assert!(
            fs_err::read_to_string(directory.path().join("app/settings.py"))
                .unwrap()
                .contains("\"./locale\"")
        );

        let twice = SUBSTITUTIONS.replace("new = \"BASE_DIR", "count = 2\nnew = \"BASE_DIR");
        let error = apply(
            &[Patch::parse("twice.toml", &twice).unwrap()],
            directory.path(),
            true,
        )
        .unwrap_err()
        .to_string();
        insta::assert_snapshot!(error, @r#"
        patch twice.toml: expected 2 occurrence(s) in app/settings.py of:
        BASE_DIR = Path(__file__).parent
        but found 1; the source changed, so the patch must be updated
        "#);
        let stale = DIFF.replace("sys.prefix", "somewhere_else");
        let error = apply(
            &[Patch::parse("stale.diff", &stale).unwrap()],
            directory.path(),
            true,
        )
        .unwrap_err()
        .to_string();
        insta::assert_snapshot!(error, @"patch stale.diff: app/settings.py: the diff does not apply: error applying hunk #1");
    }

    #[test]
    fn bad_patch_files_are_explained() {
        let message =
            |origin: &str, text: &str| Patch::parse(origin, text).unwrap_err().to_string();
        insta::assert_snapshot!(message("x.toml", "[[substitute]]\nfile = \"../etc/passwd\"\nold = \"a\"\nnew = \"b\"\n"), @"patch x.toml: `../etc/passwd` is not a path inside the source tree");
        insta::assert_snapshot!(message("x.toml", "description = \"nothing\"\nsubstitute = []\n"), @"patch x.toml: it has no [[substitute]] entries");
        insta::assert_snapshot!(message("x.sh", ""), @"patch x.sh: a patch file is a `.toml` of substitutions or a `.diff`");
    }
}
