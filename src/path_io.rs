//! The reason of a path I/O error, once: every stage's `Io { action, path, source }` prints
//! `{action} {path}: {source}`, and fs-err's errors carry the path in their own text
//! (``failed to create directory `/x` ``), which would print it twice. [`reason`] takes the
//! operating system's error back out of fs-err's wrapper.

/// `error` without fs-err's description of it (``failed to open file `/x`: ``), keeping its
/// kind and the operating system's reason; `error` itself when it is not fs-err's. fs-err
/// keeps the original error private (unless a feature, which would drop the reason from every
/// other message), so its own text is cut at the path's closing quote.
pub fn reason(error: std::io::Error) -> std::io::Error {
    let text = match error.get_ref() {
        Some(inner) => inner.to_string(),
        None => return error,
    };
    match text.rsplit_once("`: ") {
        Some((description, reason)) if description.starts_with("failed to ") => {
            std::io::Error::new(error.kind(), reason.to_string())
        }
        _ => error,
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
        // An error that is not fs-err's is kept as it is.
        let plain = std::io::Error::other("refused");
        assert_eq!(super::reason(plain).to_string(), "refused");
    }
}
