//! The HTTP edge every stage talks to servers through, below them all: `fetch` (artifacts,
//! index pages, npm tarballs, Go modules), the OCI `registry` and the remote cache on it, and
//! release following. Modelled on uv-client: one service per run (see [`HttpService`]), one
//! retry policy ([`with_retries`]), one rule for plain HTTP ([`plain_http_host`]), bodies read
//! within bounds ([`Bounded`]), credentials from `~/.netrc` ([`Netrc`]).
//!
//! Nothing here knows what is downloaded or why: each caller names its subject in its own
//! errors, and this module's only error is a service that cannot be built.

mod bounded;
mod netrc;
mod retry;
mod service;

use std::time::Duration;

pub use bounded::{Bounded, Bounds, Exceeded, bounded_reader};
pub use netrc::{Netrc, authorize};
pub use retry::{Retryable, transient_status, with_retries};
pub use service::{HttpService, SharedHttp};

/// How the run talks HTTP: what the service is built from, and what every request keeps.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Downloads at once, in the whole process.
    pub concurrency: usize,
    /// Attempts after the first, for transient failures.
    pub retries: u32,
    /// The first retry's delay; each further retry doubles it (capped at 30 s).
    pub retry_delay: Duration,
    /// Hosts that may be reached over plain HTTP (loopback always may).
    pub insecure_hosts: Vec<String>,
    /// Bounds on bodies' sizes and times (the other bounds ride along for the stages that
    /// unpack what was downloaded).
    pub limits: crate::limits::Limits,
    /// Credentials for hosts whose URLs carry none.
    pub netrc: Netrc,
    /// The run's one service, built on first use from these options and shared by every
    /// clone of them.
    pub service: SharedHttp,
}

impl Default for HttpOptions {
    fn default() -> HttpOptions {
        HttpOptions {
            concurrency: 8,
            retries: 4,
            retry_delay: Duration::from_millis(500),
            insecure_hosts: Vec::new(),
            limits: crate::limits::Limits::default(),
            netrc: Netrc::default(),
            service: SharedHttp::default(),
        }
    }
}

impl HttpOptions {
    /// The run's HTTP service, built from these options on first use. Options changed after
    /// that (on any clone) no longer reach it: set them before the first request.
    pub fn service(&self) -> Result<&HttpService, HttpError> {
        self.service.get_or_build(self)
    }
}

/// The HTTP service could not be built (the TLS backend, the thread pool).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot set up HTTP: {0}")]
pub struct HttpError(pub String);

/// The host of a plain-HTTP URL that is neither loopback nor trusted by name; `None` when the
/// URL may be fetched. The authority comes from the `url` crate, as the request's does, so
/// `http://H:P\@127.0.0.1/` is seen as host H, exactly where it would go.
pub fn plain_http_host(url: &reqwest::Url, insecure_hosts: &[String]) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authority_is_the_one_the_request_would_use() {
        let loopback_looking =
            reqwest::Url::parse("http://files.example.invalid:80\\@127.0.0.1/x").unwrap();
        assert_eq!(
            plain_http_host(&loopback_looking, &[]),
            Some("files.example.invalid".to_string())
        );
        let loopback = reqwest::Url::parse("http://user:pass@127.0.0.1:8080/x").unwrap();
        assert_eq!(plain_http_host(&loopback, &[]), None);
        let trusted = reqwest::Url::parse("http://mirror.lan/x").unwrap();
        assert_eq!(plain_http_host(&trusted, &["mirror.lan".to_string()]), None);
    }
}
