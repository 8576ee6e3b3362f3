//! One verified download, with retries.
//!
//! Transient failures are retried with exponential backoff: connection errors, timeouts, a body
//! cut short, and the statuses 429 and 5xx (a `Retry-After` in seconds is honoured, capped).
//! Anything else fails at once; a hash mismatch is never retried into acceptance.

use std::time::{Duration, Instant};

use super::{
    ArtifactCache, ArtifactRequest, DownloadProgress, FetchError, FetchOptions, StoreFailure,
    mirrored, redacted,
};

/// The longest wait between attempts, whatever the backoff or `Retry-After` says.
const MAX_DELAY: Duration = Duration::from_secs(30);

/// Redirects followed at the most.
const MAX_REDIRECTS: usize = 10;

/// The HTTP client of the run's [`super::HttpService`]. Every redirect hop is checked
/// against the plain-HTTP rule, not only the first URL.
pub(super) fn client(options: &FetchOptions) -> Result<reqwest::blocking::Client, FetchError> {
    let insecure_hosts = options.insecure_hosts.clone();
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        match plain_http_host(attempt.url(), &insecure_hosts) {
            Some(host) => attempt.error(format!(
                "a redirect to plain HTTP on {host}, which is neither loopback nor an --allow-insecure-host"
            )),
            None => attempt.follow(),
        }
    });
    reqwest::blocking::Client::builder()
        .user_agent(concat!("akpkg/", env!("CARGO_PKG_VERSION")))
        .redirect(policy)
        .connect_timeout(options.limits.stall_timeout)
        // The blocking client's timeout bounds each read and write, not the whole body; the
        // body's rate and total time are bounded by `Bounded`.
        .timeout(options.limits.stall_timeout)
        .build()
        .map_err(|error| FetchError::Setup(error.to_string()))
}

/// Whether `response`'s status is worth another try under the one retry policy (408, 429 and
/// 5xx), and after how long the server asked for (`Retry-After` in seconds).
pub fn transient_status(response: &reqwest::blocking::Response) -> Option<Option<Duration>> {
    let status = response.status();
    if !(matches!(status.as_u16(), 408 | 429) || status.is_server_error()) {
        return None;
    }
    Some(
        response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs),
    )
}

/// One attempt's failure, for [`with_retries`].
pub enum Retryable<E> {
    /// Worth another try, after at least this long (from `Retry-After`), with this message.
    Transient(Option<Duration>, String),
    Fatal(E),
}

/// The one retry policy for callers that speak another protocol over the run's client (the OCI
/// registry): `attempt` runs again after a transient failure, with the same backoff, retry
/// count and deadline as downloads; `gave_up(attempts, last message)` is the error after that.
pub fn with_retries<T, E>(
    options: &FetchOptions,
    mut attempt: impl FnMut() -> Result<T, Retryable<E>>,
    gave_up: impl FnOnce(u32, String) -> E,
) -> Result<T, E> {
    let mut delay = options.retry_delay;
    let deadline = Instant::now() + options.limits.download_deadline;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (retry_after, message) = match attempt() {
            Ok(value) => return Ok(value),
            Err(Retryable::Fatal(error)) => return Err(error),
            Err(Retryable::Transient(retry_after, message)) => (retry_after, message),
        };
        let wait = retry_after.unwrap_or(delay).min(MAX_DELAY);
        if attempts > options.retries || Instant::now() + wait >= deadline {
            return Err(gave_up(attempts, message));
        }
        tracing::warn!(
            attempts,
            "{message}; retrying in {:.1}s",
            wait.as_secs_f64()
        );
        std::thread::sleep(wait);
        delay = (delay * 2).min(MAX_DELAY);
    }
}

/// What went wrong with one attempt.
enum Attempt {
    /// Worth another try, after at least this long (from `Retry-After`), with this message.
    Transient(Option<Duration>, String),
    Fatal(FetchError),
}

