//! Path I/O errors, shared by every stage: [`PathIoError`] prints `{action} {path}: {reason}`,
//! the path once: and fs-err's errors carry the path in their own text
//! (``failed to create directory `/x` ``), which would print it twice. [`Reason`] shows the
//! operating system's reason alone.

/// Shows an I/O error without fs-err's description of it (``failed to open file `/x`: ``):
/// its reason only, the path being printed by the message around it. fs-err keeps the
/// original error private (unless a feature, which would drop the reason from every other
/// message), so its text is cut after the path's closing quote. Any other error shows as it is.
pub struct Reason<'a>(pub &'a std::io::Error);

impl std::fmt::Display for Reason<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.0.to_string();
        match text.rsplit_once("`: ") {
            Some((description, reason)) if description.starts_with("failed to ") => {
                formatter.write_str(reason)
            }
            _ => formatter.write_str(&text),
        }
    }
}

/// The one path I/O error every stage wraps (`Io(#[from] PathIoError)`): what was being done,
/// to which path, and the operating system's reason, printed as `{action} {path}: {reason}`.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {}", path.display(), Reason(source))]
pub struct PathIoError {
    pub action: &'static str,
    pub path: std::path::PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl PathIoError {
    pub fn new(
        action: &'static str,
        path: impl Into<std::path::PathBuf>,
        source: std::io::Error,
    ) -> PathIoError {
        PathIoError {
            action,
            path: path.into(),
            source,
        }
    }
}

/// The error of `action` on `path`, for `map_err`: any stage's error that wraps
/// [`PathIoError`] can be the result.
pub fn io<E: From<PathIoError>>(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> E + use<E> {
    let path = path.to_path_buf();
    move |source| E::from(PathIoError::new(action, path, source))
}

/// A new directory in the system's temporary directory whose name starts with `prefix`,
/// removed when the handle is dropped: the one way akpkg makes scratch space.
pub fn scratch_directory(prefix: &str) -> Result<tempfile::TempDir, PathIoError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(io(
            "cannot create a temporary directory in",
            &std::env::temp_dir(),
        ))
}

/// An exclusively locked file (flock, created when missing), released when the handle is
/// dropped or the process dies: the one lock akpkg takes (stagings, build directories, the web
/// stage's shared npm state). `wait` blocks until it is free; otherwise a held lock is an error
/// (`WouldBlock`).
pub fn lock_exclusive(path: &std::path::Path, wait: bool) -> Result<fs_err::File, PathIoError> {
    let file = fs_err::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io("cannot open the lock file", path))?;
    let operation = if wait {
        rustix::fs::FlockOperation::LockExclusive
    } else {
        rustix::fs::FlockOperation::NonBlockingLockExclusive
    };
    rustix::fs::flock(file.file(), operation).map_err(|error| PathIoError {
        action: "cannot lock",
        path: path.to_path_buf(),
        source: error.into(),
    })?;
    Ok(file)
}

/// Remove the directories in `parent` whose names start with `prefix` and that no live
/// process holds: each is locked by its owner through its file `lock` ([`lock_exclusive`]), so
/// one whose lock can be taken was left by a process that died (killed, out of memory); one
/// without its lock file died before taking it, when it is older than a minute (a younger one
/// may be about to take it). Best effort: what cannot be removed stays for the next run.
pub fn remove_abandoned(parent: &std::path::Path, prefix: &str, lock: &str) {
    let Ok(entries) = fs_err::read_dir(parent) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let ours = entry.file_name().to_string_lossy().starts_with(prefix)
            && entry.file_type().is_ok_and(|kind| kind.is_dir());
        if !ours {
            continue;
        }
        let lock = path.join(lock);
        let abandoned = if lock.exists() {
            lock_exclusive(&lock, false).is_ok()
        } else {
            fs_err::metadata(&path)
                .and_then(|metadata| metadata.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(60))
        };
        if abandoned {
            tracing::info!(path = %path.display(), "removing a directory a dead run left");
            let _ = fs_err::remove_dir_all(&path);
        }
    }
}

