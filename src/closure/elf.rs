//! Reading ELF files (goblin) and finding libraries as this machine's dynamic loader would.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the dynamic loader reads of an ELF file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dynamic {
    /// `DT_NEEDED`, in order.
    pub needed: Vec<String>,
    /// `DT_RUNPATH` and `DT_RPATH` entries, split at `:`.
    pub search: Vec<String>,
    pub soname: Option<String>,
}

/// Whether `bytes` start like an ELF file.
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

/// The dynamic section of an ELF file, read from its program headers only: the symbol tables
/// (large in a Go binary) are never parsed. `None` when it is not a well-formed ELF file; an
/// empty [`Dynamic`] when it is statically linked.
pub fn read_dynamic(bytes: &[u8]) -> Option<Dynamic> {
    use goblin::elf::dynamic::{DT_RPATH, DT_RUNPATH, DT_SONAME};
    use goblin::elf::program_header::ProgramHeader;
    let header = goblin::elf::Elf::parse_header(bytes).ok()?;
    let context = goblin::container::Ctx::new(header.container().ok()?, header.endianness().ok()?);
    let program_headers = ProgramHeader::parse(
        bytes,
        usize::try_from(header.e_phoff).ok()?,
        usize::from(header.e_phnum),
        context,
    )
    .ok()?;
    let Some(dynamic) =
        goblin::elf::dynamic::Dynamic::parse(bytes, &program_headers, context).ok()?
    else {
        return Some(Dynamic::default());
    };
    let strings =
        goblin::strtab::Strtab::parse(bytes, dynamic.info.strtab, dynamic.info.strsz, 0).ok()?;
    let string_of = |tag: u64| {
        dynamic
            .dyns
            .iter()
            .filter(move |entry| entry.d_tag == tag)
            .filter_map(|entry| strings.get_at(usize::try_from(entry.d_val).ok()?))
    };
    Some(Dynamic {
        needed: dynamic
            .get_libraries(&strings)
            .iter()
            .map(|name| name.to_string())
            .collect(),
        search: string_of(DT_RUNPATH)
            .chain(string_of(DT_RPATH))
            .flat_map(|entry| entry.split(':'))
            .filter(|entry| !entry.is_empty())
            .map(str::to_string)
            .collect(),
        soname: string_of(DT_SONAME).next().map(str::to_string),
    })
}

/// `$ORIGIN` (or `${ORIGIN}`) in a RUNPATH entry replaced by `directory`.
pub fn expand_origin(entry: &str, directory: &Path) -> PathBuf {
    let directory = directory.display().to_string();
    PathBuf::from(
        entry
            .replace("${ORIGIN}", &directory)
            .replace("$ORIGIN", &directory),
    )
}

/// The RUNPATH entries of a file in `directory` (relative to the prefix at `prefix`), split
/// into those that stay inside the prefix (as written, without repeats; judged lexically,
/// `$ORIGIN/..` included) and those that leave it.
pub fn split_search(
    prefix: &Path,
    directory: &Path,
    search: &[String],
) -> (Vec<String>, Vec<String>) {
    let origin = prefix.join(directory);
    let mut inside: Vec<String> = Vec::new();
    let mut outside = Vec::new();
    for entry in search {
        let stays = expand_origin(entry, &origin)
            .strip_prefix(prefix)
            .is_ok_and(crate::contained::lexically_inside);
        if !stays {
            outside.push(entry.clone());
        } else if !inside.contains(entry) {
            inside.push(entry.clone());
        }
    }
    (inside, outside)
}

/// One ELF file of a prefix.
#[derive(Debug, Clone)]
pub struct PrefixElf {
    /// Relative to the prefix.
    pub relative: PathBuf,
    pub dynamic: Dynamic,
}

