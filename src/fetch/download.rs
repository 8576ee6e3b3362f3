//! One verified download, under the HTTP edge's one retry policy: a broken connection, a body
//! cut short or stalled, and 408, 429 and 5xx are tried again; anything else fails at once,
//! and a hash mismatch is never retried into acceptance.

use super::{
    ArtifactCache, ArtifactRequest, DownloadProgress, FetchError, FetchOptions, StoreFailure,
    mirrored, redacted,
};
use crate::http::{Bounded, Bounds, Exceeded, Retryable, transient_status, without_url};

/// One attempt's failure.
type Attempt = Retryable<FetchError>;

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
    let subject = Subject::of(request);
    check_scheme(&subject, &url, &options.network.insecure_hosts)?;
    let bounds = bounds(options, request.size);
    crate::http::with_retries(
        &options.network,
        &url,
        bounds.deadline,
        || attempt_once(client, request, &url, cache, options, &bounds, progress),
        |attempts, message| subject.gave_up(&url, attempts, message),
    )
}

/// The bounds of a download of `size` bytes (when the lock gives it, else the cap for unknown
/// sizes) that starts now; its deadline is the retries' too.
fn bounds(options: &FetchOptions, size: Option<u64>) -> Bounds {
    let limits = &options.network.limits;
    Bounds::new(
        size.unwrap_or(limits.download_bytes),
        limits,
        options.network.deadline(),
    )
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
    let client = options.http()?.client();
    download_checked_later(client, ("source", ""), url, destination, options)
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
        size_from_lock: false,
    };
    let url = mirrored(url, &options.mirrors);
    check_scheme(&subject, &url, &options.network.insecure_hosts)?;
    let directory = destination.parent().unwrap_or(std::path::Path::new("."));
    let bounds = bounds(options, None);
    crate::http::with_retries(
        &options.network,
        &url,
        bounds.deadline,
        || {
            attempt_unpinned(
                client,
                &subject,
                &url,
                directory,
                destination,
                &bounds,
                options,
            )
        },
        |attempts, message| subject.gave_up(&url, attempts, message),
    )
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
            Attempt::Fatal(FetchError::Io(crate::path_io::PathIoError::new(
                action, path, source,
            )))
        }
    };
    let mut response = crate::http::authorize(client.get(url), url, &options.network.netrc)
        .send()
        .map_err(|error| Attempt::Transient(None, without_url(&error)))?;
    check_status(&response, subject, url)?;
    let mut temporary = tempfile::NamedTempFile::new_in(directory)
        .map_err(io("cannot create a temporary file beside"))?;
    let mut body = Bounded::new(&mut response, bounds, &|_| {});
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
                seconds: options.network.limits.download_deadline.as_secs(),
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
        match super::index::project_files(http, index, &request.name, options) {
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
    match crate::http::plain_http_host(&parsed, insecure_hosts) {
        Some(host) => Err(insecure(host)),
        None => Ok(()),
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
    let response = crate::http::authorize(client.get(url), url, &options.network.netrc)
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
    let count_bytes = |count| progress.bytes(count);
    let mut body = Bounded::new(response, bounds, &count_bytes);
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
                seconds: options.network.limits.download_deadline.as_secs(),
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
    /// Whether the size bound is the lock's own (else the cap for unknown sizes).
    size_from_lock: bool,
}

impl Subject<'_> {
    fn of(request: &ArtifactRequest) -> Subject<'_> {
        Subject {
            name: &request.name,
            version: &request.version,
            size_from_lock: request.size.is_some(),
        }
    }

    fn gave_up(&self, url: &str, attempts: u32, message: String) -> FetchError {
        FetchError::GaveUp {
            name: self.name.to_string(),
            version: self.version.to_string(),
            url: redacted(url),
            attempts,
            message,
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
        why: if subject.size_from_lock {
            "the size the lock gives".to_string()
        } else {
            "the cap for downloads of unknown size (raise it with --max-download-size)".to_string()
        },
    }
}