pub fn download(
    client: &reqwest::blocking::Client,
    request: &ArtifactRequest,
    cache: &ArtifactCache,
    options: &FetchOptions,
    progress: &dyn DownloadProgress,
) -> Result<(), FetchError> {
    // `--index-url`s are asked first, in order; the lock's URL (mirrored) is the fallback.
    let url = match from_indexes(request, options) {
        Some(url) => url,
        None => {
            let original = request.url.as_deref().ok_or_else(|| FetchError::NoUrl {
                name: request.name.clone(),
                version: request.version.clone(),
                filename: request.filename.to_string(),
            })?;
            mirrored(original, &options.mirrors)
        }
    };
    check_scheme(&Subject::of(request), &url, &options.insecure_hosts)?;

    let mut delay = options.retry_delay;
    let mut attempt = 0;
    let deadline = Instant::now() + options.limits.download_deadline;
    loop {
        attempt += 1;
        let bounds = Bounds::new(request.size, &options.limits, deadline);
        match attempt_once(client, request, &url, cache, options, &bounds, progress) {
            Ok(()) => return Ok(()),
            Err(Attempt::Fatal(error)) => return Err(error),
            Err(Attempt::Transient(retry_after, message)) => {
                let wait = retry_after.unwrap_or(delay).min(MAX_DELAY);
                if attempt > options.retries || Instant::now() + wait >= deadline {
                    return Err(FetchError::GaveUp {
                        name: request.name.clone(),
                        version: request.version.clone(),
                        url: redacted(&url),
                        attempts: attempt,
                        message,
                    });
                }
                tracing::warn!(url = %redacted(&url), attempt, "{message}; retrying in {:.1}s", wait.as_secs_f64());
                std::thread::sleep(wait);
                delay = (delay * 2).min(MAX_DELAY);
            }
        }
    }
}

/// Download `url` to `destination` without a pin, for sources checked afterwards by other
/// means (a release archive, checked by its git tree id). Same retries and scheme rules as
/// pinned downloads; the file appears under its name only when complete.
pub fn download_unpinned(
    url: &str,
    destination: &std::path::Path,
    options: &FetchOptions,
) -> Result<(), FetchError> {
    if options.offline {
        return Err(FetchError::OfflineMissing {
            count: 1,
            list: format!("  the source archive {}", redacted(url)),
        });
    }
    let client = client(options)?;
    download_checked_later(&client, ("source", ""), url, destination, options)
}

/// Download `url` to `destination` with `client`, for a file checked by the caller (a release
/// archive by its tree id, a Go module by its go.sum hash). `subject` is the (name, version)
/// messages name. Transient failures are retried; any other answer fails at once.
pub fn download_checked_later(
    client: &reqwest::blocking::Client,
    subject: (&str, &str),
    url: &str,
    destination: &std::path::Path,
    options: &FetchOptions,
) -> Result<(), FetchError> {
    let subject = Subject {
        name: subject.0,
        version: subject.1,
    };
    let url = mirrored(url, &options.mirrors);
    check_scheme(&subject, &url, &options.insecure_hosts)?;
    let directory = destination.parent().unwrap_or(std::path::Path::new("."));
    let mut delay = options.retry_delay;
    let mut attempt = 0;
    let deadline = Instant::now() + options.limits.download_deadline;
    loop {
        let bounds = Bounds::new(None, &options.limits, deadline);
        attempt += 1;
        let (retry_after, failure) = match attempt_unpinned(
            client,
            &subject,
            &url,
            directory,
            destination,
            &bounds,
            options,
        ) {
            Ok(()) => return Ok(()),
            Err(Attempt::Fatal(error)) => return Err(error),
            Err(Attempt::Transient(retry_after, message)) => (retry_after, message),
        };
        if attempt > options.retries {
            return Err(FetchError::GaveUp {
                name: subject.name.to_string(),
                version: subject.version.to_string(),
                url: redacted(&url),
                attempts: attempt,
                message: failure,
            });
        }
        std::thread::sleep(retry_after.unwrap_or(delay).min(MAX_DELAY));
        delay = (delay * 2).min(MAX_DELAY);
    }
}

fn attempt_unpinned(
    client: &reqwest::blocking::Client,
    subject: &Subject,
    url: &str,
    directory: &std::path::Path,
    destination: &std::path::Path,
    bounds: &Bounds,
    options: &FetchOptions,
) -> Result<(), Attempt> {
    let io = |action: &'static str| {
        let path = destination.to_path_buf();
        move |source| {
            Attempt::Fatal(FetchError::Io(crate::path_io::PathIoError {
                action,
                path,
                source,
            }))
        }
    };
    let mut response = super::netrc::authorize(client.get(url), url, &options.netrc)
        .send()
        .map_err(|error| Attempt::Transient(None, without_url(&error)))?;
    check_status(&response, subject, url)?;
    let mut temporary = tempfile::NamedTempFile::new_in(directory)
        .map_err(io("cannot create a temporary file beside"))?;
    let mut body = Bounded::new(&mut response, bounds, &super::NoDownloadProgress);
    let copied = std::io::copy(&mut body, &mut temporary);
    match body.exceeded {
        Some(Exceeded::Size) => {
            return Err(Attempt::Fatal(too_large(subject, url, bounds, body.count)));
        }
        Some(Exceeded::Deadline) => {
            return Err(Attempt::Fatal(FetchError::Deadline {
                name: subject.name.to_string(),
                version: subject.version.to_string(),
                url: redacted(url),
                seconds: options.limits.download_deadline.as_secs(),
                received: body.count,
            }));
        }
        Some(Exceeded::Stall) | None => {}
    }
    match copied {
        Ok(_) => temporary
            .persist(destination)
            .map(|_| ())
            .map_err(|error| io("cannot write")(error.error)),
        Err(error) => Err(Attempt::Transient(
            None,
            format!("the body was cut short: {error}"),
        )),
    }
}

