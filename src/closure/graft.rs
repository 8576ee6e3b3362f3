//! Every library the prefix's ELF files need, resolved and, for a self-contained prefix,
//! grafted into it as auditwheel's `repair` grafts into a wheel:
//!
//! 1. each `DT_NEEDED` is looked for where the loader would look: the file's RUNPATH entries
//!    that stay inside the prefix, then a file of that name elsewhere in the prefix (the
//!    copied `libpython`), whose directory is added to the RUNPATH as `$ORIGIN/…`;
//! 2. a library of the C library's family ([`SYSTEM_LIBRARIES`]) is the target's own;
//! 3. any other library is copied from where this machine's loader finds it into
//!    [`GRAFTED`] under a name holding its content's hash (`libz.so.1` →
//!    `libz-1a2b3c4d.so.1`), so no other copy of it in the process can be taken for it; the
//!    file's `DT_NEEDED` entry is renamed and `$ORIGIN/…/grafted` added to its RUNPATH, and the
//!    grafted library's own needs are resolved the same way;
//! 4. RUNPATH entries that leave the prefix (the build interpreter's `lib`) are dropped.
//!
//! Without `--self-contained` only 1, 2 and 4 apply: what the system must provide is listed
//! by the native audit instead.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use super::ClosureError;
use super::elf::{Dynamic, PrefixElf, expand_origin, loader_cache, read_dynamic, split_search};
use super::patchelf::{ElfEdit, Patchelf};
use crate::contained::{Contained, Existing, FileMode};

/// Where grafted libraries go, relative to the prefix.
pub const GRAFTED: &str = "lib/grafted";

/// Libraries every glibc system has and that must be the system's own (one C library per
/// process), as manylinux policies assume: the C library's family, the loader, and the GCC
/// runtime. libgcc_s and libstdc++ are kept out too: every Debian system has them (apt needs
/// them), and two copies in one process break C++ exceptions and unwinding across libraries.
pub const SYSTEM_LIBRARIES: &[&str] = &[
    "libc.so.6",
    "libm.so.6",
    "libmvec.so.1",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libutil.so.1",
    "libresolv.so.2",
    "libanl.so.1",
    "libnsl.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
    "libgcc_s.so.1",
    "libstdc++.so.6",
];

/// A library copied into the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraftedLibrary {
    pub soname: String,
    /// Relative to the prefix.
    pub file: PathBuf,
    /// Where this machine's loader found it.
    pub source: PathBuf,
    /// sha256 of the file as copied from the system (before its names were rewritten).
    pub sha256: String,
}

/// What the pass changed.
#[derive(Debug, Clone, Default)]
pub struct GraftReport {
    pub grafted: Vec<GraftedLibrary>,
    /// Prefix files rewritten (relative), grafted copies not included.
    pub patched: Vec<PathBuf>,
    /// RUNPATH entries dropped because they left the prefix.
    pub runpaths_dropped: usize,
}

/// The plan for one run: edits per prefix file and libraries to graft.
struct Plan<'a> {
    prefix: &'a Path,
    graft: bool,
    loader: BTreeMap<String, PathBuf>,
    /// File name → path (relative) of every shared object in the prefix.
    in_prefix: BTreeMap<String, PathBuf>,
    grafts: BTreeMap<String, Graft>,
}

struct Graft {
    source: PathBuf,
    /// The bytes read, hashed and parsed: the copy is exactly what the hashed name names.
    content: Vec<u8>,
    new_name: String,
    sha256: String,
    dynamic: Dynamic,
}

/// What the pass will change: the edits of prefix files, the libraries to copy in and their
/// own edits.
#[derive(Default)]
pub struct GraftPlan {
    edits: Vec<(PathBuf, ElfEdit)>,
    grafts: BTreeMap<String, Graft>,
    graft_edits: Vec<(PathBuf, ElfEdit)>,
    runpaths_dropped: usize,
}

impl GraftPlan {
    /// Whether anything is to be rewritten (and patchelf is needed).
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty() && self.grafts.is_empty()
    }
}

/// Resolve (and with `graft`, plan to graft) what every ELF file of the prefix at `root`
/// needs.
pub fn plan(root: &Path, files: &[PrefixElf], graft: bool) -> Result<GraftPlan, ClosureError> {
    let mut plan = Plan {
        prefix: root,
        graft,
        loader: loader_cache(),
        // The first file of each name, in the walk's sorted order, wins (collected in reverse).
        in_prefix: files
            .iter()
            .filter_map(|file| {
                let name = file.relative.file_name()?.to_string_lossy().into_owned();
                Some((name, file.relative.clone()))
            })
            .rev()
            .collect(),
        grafts: BTreeMap::new(),
    };
    let mut result = GraftPlan::default();
    for file in files {
        let (edit, dropped) = plan.edit_for(file)?;
        result.runpaths_dropped += dropped;
        if !edit.is_empty() {
            result.edits.push((file.relative.clone(), edit));
        }
    }
    result.graft_edits = plan.resolve_grafts()?;
    result.grafts = plan.grafts;
    Ok(result)
}

