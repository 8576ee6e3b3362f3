//! Bodies read within bounds: bytes, total time and rate, so an endless or dripping body fails
//! in bounded time and memory.

use std::time::{Duration, Instant};

/// What a body may take: bytes, and time.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_bytes: u64,
    /// When the request (all its attempts together) must have ended.
    pub deadline: Instant,
    /// Fewer than [`crate::limits::STALL_BYTES`] in this long is a stall.
    pub stall_timeout: Duration,
}

impl Bounds {
    /// At most `max_bytes`, by `deadline`, under the limits' stall rule.
    pub fn new(max_bytes: u64, limits: &crate::limits::Limits, deadline: Instant) -> Bounds {
        Bounds {
            max_bytes,
            deadline,
            stall_timeout: limits.stall_timeout,
        }
    }
}

/// Which bound a body hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    Size,
    Deadline,
    Stall,
}

/// A body bounded in size, total time and rate, that reports each chunk it reads to
/// `on_bytes`. A read that crosses a bound fails, and `exceeded` says which.
pub struct Bounded<'a, R> {
    inner: R,
    bounds: Bounds,
    on_bytes: &'a dyn Fn(i64),
    pub count: u64,
    pub exceeded: Option<Exceeded>,
    window_start: Instant,
    window_bytes: u64,
}

impl<'a, R> Bounded<'a, R> {
    pub fn new(inner: R, bounds: &Bounds, on_bytes: &'a dyn Fn(i64)) -> Bounded<'a, R> {
        Bounded {
            inner,
            bounds: *bounds,
            on_bytes,
            count: 0,
            exceeded: None,
            window_start: Instant::now(),
            window_bytes: 0,
        }
    }

    fn fail(&mut self, exceeded: Exceeded, message: String) -> std::io::Error {
        self.exceeded = Some(exceeded);
        std::io::Error::new(std::io::ErrorKind::TimedOut, message)
    }
}

impl<R: std::io::Read> std::io::Read for Bounded<'_, R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        // One byte past the bound is enough to know it was crossed.
        let allowed = self
            .bounds
            .max_bytes
            .saturating_sub(self.count)
            .saturating_add(1);
        let length = buffer
            .len()
            .min(usize::try_from(allowed).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buffer[..length])?;
        self.count += read as u64;
        (self.on_bytes)(read as i64);
        if self.count > self.bounds.max_bytes {
            return Err(self.fail(
                Exceeded::Size,
                format!("more than {} bytes", self.bounds.max_bytes),
            ));
        }
        let now = Instant::now();
        if now >= self.bounds.deadline {
            return Err(self.fail(
                Exceeded::Deadline,
                "the download deadline passed".to_string(),
            ));
        }
        self.window_bytes += read as u64;
        if now.duration_since(self.window_start) >= self.bounds.stall_timeout {
            if self.window_bytes < crate::limits::STALL_BYTES {
                let message = format!(
                    "stalled: {} bytes in the last {} s (the --stall-timeout)",
                    self.window_bytes,
                    self.bounds.stall_timeout.as_secs()
                );
                return Err(self.fail(Exceeded::Stall, message));
            }
            self.window_start = now;
            self.window_bytes = 0;
        }
        Ok(read)
    }
}

fn uncounted(_bytes: i64) {}

/// A body from a peer that is not a locked download (a registry, the remote cache, a token
/// service): at most `max_bytes`, within the download deadline and the stall rule (bytes per
/// interval, not per read).
pub fn bounded_reader<R: std::io::Read>(
    inner: R,
    max_bytes: u64,
    limits: &crate::limits::Limits,
) -> impl std::io::Read + use<R> {
    let deadline = Instant::now() + limits.download_deadline;
    Bounded::new(inner, &Bounds::new(max_bytes, limits, deadline), &uncounted)
}
