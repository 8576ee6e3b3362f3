//! One verified download, with retries.
//!
//! Transient failures are retried with exponential backoff: connection errors, timeouts, a body
//! cut short, and the statuses 429 and 5xx (a `Retry-After` in seconds is honoured, capped).
//! Anything else fails at once; a hash mismatch is never retried into acceptance.

use std::time::Duration;

use super::{
    ArtifactCache, ArtifactRequest, FetchError, FetchOptions, Progress, StoreFailure, mirrored,
    redacted,
};

/// The longest wait between attempts, whatever the backoff or `Retry-After` says.
const MAX_DELAY: Duration = Duration::from_secs(30);

pub fn client(options: &FetchOptions) -> Result<reqwest::blocking::Client, FetchError> {
    reqwest::blocking::Client::builder()
        .user_agent(concat!("akpkg/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(options.timeout)
        // The blocking client's timeout bounds each read and write, not the whole body.
        .timeout(options.timeout)
        .build()
        .map_err(|error| FetchError::Setup(error.to_string()))
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
    progress: &dyn Progress,
) -> Result<(), FetchError> {
    // `--index-url`s are asked first, in order; the lock's URL (mirrored) is the fallback.
    let url = match from_indexes(client, request, options) {
        Some(url) => url,
        None => {
            let original = request.url.as_deref().ok_or_else(|| FetchError::NoUrl {
                name: request.name.clone(),
                version: request.version.clone(),
                filename: request.filename.clone(),
            })?;
            mirrored(original, &options.mirrors)
        }
    };
    check_scheme(request, &url, &options.insecure_hosts)?;

    let mut delay = options.retry_delay;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match attempt_once(client, request, &url, cache, &options.netrc, progress) {
            Ok(()) => return Ok(()),
            Err(Attempt::Fatal(error)) => return Err(error),
            Err(Attempt::Transient(retry_after, message)) => {
                if attempt > options.retries {
                    return Err(FetchError::GaveUp {
                        name: request.name.clone(),
                        version: request.version.clone(),
                        url: redacted(&url),
                        attempts: attempt,
                        message,
                    });
                }
                let wait = retry_after.unwrap_or(delay).min(MAX_DELAY);
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
    let request = ArtifactRequest {
        name: "source".to_string(),
        version: String::new(),
        filename: url.rsplit('/').next().unwrap_or_default().to_string(),
        url: Some(url.to_string()),
        sha256: String::new(),
        size: None,
    };
    if options.offline {
        return Err(FetchError::OfflineMissing {
            count: 1,
            list: format!("  the source archive {}", redacted(url)),
        });
    }
    let url = mirrored(url, &options.mirrors);
    check_scheme(&request, &url, &options.insecure_hosts)?;
    let client = client(options)?;
    let io = |action: &'static str| {
        let path = destination.to_path_buf();
        move |source| FetchError::Io {
            action,
            path,
            source,
        }
    };
    let directory = destination.parent().unwrap_or(std::path::Path::new("."));
    let mut delay = options.retry_delay;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let outcome = super::netrc::authorize(client.get(&url), &url, &options.netrc)
            .send()
            .map_err(|error| without_url(&error))
            .and_then(|response| {
                if response.status().is_success() {
                    Ok(response)
                } else {
                    Err(format!("the server answered {}", response.status()))
                }
            });
        let failure = match outcome {
            Ok(mut response) => {
                let mut temporary = tempfile::NamedTempFile::new_in(directory)
                    .map_err(io("cannot create a temporary file beside"))?;
                match std::io::copy(&mut response, &mut temporary) {
                    Ok(_) => {
                        temporary
                            .persist(destination)
                            .map_err(|error| io("cannot write")(error.error))?;
                        return Ok(());
                    }
                    Err(error) => format!("the body was cut short: {error}"),
                }
            }
            Err(message) => message,
        };
        if attempt > options.retries {
            return Err(FetchError::GaveUp {
                name: request.name,
                version: request.version,
                url: redacted(&url),
                attempts: attempt,
                message: failure,
            });
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(MAX_DELAY);
    }
}

/// The URL of the file an index lists with this sha256 (or, without hashes, this name).
fn from_indexes(
    client: &reqwest::blocking::Client,
    request: &ArtifactRequest,
    options: &FetchOptions,
) -> Option<String> {
    options.index_urls.iter().find_map(|index| {
        match super::index::project_files(client, index, &request.name, &options.netrc) {
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
fn check_scheme(
    request: &ArtifactRequest,
    url: &str,
    insecure_hosts: &[String],
) -> Result<(), FetchError> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Ok(());
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback || insecure_hosts.iter().any(|allowed| allowed == host) {
        return Ok(());
    }
    Err(FetchError::InsecureUrl {
        name: request.name.clone(),
        version: request.version.clone(),
        url: redacted(url),
        host: host.to_string(),
    })
}

fn attempt_once(
    client: &reqwest::blocking::Client,
    request: &ArtifactRequest,
    url: &str,
    cache: &ArtifactCache,
    netrc: &super::Netrc,
    progress: &dyn Progress,
) -> Result<(), Attempt> {
    let response = super::netrc::authorize(client.get(url), url, netrc)
        .send()
        .map_err(|error| {
            Attempt::Transient(None, format!("request failed: {}", without_url(&error)))
        })?;
    let status = response.status();
    if status.as_u16() == 429 || status.is_server_error() {
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        return Err(Attempt::Transient(
            retry_after,
            format!("the server answered {status}"),
        ));
    }
    if !status.is_success() {
        return Err(Attempt::Fatal(FetchError::Status {
            name: request.name.clone(),
            version: request.version.clone(),
            url: redacted(url),
            status: status.as_u16(),
        }));
    }

    let expected_bytes = response.content_length().or(request.size);
    let mut body = Counting {
        inner: response,
        progress,
        count: 0,
    };
    let stored = cache.store_verified(&mut body, &request.sha256);
    if stored.is_err() {
        // This attempt's bytes no longer count towards the total.
        progress.bytes(-(body.count as i64));
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
            expected: request.sha256.clone(),
            actual,
        })),
    }
}

/// A body that reports each chunk it reads.
struct Counting<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
    count: u64,
}

impl<R: std::io::Read> std::io::Read for Counting<'_, R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.count += read as u64;
        self.progress.bytes(read as i64);
        Ok(read)
    }
}

/// reqwest's errors end with the URL, which may hold credentials; keep what and why.
fn without_url(error: &reqwest::Error) -> String {
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