/// Copy the planned libraries in and rewrite every file the plan names.
pub fn apply(
    root: &Path,
    plan: GraftPlan,
    patchelf: &Patchelf,
) -> Result<GraftReport, ClosureError> {
    let prefix = Contained::open(root)?;
    let mut report = GraftReport {
        runpaths_dropped: plan.runpaths_dropped,
        ..GraftReport::default()
    };
    for (soname, graft) in &plan.grafts {
        let file = Path::new(GRAFTED).join(&graft.new_name);
        prefix.write(&file, &graft.content, FileMode::Regular, Existing::Replace)?;
        report.grafted.push(GraftedLibrary {
            soname: soname.clone(),
            file,
            source: graft.source.clone(),
            sha256: graft.sha256.clone(),
        });
    }
    for (relative, edit) in plan.edits.iter().chain(&plan.graft_edits) {
        patchelf.apply(&prefix, relative, edit)?;
    }
    report.patched = plan
        .edits
        .into_iter()
        .map(|(relative, _)| relative)
        .collect();
    Ok(report)
}

impl Plan<'_> {
    /// The edit one prefix file needs, and how many RUNPATH entries it drops.
    fn edit_for(&mut self, file: &PrefixElf) -> Result<(ElfEdit, usize), ClosureError> {
        let directory = file.relative.parent().unwrap_or(Path::new(""));
        let (mut runpath, dropped) = self.inside_entries(directory, &file.dynamic.search);
        let kept = runpath.clone();
        let mut added = Vec::new();
        let mut replace_needed = Vec::new();
        for soname in &file.dynamic.needed {
            if self.found_in(directory, &runpath, soname)
                || SYSTEM_LIBRARIES.contains(&soname.as_str())
            {
                continue;
            }
            if let Some(location) = self.in_prefix.get(soname)
                && location != &file.relative
            {
                added.push(origin_entry(
                    directory,
                    location.parent().unwrap_or(Path::new("")),
                ));
                continue;
            }
            if !self.graft {
                continue;
            }
            let outside: Vec<PathBuf> = file
                .dynamic
                .search
                .iter()
                .map(|entry| expand_origin(entry, &self.prefix.join(directory)))
                .collect();
            let new_name = self.queue_graft(soname, &outside, &file.relative)?;
            replace_needed.push((soname.clone(), new_name));
            added.push(origin_entry(directory, Path::new(GRAFTED)));
        }
        for entry in added {
            if !runpath.contains(&entry) {
                runpath.push(entry);
            }
        }
        let edit = ElfEdit {
            soname: None,
            runpath: (dropped > 0 || runpath != kept).then_some(runpath),
            replace_needed,
        };
        Ok((edit, dropped))
    }

    /// The RUNPATH entries that stay inside the prefix, as written, and how many do not.
    fn inside_entries(&self, directory: &Path, search: &[String]) -> (Vec<String>, usize) {
        let (inside, outside) = split_search(self.prefix, directory, search);
        (inside, outside.len())
    }

    fn found_in(&self, directory: &Path, runpath: &[String], soname: &str) -> bool {
        runpath.iter().any(|entry| {
            expand_origin(entry, &self.prefix.join(directory))
                .join(soname)
                .is_file()
        })
    }

    /// Queue `soname` for grafting (found through `search`, then the loader cache); its new
    /// name.
    fn queue_graft(
        &mut self,
        soname: &str,
        search: &[PathBuf],
        needed_by: &Path,
    ) -> Result<String, ClosureError> {
        if let Some(graft) = self.grafts.get(soname) {
            return Ok(graft.new_name.clone());
        }
        let source = search
            .iter()
            .map(|directory| directory.join(soname))
            .find(|candidate| candidate.is_file())
            .or_else(|| self.loader.get(soname).cloned())
            .ok_or_else(|| ClosureError::Unresolved {
                soname: soname.to_string(),
                needed_by: needed_by.to_path_buf(),
            })?;
        let bytes = fs_err::read(&source).map_err(ClosureError::io("cannot read", &source))?;
        let dynamic = read_dynamic(&bytes).ok_or_else(|| ClosureError::MalformedElf {
            path: source.clone(),
        })?;
        let sha256 = crate::digest::sha256_hex(&bytes);
        let new_name = hashed_name(soname, &sha256);
        self.grafts.insert(
            soname.to_string(),
            Graft {
                source,
                content: bytes,
                new_name: new_name.clone(),
                sha256,
                dynamic,
            },
        );
        Ok(new_name)
    }

    /// Resolve what the grafted libraries need (grafting more), and the edit each needs: its
    /// new soname, its needs renamed, `$ORIGIN` as its only RUNPATH.
    fn resolve_grafts(&mut self) -> Result<Vec<(PathBuf, ElfEdit)>, ClosureError> {
        let mut done: BTreeSet<String> = BTreeSet::new();
        let mut edits = Vec::new();
        loop {
            let pending: Vec<String> = self
                .grafts
                .keys()
                .filter(|soname| !done.contains(*soname))
                .cloned()
                .collect();
            if pending.is_empty() {
                return Ok(edits);
            }
            for soname in pending {
                done.insert(soname.clone());
                let (needed, source, new_name, search, had_runpath) = {
                    let graft = &self.grafts[&soname];
                    let directory = graft.source.parent().unwrap_or(Path::new("/"));
                    (
                        graft.dynamic.needed.clone(),
                        graft.source.clone(),
                        graft.new_name.clone(),
                        graft
                            .dynamic
                            .search
                            .iter()
                            .map(|entry| expand_origin(entry, directory))
                            .chain([directory.to_path_buf()])
                            .collect::<Vec<_>>(),
                        !graft.dynamic.search.is_empty(),
                    )
                };
                let mut replace_needed = Vec::new();
                for dependency in needed {
                    if SYSTEM_LIBRARIES.contains(&dependency.as_str()) {
                        continue;
                    }
                    let renamed = self.queue_graft(&dependency, &search, &source)?;
                    replace_needed.push((dependency, renamed));
                }
                // Its siblings in lib/grafted, and nothing outside.
                let runpath = if !replace_needed.is_empty() {
                    Some(vec!["$ORIGIN".to_string()])
                } else if had_runpath {
                    Some(Vec::new())
                } else {
                    None
                };
                edits.push((
                    Path::new(GRAFTED).join(&new_name),
                    ElfEdit {
                        soname: Some(new_name),
                        replace_needed,
                        runpath,
                    },
                ));
            }
        }
    }
}