/// Open `path` for reading only when it is a regular file: a link at its last component is
/// not followed, and a FIFO, socket or device is refused without blocking on it. The one way to
/// open a file named by input or found below a directory akpkg did not write (a layout's
/// blobs, a prefix's RECORD rows, a module proxy's files, the cache's entries, key files).
pub fn open_regular(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(i32::try_from(flags.bits()).unwrap_or_default())
        .open(path)
        .map_err(|error| match error.raw_os_error() {
            Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() => std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a symbolic link, which is not followed here",
            ),
            _ => error,
        })?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("not a regular file but {}", describe(kind)),
        ));
    }
    Ok(file)
}

/// [`open_regular`], read whole.
pub fn read_regular(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut open_regular(path)?, &mut bytes)?;
    Ok(bytes)
}

/// [`read_regular`], as UTF-8 text.
pub fn read_regular_to_string(path: &std::path::Path) -> std::io::Result<String> {
    String::from_utf8(read_regular(path)?)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

fn describe(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "a special file"
    }
}

/// A FIFO at `path`, for tests of the readers that must refuse one.
#[cfg(test)]
pub(crate) fn make_fifo(path: &std::path::Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .expect("a FIFO in a temporary directory");
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn directories_of_dead_runs_are_removed_and_live_ones_kept() {
        let parent = tempfile::tempdir().unwrap();
        let make = |name: &str, lock: bool| {
            let path = parent.path().join(name);
            fs_err::create_dir_all(path.join("inside")).unwrap();
            if lock {
                fs_err::write(path.join(".lock"), "").unwrap();
            }
            path
        };
        let dead = make("akpkg-build-dead", true);
        let live = make("akpkg-build-live", true);
        let _held = super::lock_exclusive(&live.join(".lock"), false).unwrap();
        let young = make("akpkg-build-young", false);
        let other = make("someone-else", true);
        super::remove_abandoned(parent.path(), "akpkg-build-", ".lock");
        assert!(!dead.exists());
        assert!(live.join("inside").is_dir());
        assert!(
            young.is_dir(),
            "a directory without its lock may be about to take it"
        );
        assert!(other.is_dir());
        // A held lock is refused to a second taker, without waiting.
        let error = super::lock_exclusive(&live.join(".lock"), false).unwrap_err();
        assert!(error.to_string().starts_with("cannot lock"), "{error}");
    }

    #[test]
    fn only_regular_files_are_opened_and_links_are_not_followed() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("file");
        fs_err::write(&file, "bytes").unwrap();
        assert_eq!(super::read_regular(&file).unwrap(), b"bytes");
        let link = directory.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let fifo = directory.path().join("fifo");
        crate::path_io::make_fifo(&fifo);
        for (path, reason) in [
            (&link, "a symbolic link"),
            (&fifo, "not a regular file but a FIFO"),
            (
                &directory.path().to_path_buf(),
                "not a regular file but a directory",
            ),
            (
                &Path::new("/dev/zero").to_path_buf(),
                "not a regular file but a device",
            ),
        ] {
            let error = super::read_regular(path).unwrap_err();
            assert!(error.to_string().contains(reason), "{path:?}: {error}");
        }
    }

    /// The doubled path must not come back: each stage's message names the path once.
    #[test]
    fn a_path_is_printed_once() {
        let path = Path::new("/proc/akpkg-not-there/directory");
        let failed = || fs_err::create_dir(path).unwrap_err();
        insta::assert_snapshot!(
            crate::assemble::AssembleError::io("cannot create", path)(failed()).to_string(),
            @"cannot create /proc/akpkg-not-there/directory: No such file or directory (os error 2)"
        );
        insta::assert_snapshot!(
            crate::install::InstallError::io("cannot create", path)(failed()).to_string(),
            @"cannot create /proc/akpkg-not-there/directory: No such file or directory (os error 2)"
        );
        insta::assert_snapshot!(
            crate::closure::ClosureError::io("cannot create", path)(failed()).to_string(),
            @"cannot create /proc/akpkg-not-there/directory: No such file or directory (os error 2)"
        );
        let fetch = crate::fetch::FetchError::Io(crate::path_io::PathIoError {
            action: "cannot create",
            path: path.to_path_buf(),
            source: failed(),
        });
        insta::assert_snapshot!(
            fetch.to_string(),
            @"cannot create /proc/akpkg-not-there/directory: No such file or directory (os error 2)"
        );
        // An error that is not fs-err's shows as it is.
        let plain = std::io::Error::other("refused");
        assert_eq!(super::Reason(&plain).to_string(), "refused");
    }
}