/// The URL of the file an index lists with this sha256 (or, without hashes, this name).
fn from_indexes(request: &ArtifactRequest, options: &FetchOptions) -> Option<String> {
    let http = options.http().ok()?;
    options.index_urls.iter().find_map(|index| {
        match http.project_files(index, &request.name, options) {
            Ok(files) => files
                .into_iter()
                .find(|file| match &file.sha256 {
                    Some(sha256) => *sha256 == request.sha256,
                    None => file.filename == request.filename,
                })
                .map(|file| file.url),
            Err(message) => {
                tracing::warn!(index = %redacted(index), package = %request.name, "{message}");
                None
            }
        }
    })
}

/// Plain HTTP only to loopback or to hosts the user trusts by name.
fn check_scheme(subject: &Subject, url: &str, insecure_hosts: &[String]) -> Result<(), FetchError> {
    let insecure = |host: String| FetchError::InsecureUrl {
        name: subject.name.to_string(),
        version: subject.version.to_string(),
        url: redacted(url),
        host,
    };
    let parsed = reqwest::Url::parse(url).map_err(|_| insecure("(not a URL)".to_string()))?;
    match plain_http_host(&parsed, insecure_hosts) {
        Some(host) => Err(insecure(host)),
        None => Ok(()),
    }
}

/// The host of a plain-HTTP URL that is neither loopback nor trusted by name; `None` when the
/// URL may be fetched. The authority comes from the `url` crate, as the request's does, so
/// `http://H:P\@127.0.0.1/` is seen as host H, exactly where it would go.
pub(crate) fn plain_http_host(url: &reqwest::Url, insecure_hosts: &[String]) -> Option<String> {
    if url.scheme() != "http" {
        return None;
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(domain)) => domain == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
    if loopback || insecure_hosts.iter().any(|allowed| allowed == host) {
        None
    } else {
        Some(host.to_string())
    }
}

fn attempt_once(
    client: &reqwest::blocking::Client,
    request: &ArtifactRequest,
    url: &str,
    cache: &ArtifactCache,
    options: &FetchOptions,
    bounds: &Bounds,
    progress: &dyn DownloadProgress,
) -> Result<(), Attempt> {
    let response = super::netrc::authorize(client.get(url), url, &options.netrc)
        .send()
        .map_err(|error| {
            // A refused redirect is the server's answer, not a passing fault.
            if error.is_redirect() {
                Attempt::Fatal(FetchError::Redirect {
                    name: request.name.clone(),
                    version: request.version.clone(),
                    url: redacted(url),
                    message: without_url(&error),
                })
            } else {
                Attempt::Transient(None, format!("request failed: {}", without_url(&error)))
            }
        })?;
    check_status(&response, &Subject::of(request), url)?;

    let expected_bytes = response.content_length().or(request.size);
    if let Some(announced) = response.content_length()
        && announced > bounds.max_bytes
    {
        return Err(Attempt::Fatal(too_large(
            &Subject::of(request),
            url,
            bounds,
            announced,
        )));
    }
    let mut body = Bounded::new(response, bounds, progress);
    let stored = cache.store_verified(&mut body, &request.sha256);
    if stored.is_err() {
        // This attempt's bytes no longer count towards the total.
        progress.bytes(-(body.count as i64));
    }
    match body.exceeded {
        Some(Exceeded::Size) => {
            return Err(Attempt::Fatal(too_large(
                &Subject::of(request),
                url,
                bounds,
                body.count,
            )));
        }
        Some(Exceeded::Deadline) => {
            return Err(Attempt::Fatal(FetchError::Deadline {
                name: request.name.clone(),
                version: request.version.clone(),
                url: redacted(url),
                seconds: options.limits.download_deadline.as_secs(),
                received: body.count,
            }));
        }
        Some(Exceeded::Stall) | None => {}
    }
    match stored {
        Ok(()) => Ok(()),
        Err(StoreFailure::Read(error)) => Err(Attempt::Transient(
            None,
            match expected_bytes {
                Some(total) => format!(
                    "the connection broke after {} of {total} bytes ({error})",
                    body.count
                ),
                None => format!("the connection broke after {} bytes ({error})", body.count),
            },
        )),
        Err(StoreFailure::Write(error)) => Err(Attempt::Fatal(error)),
        Err(StoreFailure::Mismatch(actual)) => Err(Attempt::Fatal(FetchError::HashMismatch {
            name: request.name.clone(),
            version: request.version.clone(),
            url: redacted(url),
            expected: request.sha256.to_string(),
            actual,
        })),
    }
}