/// `$ORIGIN/<the way from directory to target>`, both relative to the prefix.
fn origin_entry(directory: &Path, target: &Path) -> String {
    let from: Vec<Component<'_>> = directory.components().collect();
    let to: Vec<Component<'_>> = target.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut way = PathBuf::new();
    for _ in common..from.len() {
        way.push("..");
    }
    for component in &to[common..] {
        way.push(component);
    }
    if way.as_os_str().is_empty() {
        "$ORIGIN".to_string()
    } else {
        format!("$ORIGIN/{}", way.display())
    }
}

/// `libz.so.1` with content hash `1a2b3c4d…` → `libz-1a2b3c4d.so.1`, as auditwheel names grafted
/// libraries.
pub fn hashed_name(soname: &str, sha256: &str) -> String {
    let short = &sha256[..sha256.len().min(8)];
    match soname.find(".so") {
        Some(index) => format!("{}-{short}{}", &soname[..index], &soname[index..]),
        None => format!("{soname}-{short}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grafted_names_hold_the_hash_before_the_suffix() {
        assert_eq!(hashed_name("libz.so.1", "1a2b3c4d5e"), "libz-1a2b3c4d.so.1");
        assert_eq!(
            hashed_name("libxmlsec1-openssl.so.1", "00ff00ff00"),
            "libxmlsec1-openssl-00ff00ff.so.1"
        );
        assert_eq!(hashed_name("libodd", "abcdef0123"), "libodd-abcdef01");
    }

    #[test]
    fn origin_entries_climb_to_the_common_directory() {
        assert_eq!(
            origin_entry(
                Path::new("lib/python3.13/site-packages/lxml"),
                Path::new(GRAFTED)
            ),
            "$ORIGIN/../../../grafted"
        );
        assert_eq!(
            origin_entry(Path::new("bin"), Path::new("lib")),
            "$ORIGIN/../lib"
        );
        assert_eq!(origin_entry(Path::new("lib"), Path::new("lib")), "$ORIGIN");
        assert_eq!(
            origin_entry(Path::new("lib/python3.13/lib-dynload"), Path::new("lib")),
            "$ORIGIN/../.."
        );
    }
}
