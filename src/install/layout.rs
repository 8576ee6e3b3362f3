//! The prefix: a virtual-environment layout for the target interpreter.
//!
//! ```text
//! PREFIX/pyvenv.cfg                 home = the runtime interpreter's directory
//! PREFIX/bin/python, python3, python3.X → the runtime interpreter
//! PREFIX/lib/python3.X/site-packages  (the interpreter's own `venv` scheme)
//! PREFIX/include/site/python3.X/<dist>   headers, as pip places them in a venv
//! ```

use std::path::{Path, PathBuf};

use super::InstallError;
use crate::contained::{Contained, Existing, FileMode};
use crate::interpreter::{Scheme, Target};
use crate::tags::TargetTags;

#[derive(Debug, Clone)]
pub struct Layout {
    /// Where files are written now: `DESTDIR/PREFIX`, or the prefix itself.
    pub root: PathBuf,
    /// Where the prefix will be used; written into absolute shebangs and bytecode.
    pub final_prefix: PathBuf,
    pub scheme: Scheme,
    pub python_version: (u8, u8),
    pub python_full_version: String,
    /// The interpreter the prefix runs with; `bin/python` points at it.
    pub runtime_python: PathBuf,
    /// The interpreter that compiles bytecode now (same major.minor as the runtime one).
    pub build_python: PathBuf,
    pub tags: TargetTags,
}

impl Layout {
    /// The layout for `target` at `prefix`, written under `destdir` when given.
    pub fn new(
        target: &Target,
        prefix: &Path,
        destdir: Option<&Path>,
        runtime_python: Option<&Path>,
    ) -> Result<Layout, InstallError> {
        let layout_error = |reason: String| InstallError::Layout {
            prefix: prefix.to_path_buf(),
            reason,
        };
        let final_prefix = std::path::absolute(prefix)
            .map_err(|error| layout_error(format!("cannot make the path absolute: {error}")))?;
        // `/`, `/.` and `/usr/..` all name the root.
        let below_root = final_prefix
            .strip_prefix("/")
            .ok()
            .and_then(crate::contained::contained_path);
        if below_root.is_none_or(|path| path.as_os_str().is_empty()) {
            return Err(layout_error(
                "the file system's root cannot be a prefix: it would place `pyvenv.cfg` and `bin/python*` in the host's own directories".to_string(),
            ));
        }
        let interpreter = target.interpreter.as_ref().ok_or_else(|| {
            layout_error(
                "installing needs a real interpreter (--python), not a described target"
                    .to_string(),
            )
        })?;
        let root = match destdir {
            // DESTDIR staging: PREFIX is re-rooted under DESTDIR, as `make install` does.
            Some(destdir) => destdir.join(final_prefix.strip_prefix("/").unwrap_or(&final_prefix)),
            None => final_prefix.clone(),
        };
        Ok(Layout {
            root,
            final_prefix,
            scheme: interpreter.scheme.clone(),
            python_version: interpreter.version,
            python_full_version: target.python_version.to_string(),
            runtime_python: runtime_python
                .map(Path::to_path_buf)
                .unwrap_or_else(|| interpreter.base_executable.clone()),
            build_python: interpreter.executable.clone(),
            tags: target.tags.clone(),
        })
    }

    /// The layout for `target` written at `root` (a staging directory) and used at
    /// `final_prefix` once it is moved there.
    pub fn staged(
        target: &Target,
        final_prefix: &Path,
        root: &Path,
        runtime_python: Option<&Path>,
    ) -> Result<Layout, InstallError> {
        let mut layout = Layout::new(target, final_prefix, None, runtime_python)?;
        layout.root = root.to_path_buf();
        Ok(layout)
    }

    /// `include/site/python3.X/<dist>`, relative to the prefix.
    pub fn headers(&self, distribution: &str) -> PathBuf {
        let (major, minor) = self.python_version;
        PathBuf::from(format!("include/site/python{major}.{minor}")).join(distribution)
    }

    /// Open the prefix's root as a contained destination, creating it.
    pub fn destination(&self) -> Result<Contained, InstallError> {
        Ok(Contained::create(&self.root)?)
    }

    /// The names the environment itself owns below the prefix: no wheel may install a file
    /// there (`bin/python*` are links to the interpreter, `pyvenv.cfg` is akpkg's own,
    /// `bin/activate*` are a venv's).
    pub fn reserved_reason(&self, relative: &Path) -> Option<&'static str> {
        if relative == Path::new("pyvenv.cfg") {
            return Some("the environment's own pyvenv.cfg");
        }
        let name = relative.file_name()?.to_string_lossy();
        if relative.parent() != Some(self.scheme.scripts.as_path()) {
            return None;
        }
        let (major, minor) = self.python_version;
        if name == "python"
            || name == format!("python{major}")
            || name == format!("python{major}.{minor}")
        {
            Some("a link to the environment's interpreter")
        } else if name.starts_with("activate") {
            Some("a name venv reserves for its activation scripts")
        } else {
            None
        }
    }

    /// Create the environment's skeleton; existing matching pieces are kept.
    pub fn create_environment(&self) -> Result<(), InstallError> {
        let destination = self.destination()?;
        for relative in [
            &self.scheme.purelib,
            &self.scheme.platlib,
            &self.scheme.scripts,
        ] {
            destination.create_dir_all(relative)?;
        }
        let (major, minor) = self.python_version;
        for name in [
            "python".to_string(),
            format!("python{major}"),
            format!("python{major}.{minor}"),
        ] {
            let link = self.scheme.scripts.join(&name);
            match fs_err::read_link(self.root.join(&link)) {
                Ok(existing) if existing == self.runtime_python => continue,
                Ok(_) => destination.remove_file(&link)?,
                Err(_) if destination.entry_type(&link).is_some() => {
                    return Err(InstallError::Layout {
                        prefix: self.final_prefix.clone(),
                        reason: format!(
                            "{} exists and is not a link to the interpreter",
                            self.root.join(&link).display()
                        ),
                    });
                }
                Err(_) => {}
            }
            destination.host_link(&link, &self.runtime_python)?;
        }
        let home = self.runtime_python.parent().unwrap_or(Path::new("/"));
        let config = format!(
            "home = {}\ninclude-system-site-packages = false\nversion = {}\nexecutable = {}\n",
            home.display(),
            self.python_full_version,
            self.runtime_python.display()
        );
        // Replaced, never written through: a `pyvenv.cfg` link planted in the prefix is removed.
        destination.write(
            Path::new("pyvenv.cfg"),
            config.as_bytes(),
            FileMode::Regular,
            Existing::Replace,
        )?;
        Ok(())
    }
}