/// What a download may take: bytes, and time.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    /// The lock's size when it gives one, else the cap for unknown sizes.
    pub max_bytes: u64,
    /// Whether `max_bytes` is the lock's own size.
    pub from_lock: bool,
    pub deadline: Instant,
    pub stall_timeout: Duration,
}

impl Bounds {
    /// For a download of `size` bytes (when the lock gives it).
    fn new(size: Option<u64>, limits: &crate::limits::Limits, deadline: Instant) -> Bounds {
        Bounds {
            max_bytes: size.unwrap_or(limits.download_bytes),
            from_lock: size.is_some(),
            deadline,
            stall_timeout: limits.stall_timeout,
        }
    }
}

/// The one retry policy's view of a status: 408, 429 and 5xx are worth another try (after the
/// `Retry-After` seconds, when given); any other failure is final, since a missing file stays
/// missing and retrying a 404 only delays the message.
fn check_status(
    response: &reqwest::blocking::Response,
    subject: &Subject,
    url: &str,
) -> Result<(), Attempt> {
    let status = response.status();
    if let Some(retry_after) = transient_status(response) {
        return Err(Attempt::Transient(
            retry_after,
            format!("the server answered {status}"),
        ));
    }
    if !status.is_success() {
        return Err(Attempt::Fatal(FetchError::Status {
            name: subject.name.to_string(),
            version: subject.version.to_string(),
            url: redacted(url),
            status: status.as_u16(),
        }));
    }
    Ok(())
}

/// The distribution a download is for, in messages.
struct Subject<'a> {
    name: &'a str,
    version: &'a str,
}

impl Subject<'_> {
    fn of(request: &ArtifactRequest) -> Subject<'_> {
        Subject {
            name: &request.name,
            version: &request.version,
        }
    }
}

fn too_large(subject: &Subject, url: &str, bounds: &Bounds, received: u64) -> FetchError {
    FetchError::TooLarge {
        name: subject.name.to_string(),
        version: subject.version.to_string(),
        url: redacted(url),
        received,
        limit: bounds.max_bytes,
        why: if bounds.from_lock {
            "the size the lock gives".to_string()
        } else {
            "the cap for downloads of unknown size (raise it with --max-download-size)".to_string()
        },
    }
}

/// Which bound a body hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exceeded {
    Size,
    Deadline,
    Stall,
}

/// A body bounded in size, total time and rate, that reports each chunk it reads. A read that
/// crosses a bound fails, and `exceeded` says which.
pub(super) struct Bounded<'a, R> {
    inner: R,
    bounds: Bounds,
    progress: &'a dyn DownloadProgress,
    pub count: u64,
    pub exceeded: Option<Exceeded>,
    window_start: Instant,
    window_bytes: u64,
}

impl<'a, R> Bounded<'a, R> {
    pub fn new(inner: R, bounds: &Bounds, progress: &'a dyn DownloadProgress) -> Bounded<'a, R> {
        Bounded {
            inner,
            bounds: *bounds,
            progress,
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
        self.progress.bytes(read as i64);
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

/// A body from a peer that is not a locked download (a registry, the remote cache): at most
/// `max_bytes`, within the download deadline and the stall rule (bytes per interval, not per
/// read), so an endless or dripping body fails in bounded time and memory.
pub fn bounded_reader<R: std::io::Read>(
    inner: R,
    max_bytes: u64,
    limits: &crate::limits::Limits,
) -> impl std::io::Read + use<R> {
    let bounds = Bounds {
        max_bytes,
        from_lock: false,
        deadline: Instant::now() + limits.download_deadline,
        stall_timeout: limits.stall_timeout,
    };
    Bounded::new(inner, &bounds, &super::NoDownloadProgress)
}

/// reqwest's errors end with the URL, which may hold credentials; keep what and why.
pub fn without_url(error: &reqwest::Error) -> String {
    use std::error::Error;
    let mut message = String::new();
    let mut source = error.source();
    while let Some(cause) = source {
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    if message.is_empty() {
        if error.is_timeout() {
            "timed out".to_string()
        } else {
            "connection failed".to_string()
        }
    } else {
        message
    }
}
