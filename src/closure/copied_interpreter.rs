//! The interpreter copied into a self-contained prefix, laid out as CPython installs itself:
//!
//! ```text
//! PREFIX/bin/python3.X                   the executable (RUNPATH $ORIGIN/../lib)
//! PREFIX/bin/python, python3             → python3.X
//! PREFIX/lib/libpython3.X.so.1.0         when the interpreter is a shared build
//! PREFIX/lib/python3.X/                  the standard library and lib-dynload/
//! PREFIX/lib/python3.X/site-packages/    what akpkg installed, already there
//! ```
//!
//! CPython finds its prefix from where its executable is (the landmark `lib/python3.X/os.py`
//! beside `bin/`), so the prefix needs no `pyvenv.cfg` and runs from any path. Left out: the
//! test suite, IDLE, turtledemo, tkinter (it would graft X11), the static library's `config-*`
//! directory and the test extension modules. Every path of the build interpreter that the
//! copied files name (its `_sysconfigdata`, its compiled-in prefix) becomes [`PLACEHOLDER`]:
//! the interpreter uses them only when it cannot find its landmark.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use super::ClosureError;
use crate::contained::{Contained, Existing, FileMode, LinkMode};

/// What the copied interpreter's build paths become (the builds remap to the same path).
pub const PLACEHOLDER: &str = crate::interpreter::PLACEHOLDER_PREFIX;