/// The ELF files below `root`: regular files named `*.so*` or under `bin/` (links are not
/// followed: `bin/python` may be the venv's link to the interpreter), malformed ones left out.
/// Bytecode caches, half the prefix's files and never an ELF file, are not read.
pub fn prefix_elf_files(root: &Path) -> Result<Vec<PrefixElf>, super::ClosureError> {
    let mut files = Vec::new();
    let walk = walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| entry.file_name() != "__pycache__");
    for entry in walk {
        let entry = entry.map_err(|error| {
            super::ClosureError::Io(crate::path_io::PathIoError::new(
                "cannot read",
                error.path().unwrap_or(root).to_path_buf(),
                error.into(),
            ))
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let relative = entry.path().strip_prefix(root).unwrap_or(entry.path());
        let name = entry.file_name().to_string_lossy();
        if !(name.contains(".so") || relative.starts_with("bin")) {
            continue;
        }
        let bytes = fs_err::read(entry.path())
            .map_err(super::ClosureError::io("cannot read", entry.path()))?;
        if !is_elf(&bytes) {
            continue;
        }
        // No loader would load it either: nothing it names is needed.
        let Some(dynamic) = read_dynamic(&bytes) else {
            tracing::debug!(path = %entry.path().display(), "not a well-formed ELF file");
            continue;
        };
        files.push(PrefixElf {
            relative: relative.to_path_buf(),
            dynamic,
        });
    }
    Ok(files)
}

/// soname → path, from `ldconfig -p` (this machine's native ABI only).
pub fn loader_cache() -> BTreeMap<String, PathBuf> {
    let output = Command::new("ldconfig")
        .arg("-p")
        .output()
        .or_else(|_| Command::new("/sbin/ldconfig").arg("-p").output());
    let Ok(output) = output else {
        return BTreeMap::new();
    };
    let mut cache = BTreeMap::new();
    // "\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1"
    for line in String::from_utf8_lossy(&output.stdout).lines().skip(1) {
        let Some((left, path)) = line.trim().split_once(" => ") else {
            continue;
        };
        let Some((soname, kind)) = left.split_once(" (") else {
            continue;
        };
        // ldconfig names the machine's ABI as `x86-64` or `AArch64`: compare loosely.
        let native = kind
            .to_ascii_lowercase()
            .contains(&std::env::consts::ARCH.replace('_', "-"));
        if native {
            cache
                .entry(soname.to_string())
                .or_insert_with(|| PathBuf::from(path));
        }
    }
    cache
}

/// path → (package, version), from `dpkg -S` and `dpkg-query`; empty without dpkg.
pub fn packages_of(paths: &[&PathBuf]) -> BTreeMap<PathBuf, (String, String)> {
    let mut owners = BTreeMap::new();
    if paths.is_empty() {
        return owners;
    }
    // With merged /usr, dpkg may know a file by its other name.
    let mut queried: Vec<(PathBuf, &PathBuf)> = Vec::new();
    for path in paths {
        queried.push(((*path).clone(), path));
        let text = path.display().to_string();
        let other = match text.strip_prefix("/usr") {
            Some(rest) => PathBuf::from(rest),
            None => PathBuf::from(format!("/usr{text}")),
        };
        queried.push((other, path));
    }
    let Ok(output) = Command::new("dpkg")
        .arg("-S")
        .args(queried.iter().map(|(query, _)| query))
        .output()
    else {
        return owners;
    };
    // "zlib1g:amd64: /lib/x86_64-linux-gnu/libz.so.1"
    let mut names = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Some((package, file)) = line.split_once(": ") else {
            continue;
        };
        let package = package.split(',').next().unwrap_or(package).trim();
        if let Some((_, original)) = queried.iter().find(|(query, _)| query == Path::new(file)) {
            names
                .entry((*original).clone())
                .or_insert_with(|| package.split(':').next().unwrap_or(package).to_string());
        }
    }
    let versions = versions_of(names.values());
    for (path, name) in names {
        let version = versions.get(&name).cloned().unwrap_or_default();
        owners.insert(path, (name, version));
    }
    owners
}

fn versions_of<'a>(names: impl Iterator<Item = &'a String>) -> BTreeMap<String, String> {
    let names: BTreeSet<&String> = names.collect();
    let Ok(output) = Command::new("dpkg-query")
        .args(["-W", "-f=${Package} ${Version}\\n"])
        .args(names)
        .output()
    else {
        return BTreeMap::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(name, version)| (name.to_string(), version.to_string()))
        .collect()
}

/// Debian's architecture name for this machine, for `pkg:deb` purls.
pub fn debian_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "i386",
        other => other,
    }
}
