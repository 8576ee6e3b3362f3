//! Bounds on what hostile input can make akpkg spend: bytes, entries, time. Each has a default
//! far above what authentik 2025.12.4 needs (its largest wheel unpacks to about 60 MB, its git
//! archive holds about 10,000 files) and a command-line flag that raises it; each error names
//! the limit and the flag.
//!
//! The CLI reads them from its global flags and puts them into the options it gives each stage
//! (`FetchOptions::limits`, `InstallOptions::limits`, the unpacking functions' `limits`): no
//! stage reads a process global.

use std::time::Duration;

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes one archive (wheel, sdist, git archive) may unpack to.
    pub unpacked_bytes: u64,
    /// Entries one archive may hold.
    pub archive_entries: u64,
    /// Unpacked bytes per archive byte, checked once an archive has unpacked more than
    /// [`RATIO_FLOOR`] bytes (small archives of repetitive text compress well and are harmless).
    pub compression_ratio: u64,
    /// Bytes a download whose size the lock does not give may have.
    pub download_bytes: u64,
    /// A download (all its attempts together) that takes longer fails.
    pub download_deadline: Duration,
    /// A download that receives fewer than [`STALL_BYTES`] in this long is abandoned (and
    /// retried); it also bounds the wait for a connection and for the first byte.
    pub stall_timeout: Duration,
    /// Bytes an index page may have.
    pub index_page_bytes: u64,
}

/// The ratio check starts above this many unpacked bytes.
pub const RATIO_FLOOR: u64 = 64 * MIB;

/// Fewer bytes than this within the stall timeout is a stall.
pub const STALL_BYTES: u64 = 1024;

/// A marker or requirement longer than this is refused before it is parsed (real ones are a
/// few hundred bytes; pep508_rs's evaluation is superlinear in the clause count).
pub const MAX_REQUIREMENT_BYTES: usize = 16 * 1024;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            unpacked_bytes: 8 * GIB,
            archive_entries: 1_000_000,
            compression_ratio: 200,
            download_bytes: 2 * GIB,
            download_deadline: Duration::from_secs(30 * 60),
            stall_timeout: Duration::from_secs(30),
            index_page_bytes: 64 * MIB,
        }
    }
}

/// Why an archive went over a limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveLimitError {
    #[error("it unpacks to more than {limit} bytes (raise it with --max-unpacked-size)")]
    Bytes { limit: u64 },
    #[error("it holds more than {limit} entries (raise it with --max-archive-entries)")]
    Entries { limit: u64 },
    #[error(
        "it inflates more than {limit} times its size ({archive_bytes} bytes to over {unpacked} so far; raise it with --max-compression-ratio)"
    )]
    Ratio {
        limit: u64,
        archive_bytes: u64,
        unpacked: u64,
    },
}

/// Counts what one archive unpacks, against the limits.
#[derive(Debug)]
pub struct ArchiveBudget {
    limits: Limits,
    archive_bytes: u64,
    entries: u64,
    unpacked: u64,
}

impl ArchiveBudget {
    /// A budget for an archive whose file has `archive_bytes` bytes.
    pub fn new(archive_bytes: u64, limits: &Limits) -> ArchiveBudget {
        ArchiveBudget {
            limits: *limits,
            archive_bytes,
            entries: 0,
            unpacked: 0,
        }
    }

    /// One more entry.
    pub fn entry(&mut self) -> Result<(), ArchiveLimitError> {
        self.entries += 1;
        if self.entries > self.limits.archive_entries {
            return Err(ArchiveLimitError::Entries {
                limit: self.limits.archive_entries,
            });
        }
        Ok(())
    }

    /// `bytes` more unpacked.
    pub fn bytes(&mut self, bytes: u64) -> Result<(), ArchiveLimitError> {
        self.unpacked = self.unpacked.saturating_add(bytes);
        if self.unpacked > self.limits.unpacked_bytes {
            return Err(ArchiveLimitError::Bytes {
                limit: self.limits.unpacked_bytes,
            });
        }
        let ratio_limit = self
            .archive_bytes
            .max(1)
            .saturating_mul(self.limits.compression_ratio);
        if self.unpacked > RATIO_FLOOR && self.unpacked > ratio_limit {
            return Err(ArchiveLimitError::Ratio {
                limit: self.limits.compression_ratio,
                archive_bytes: self.archive_bytes,
                unpacked: self.unpacked,
            });
        }
        Ok(())
    }

    /// Bytes still allowed before the next check fails: a reader is cut there.
    pub fn remaining(&self) -> u64 {
        let by_size = self.limits.unpacked_bytes.saturating_sub(self.unpacked);
        let by_ratio = self
            .archive_bytes
            .max(1)
            .saturating_mul(self.limits.compression_ratio)
            .max(RATIO_FLOOR)
            .saturating_sub(self.unpacked);
        by_size.min(by_ratio)
    }
}

/// A reader that counts into a budget and stops one byte past what it allows, so an entry that
/// inflates without end is cut off instead of filling the disk.
pub struct Budgeted<'a, R> {
    pub inner: R,
    pub budget: &'a mut ArchiveBudget,
    /// The first limit hit, for the caller's message.
    pub exceeded: Option<ArchiveLimitError>,
}

impl<R: std::io::Read> std::io::Read for Budgeted<'_, R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let allowed = self.budget.remaining().saturating_add(1);
        let length = buffer
            .len()
            .min(usize::try_from(allowed).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buffer[..length])?;
        if let Err(error) = self.budget.bytes(read as u64) {
            let message = error.to_string();
            self.exceeded = Some(error);
            return Err(std::io::Error::other(message));
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_bomb_is_cut_at_the_ratio() {
        let mut budget = ArchiveBudget::new(1024, &Limits::default());
        let mut reader = Budgeted {
            inner: std::io::repeat(0),
            budget: &mut budget,
            exceeded: None,
        };
        let error = std::io::copy(&mut reader, &mut std::io::sink()).unwrap_err();
        assert!(
            error.to_string().contains("--max-compression-ratio"),
            "{error}"
        );
        assert!(matches!(
            reader.exceeded,
            Some(ArchiveLimitError::Ratio { .. })
        ));
        // It stopped right past the floor, not gigabytes later.
        assert!(budget.unpacked <= RATIO_FLOOR + 64 * 1024);
    }

    #[test]
    fn entries_are_counted() {
        let mut budget = ArchiveBudget::new(1, &Limits::default());
        budget.limits.archive_entries = 2;
        budget.entry().unwrap();
        budget.entry().unwrap();
        assert_eq!(
            budget.entry().unwrap_err().to_string(),
            "it holds more than 2 entries (raise it with --max-archive-entries)"
        );
        let mut small = Vec::new();
        let mut budget = ArchiveBudget::new(10, &Limits::default());
        Budgeted {
            inner: &b"hello"[..],
            budget: &mut budget,
            exceeded: None,
        }
        .read_to_end(&mut small)
        .unwrap();
        assert_eq!(small, b"hello");
    }
}