const PROBE: &str = r#"
import json, os, platform, site, sys, sysconfig
base = sys.base_prefix
version = f"{sys.version_info.major}.{sys.version_info.minor}"
stdlib = sysconfig.get_path("stdlib")
dynload = os.path.join(stdlib, "lib-dynload")
library = None
if sysconfig.get_config_var("Py_ENABLE_SHARED"):
    library = os.path.join(sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME"))
json.dump({
    "executable": os.path.realpath(sys._base_executable),
    "base_prefix": base,
    "stdlib": stdlib,
    "version": platform.python_version(),
    "short_version": version,
    "implementation": sys.implementation.name,
    "library": library,
    "config_directory": os.path.basename(sysconfig.get_config_var("LIBPL") or ""),
    "standard_site_packages": os.path.join(base, "lib", f"python{version}", "site-packages")
        in site.getsitepackages([base]),
    "dynload": sorted(os.listdir(dynload)) if os.path.isdir(dynload) else [],
}, sys.stdout)
"#;

/// Top-level parts of the standard library a server never uses.
const LEFT_OUT: &[&str] = &[
    "__pycache__",
    "site-packages",
    "test",
    "idlelib",
    "turtledemo",
    "tkinter",
];

/// Extension modules of lib-dynload (by name prefix) that are CPython's own tests or Tk's.
const LEFT_OUT_MODULES: &[&str] = &[
    "_test",
    "_ctypes_test",
    "_xxtestfuzz",
    "xxlimited",
    "xxsubtype",
    "_tkinter",
];

#[derive(Debug, Clone, Deserialize)]
pub struct InterpreterFiles {
    pub executable: PathBuf,
    pub base_prefix: PathBuf,
    pub stdlib: PathBuf,
    pub version: String,
    pub short_version: String,
    implementation: String,
    pub library: Option<PathBuf>,
    config_directory: String,
    standard_site_packages: bool,
    dynload: Vec<String>,
}

/// What the manifest and the SBOM say of the copied interpreter.
#[derive(Debug, Clone, Serialize)]
pub struct InterpreterRecord {
    pub implementation: &'static str,
    pub version: String,
    pub executable: String,
    pub library: Option<String>,
    pub sha256: String,
    /// Standard-library modules byte-compiled.
    pub compiled: usize,
}

/// Ask `python` where its files are, and check it can be copied.
pub fn probe(python: &Path) -> Result<InterpreterFiles, ClosureError> {
    let refuse = |reason: String| ClosureError::Interpreter {
        python: python.to_path_buf(),
        reason,
    };
    let output = Command::new(python)
        .args(["-I", "-c", PROBE])
        .output()
        .map_err(|error| refuse(format!("cannot run it: {error}")))?;
    if !output.status.success() {
        return Err(refuse(format!(
            "it failed to describe itself: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let files: InterpreterFiles = serde_json::from_slice(&output.stdout)
        .map_err(|error| refuse(format!("its description is not JSON: {error}")))?;
    if files.implementation != "cpython" {
        return Err(refuse(format!(
            "it is {}, and only CPython's layout is known",
            files.implementation
        )));
    }
    let standard = files
        .base_prefix
        .join("lib")
        .join(format!("python{}", files.short_version));
    if files.stdlib != standard || !files.standard_site_packages {
        return Err(refuse(format!(
            "its standard library or site-packages is not at {}/lib/python{}/ as CPython installs it (a distribution's patched interpreter, such as Debian's, splits it); use a CPython built from source (pyenv, python-build-standalone), or leave out --self-contained and give --runtime-python",
            files.base_prefix.display(),
            files.short_version
        )));
    }
    Ok(files)
}

/// Copy the interpreter into the prefix at `root` (its `site-packages` already installed).
pub fn copy(files: &InterpreterFiles, root: &Path) -> Result<(), ClosureError> {
    let prefix = Contained::open(root)?;
    let executable_name = format!("python{}", files.short_version);
    let executable = Path::new("bin").join(&executable_name);
    prefix.create_dir_all(Path::new("bin"))?;
    prefix.remove_file(&executable)?;
    prefix.place(&files.executable, &executable, LinkMode::Copy)?;
    for name in ["python", "python3"] {
        let link = Path::new("bin").join(name);
        prefix.remove_file(&link)?;
        prefix.symlink(&link, Path::new(&executable_name))?;
    }
    if let Some(library) = &files.library {
        let name = library
            .file_name()
            .ok_or_else(|| ClosureError::Interpreter {
                python: files.executable.clone(),
                reason: format!("its library {} has no file name", library.display()),
            })?;
        let relative = Path::new("lib").join(name);
        prefix.create_dir_all(Path::new("lib"))?;
        prefix.remove_file(&relative)?;
        prefix.place(library, &relative, LinkMode::Copy)?;
    }
    let mut skip: Vec<&str> = LEFT_OUT.to_vec();
    if !files.config_directory.is_empty() {
        skip.push(&files.config_directory);
    }
    skip.extend(
        files
            .dynload
            .iter()
            .filter(|name| {
                LEFT_OUT_MODULES
                    .iter()
                    .any(|module| name.starts_with(module))
            })
            .map(String::as_str),
    );
    crate::archive::copy_tree_under(
        &files.stdlib,
        root,
        &Path::new("lib").join(format!("python{}", files.short_version)),
        &skip,
    )?;
    // The prefix is the interpreter's own now: a pyvenv.cfg would send it to the build's.
    prefix.remove_file(Path::new("pyvenv.cfg"))?;
    Ok(())
}

/// The copied interpreter's files (relative to the prefix): the executable, the library and
/// the standard library, `site-packages` left out.
pub fn copied_files(files: &InterpreterFiles, root: &Path) -> Vec<PathBuf> {
    let stdlib = Path::new("lib").join(format!("python{}", files.short_version));
    let mut copied = vec![Path::new("bin").join(format!("python{}", files.short_version))];
    if let Some(name) = files
        .library
        .as_ref()
        .and_then(|library| library.file_name())
    {
        copied.push(Path::new("lib").join(name));
    }
    let walk = walkdir::WalkDir::new(root.join(&stdlib))
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| {
            entry.file_name() != "site-packages" && entry.file_name() != "__pycache__"
        });
    copied.extend(
        walk.filter_map(Result::ok)
            .filter(|entry| entry.file_type().is_file())
            .filter_map(|entry| entry.path().strip_prefix(root).ok().map(Path::to_path_buf)),
    );
    copied
}

/// Overwrite the build interpreter's prefix in the copied files with [`same_length_path`]:
/// byte for byte, so that no offset moves in an ELF file and no string the linker merged into
/// the prefix's tail (`PY_VERSION`, "3.13.0", is the tail of ".../versions/3.13.0" in pyenv's
/// libpython) is cut. Returns how many files changed.
pub fn rewrite_build_prefix(
    files: &InterpreterFiles,
    root: &Path,
    copied: &[PathBuf],
) -> Result<usize, ClosureError> {
    if crate::interpreter::is_system_prefix(&files.base_prefix) {
        return Ok(0);
    }
    let needle = files.base_prefix.display().to_string();
    let replacement = same_length_path(&needle);
    let prefix = Contained::open(root)?;
    let mut changed = 0;
    for relative in copied {
        let path = root.join(relative);
        let mut bytes = fs_err::read(&path).map_err(ClosureError::io("cannot read", &path))?;
        if !overwrite(&mut bytes, needle.as_bytes(), replacement.as_bytes()) {
            continue;
        }
        let permissions = fs_err::metadata(&path)
            .map_err(ClosureError::io("cannot read", &path))?
            .permissions();
        let mode = FileMode::from_executable(
            std::os::unix::fs::PermissionsExt::mode(&permissions) & 0o111 != 0,
        );
        prefix.write(relative, &bytes, mode, Existing::Replace)?;
        changed += 1;
    }
    Ok(changed)
}

/// A path as long as `path`, naming [`PLACEHOLDER`] and keeping `path`'s last component:
/// `/root/.pyenv/versions/3.13.0` → `/akpkg-python/////////3.13.0` (repeated slashes name
/// the same directory).
pub fn same_length_path(path: &str) -> String {
    let last = path.rsplit('/').next().unwrap_or_default();
    let room = path.len().saturating_sub(last.len() + 1).max(1);
    let head = &PLACEHOLDER[..PLACEHOLDER.len().min(room)];
    let slashes = path.len().saturating_sub(head.len() + last.len()).max(1);
    let candidate = format!("{head}{}{last}", "/".repeat(slashes));
    if candidate.len() == path.len() {
        candidate
    } else {
        // A one-component path: all of it becomes the placeholder's start.
        PLACEHOLDER
            .chars()
            .chain(std::iter::repeat('/'))
            .take(path.len())
            .collect()
    }
}

/// Overwrite every `needle` in `bytes` with `replacement` (of the same length); whether any
/// was found.
fn overwrite(bytes: &mut [u8], needle: &[u8], replacement: &[u8]) -> bool {
    let found: Vec<usize> = memchr::memmem::find_iter(bytes, needle).collect();
    for start in &found {
        bytes[*start..*start + needle.len()].copy_from_slice(replacement);
    }
    !found.is_empty()
}

/// Byte-compile the copied standard library as installed modules are compiled.
pub fn compile_standard_library(
    files: &InterpreterFiles,
    root: &Path,
    copied: &[PathBuf],
    build_python: &Path,
    cache: &crate::cache::Cache,
) -> Result<usize, ClosureError> {
    let sources: Vec<PathBuf> = copied
        .iter()
        .filter(|relative| {
            relative
                .extension()
                .is_some_and(|extension| extension == "py")
        })
        .cloned()
        .collect();
    let mut version = files
        .short_version
        .split('.')
        .map(|part| part.parse::<u8>().unwrap_or(0));
    let short = (version.next().unwrap_or(3), version.next().unwrap_or(0));
    Ok(crate::install::compile_sources(
        root,
        build_python,
        &files.version,
        short,
        sources,
        cache,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_prefix_is_overwritten_byte_for_byte() {
        assert_eq!(
            same_length_path("/root/.pyenv/versions/3.13.0"),
            "/akpkg-python/////////3.13.0"
        );
        assert_eq!(same_length_path("/opt/py"), "/akp/py");
        assert_eq!(same_length_path("/x"), "/a");
        for path in ["/opt/python3.13", "/a/b", "/home/builder/.local/python"] {
            assert_eq!(same_length_path(path).len(), path.len(), "{path}");
        }
        // A string the linker merged into the prefix's tail keeps its bytes.
        let mut bytes = b"\0/build/py/3.13.0\0/build/py/lib\0".to_vec();
        let replacement = same_length_path("/build/py");
        assert!(overwrite(&mut bytes, b"/build/py", replacement.as_bytes()));
        assert_eq!(bytes, b"\0/akpkg/py/3.13.0\0/akpkg/py/lib\0".to_vec());
        assert!(!overwrite(&mut bytes, b"/build/py", replacement.as_bytes()));
    }
}
