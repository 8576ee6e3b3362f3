//! What the prefix's native code needs from the machine it runs on.
//!
//! Every ELF file of the prefix (extension modules, bundled libraries, the Go server) is read
//! with goblin; each library it needs (`DT_NEEDED`) is resolved as the dynamic loader would:
//! through the file's RUNPATH/RPATH (`$ORIGIN` expanded), then this machine's loader cache
//! (`ldconfig -p`). A library found inside the prefix needs nothing; one found on the system is
//! mapped to the Debian package that holds it (`dpkg -S`, `dpkg-query`), so a runtime image can
//! install exactly those (`apt-get install -y …`); one found nowhere is reported. A RUNPATH
//! that points outside the prefix (the build machine's interpreter, say) is reported too: it
//! works only where that path exists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::closure::elf::{
    expand_origin, loader_cache, packages_of, prefix_elf_files, split_search,
};

use super::AssembleError;

/// Packages every Debian system has (the C library and the compiler's runtime): a runtime
/// image need not install them, and the audit does not list them.
const BASE_PACKAGES: &[&str] = &["libc6", "libgcc-s1", "libstdc++6"];

/// The audit of a prefix's ELF files.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NativeAudit {
    pub elf_files: usize,
    /// Libraries found on this machine: soname → where, from which package, needed by whom.
    pub system_libraries: BTreeMap<String, SystemLibrary>,
    /// Libraries found nowhere: soname → the files that need them.
    pub unresolved: BTreeMap<String, Vec<String>>,
    /// RUNPATH/RPATH entries that leave the prefix: (file, entry).
    pub runpaths_outside: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SystemLibrary {
    pub path: PathBuf,
    /// `(package, version)`, when dpkg knows the file.
    pub package: Option<(String, String)>,
    /// Files of the prefix that need it (relative paths), the first few.
    pub needed_by: Vec<String>,
}

impl NativeAudit {
    /// The Debian packages a runtime image must install, base packages left out, sorted.
    pub fn packages(&self) -> Vec<String> {
        let names: BTreeSet<String> = self
            .system_libraries
            .values()
            .filter_map(|library| library.package.as_ref())
            .map(|(name, _)| name.clone())
            .filter(|name| !BASE_PACKAGES.contains(&name.as_str()))
            .collect();
        names.into_iter().collect()
    }

    /// `apt-get install -y …` of [`NativeAudit::packages`], or `None` when nothing is needed.
    pub fn install_line(&self) -> Option<String> {
        let packages = self.packages();
        (!packages.is_empty()).then(|| format!("apt-get install -y {}", packages.join(" ")))
    }
}

/// For a self-contained prefix: every library found on this machine that is not of the C
/// library's family is one the prefix should have carried.
pub fn not_carried(audit: &NativeAudit) -> Vec<String> {
    audit
        .system_libraries
        .iter()
        .filter(|(soname, _)| !crate::closure::SYSTEM_LIBRARIES.contains(&soname.as_str()))
        .map(|(soname, library)| {
            format!(
                "{soname}, which {} needs, comes from this machine ({}): a self-contained prefix must carry it",
                library.needed_by.join(", "),
                library.path.display()
            )
        })
        .collect()
}

/// Audit every ELF file below `prefix`.
pub fn audit(prefix: &Path) -> Result<NativeAudit, AssembleError> {
    let files = prefix_elf_files(prefix)?;
    let loader_cache = loader_cache();
    let mut audit = NativeAudit {
        elf_files: files.len(),
        ..NativeAudit::default()
    };
    let mut system: BTreeMap<String, (PathBuf, Vec<String>)> = BTreeMap::new();
    for file in &files {
        let relative = file.relative.display().to_string();
        let directory = file.relative.parent().unwrap_or(Path::new(""));
        let (inside, outside) = split_search(prefix, directory, &file.dynamic.search);
        audit
            .runpaths_outside
            .extend(outside.into_iter().map(|entry| (relative.clone(), entry)));
        // Each search directory with `$ORIGIN` expanded, once per file.
        let inside: Vec<PathBuf> = inside
            .iter()
            .map(|entry| expand_origin(entry, &prefix.join(directory)))
            .collect();
        for soname in &file.dynamic.needed {
            if inside
                .iter()
                .any(|directory| directory.join(soname).exists())
            {
                continue;
            }
            match loader_cache.get(soname) {
                Some(path) => {
                    let (_, needed_by) = system
                        .entry(soname.clone())
                        .or_insert_with(|| (path.clone(), Vec::new()));
                    if needed_by.len() < 3 {
                        needed_by.push(relative.clone());
                    }
                }
                None => audit
                    .unresolved
                    .entry(soname.clone())
                    .or_default()
                    .push(relative.clone()),
            }
        }
    }
    let paths: Vec<&PathBuf> = system.values().map(|(path, _)| path).collect();
    let packages = packages_of(&paths);
    audit.system_libraries = system
        .into_iter()
        .map(|(soname, (path, needed_by))| {
            let package = packages.get(&path).cloned();
            (
                soname,
                SystemLibrary {
                    path,
                    package,
                    needed_by,
                },
            )
        })
        .collect();
    audit.runpaths_outside.sort();
    audit.runpaths_outside.dedup();
    Ok(audit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A shared object built here with the C compiler, linking zlib: the audit finds libz on
    /// the system, in Debian's zlib1g, and its own RUNPATH when it leaves the prefix.
    #[test]
    fn a_library_linking_zlib_needs_zlib1g_and_an_outside_runpath_is_named() {
        let prefix = tempfile::tempdir().unwrap();
        let source = prefix.path().join("x.c");
        fs_err::write(
            &source,
            "#include <zlib.h>\nconst char *v(void) { return zlibVersion(); }\n",
        )
        .unwrap();
        let library = prefix.path().join("lib/x.cpython-313-x86_64-linux-gnu.so");
        fs_err::create_dir_all(library.parent().unwrap()).unwrap();
        let built = Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(&library)
            .arg(&source)
            .args([
                "-lz",
                "-Wl,-rpath,/opt/build-machine/lib:$ORIGIN/../libs:$ORIGIN/../../../escaped",
            ])
            .status()
            .unwrap();
        assert!(built.success());
        let audit = audit(prefix.path()).unwrap();
        assert_eq!(audit.elf_files, 1);
        let zlib = &audit.system_libraries["libz.so.1"];
        assert_eq!(
            zlib.package.as_ref().map(|(name, _)| name.as_str()),
            Some("zlib1g")
        );
        assert_eq!(zlib.needed_by, ["lib/x.cpython-313-x86_64-linux-gnu.so"]);
        assert_eq!(audit.packages(), ["zlib1g"]);
        assert_eq!(audit.install_line().unwrap(), "apt-get install -y zlib1g");
        let library = "lib/x.cpython-313-x86_64-linux-gnu.so".to_string();
        assert_eq!(
            audit.runpaths_outside,
            [
                (library.clone(), "$ORIGIN/../../../escaped".to_string()),
                (library, "/opt/build-machine/lib".to_string()),
            ]
        );
        assert!(audit.unresolved.is_empty());
    }
}
