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

/// The error of `action` on `path`, for `map_err`: any stage's error that wraps
/// [`PathIoError`] can be the result.
pub fn io<E: From<PathIoError>>(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> E {
    let path = path.to_path_buf();
    move |source| {
        E::from(PathIoError {
            action,
            path,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

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
