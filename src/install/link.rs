//! Put a file from the unpack cache into the prefix: copy, hard link or reflink.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::InstallError;

/// How files reach the prefix from the unpack cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LinkMode {
    /// An independent copy (the kernel may share extents where the file system can).
    #[default]
    Copy,
    /// A hard link to the cache's file: fastest, but the prefix and cache share inodes.
    Hardlink,
    /// A copy-on-write clone where the file system supports it, else a copy.
    Reflink,
}

/// Place `source` at `destination` (which must not exist). A hard link across file systems
/// falls back to a copy, with one warning per run.
pub fn place(
    source: &Path,
    destination: &Path,
    mode: LinkMode,
    warned: &AtomicBool,
) -> Result<(), InstallError> {
    match mode {
        LinkMode::Copy => copy(source, destination),
        LinkMode::Hardlink => match fs_err::hard_link(source, destination) {
            Ok(()) => Ok(()),
            Err(error) => {
                if !warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!("hard links from the cache failed ({error}); copying instead");
                }
                copy(source, destination)
            }
        },
        LinkMode::Reflink => reflink_copy::reflink_or_copy(source, destination)
            .map(|_| ())
            .map_err(InstallError::io("cannot clone into", destination)),
    }
}

fn copy(source: &Path, destination: &Path) -> Result<(), InstallError> {
    fs_err::copy(source, destination)
        .map(|_| ())
        .map_err(InstallError::io("cannot copy into", destination))
}
