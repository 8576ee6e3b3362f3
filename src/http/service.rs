//! The run's one HTTP service, modelled on uv-client: built once, on first use, and shared by
//! every clone of the run's [`HttpOptions`], so every stage (artifacts, npm tarballs, Go
//! modules, index pages, the OCI registry) goes through
//!
//! - one client: one connection pool, one redirect rule, one set of timeouts;
//! - one pool of download threads, `--concurrency` wide: the limit holds for the whole process,
//!   also when the web UI's and the Go server's fetches run at the same time;
//! - one retry policy ([`super::with_retries`]);
//! - one memory of pages read once per run (index pages), kept by the caller's key.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::{HttpError, HttpOptions, Retryable, plain_http_host, with_retries};

/// Redirects followed at the most.
const MAX_REDIRECTS: usize = 10;

/// The run's HTTP service; see the module's documentation.
pub struct HttpService {
    client: reqwest::blocking::Client,
    downloads: rayon::ThreadPool,
    /// What [`HttpService::once_per_run`] read, by key.
    remembered: Mutex<HashMap<String, Arc<dyn Any + Send + Sync>>>,
}

/// The service, built by the first caller that needs it and shared by every clone of the
/// options it was built from.
#[derive(Clone, Default)]
pub struct SharedHttp(Arc<OnceLock<Result<HttpService, HttpError>>>);

impl std::fmt::Debug for SharedHttp {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SharedHttp")
            .field("built", &self.0.get().is_some())
            .finish()
    }
}

impl SharedHttp {
    pub(super) fn get_or_build(&self, options: &HttpOptions) -> Result<&HttpService, HttpError> {
        self.0
            .get_or_init(|| HttpService::new(options))
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl HttpService {
    fn new(options: &HttpOptions) -> Result<HttpService, HttpError> {
        let downloads = rayon::ThreadPoolBuilder::new()
            .num_threads(options.concurrency.max(1))
            .thread_name(|index| format!("akpkg-download-{index}"))
            .build()
            .map_err(|error| HttpError(error.to_string()))?;
        Ok(HttpService {
            client: client(options)?,
            downloads,
            remembered: Mutex::new(HashMap::new()),
        })
    }

    pub fn client(&self) -> &reqwest::blocking::Client {
        &self.client
    }

    /// Run `work` (a parallel iteration whose items download) on the process-wide download
    /// pool, so that no more than `--concurrency` downloads run at once in the whole run.
    pub fn run_downloads<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        self.downloads.install(work)
    }

    /// What `read` gives for `key`, read at most once per run while it succeeds (a failure is
    /// not remembered, so a later caller tries again).
    pub fn once_per_run<T: Clone + Send + Sync + 'static>(
        &self,
        key: &str,
        read: impl FnOnce() -> Result<T, String>,
    ) -> Result<T, String> {
        let remembered = self
            .remembered
            .lock()
            .ok()
            .and_then(|values| values.get(key).cloned())
            .and_then(|value| value.downcast_ref::<T>().cloned());
        if let Some(value) = remembered {
            return Ok(value);
        }
        let value = read()?;
        if let Ok(mut values) = self.remembered.lock() {
            values.insert(key.to_string(), Arc::new(value.clone()));
        }
        Ok(value)
    }

    /// Whether `url` is served (a HEAD answered 2xx; 403, 404 and 410 say no; a `file://`
    /// URL is a file that exists), retried under the one retry policy.
    pub fn is_served(&self, url: &str, options: &HttpOptions) -> Result<bool, String> {
        if let Some(path) = url::Url::parse(url)
            .ok()
            .filter(|parsed| parsed.scheme() == "file")
            .and_then(|parsed| parsed.to_file_path().ok())
        {
            return Ok(path.is_file());
        }
        let answered = |status: reqwest::StatusCode| {
            format!("{} answered {status}", crate::redact::redacted(url))
        };
        with_retries(
            options,
            url,
            options.deadline(),
            || {
                let response = self
                    .client
                    .head(url)
                    .send()
                    .map_err(|error| Retryable::Transient(None, error.to_string()))?;
                let status = response.status();
                match status.as_u16() {
                    200..=299 => Ok(true),
                    403 | 404 | 410 => Ok(false),
                    408 | 429 | 500..=599 => Err(Retryable::Transient(None, answered(status))),
                    _ => Err(Retryable::Fatal(answered(status))),
                }
            },
            |attempts, message| format!("{message} (gave up after {attempts} attempts)"),
        )
    }

    /// The JSON document at `url` (an npm packument), or `None` when it is not served.
    pub fn json(&self, url: &str) -> Result<Option<serde_json::Value>, String> {
        let response = self
            .client
            .get(url)
            .header(
                "accept",
                "application/vnd.npm.install-v1+json, application/json",
            )
            .send()
            .map_err(|error| error.to_string())?;
        if !response.status().is_success() {
            return Ok(None);
        }
        serde_json::from_reader(response)
            .map(Some)
            .map_err(|error| error.to_string())
    }
}

/// The service's client. Every redirect hop is checked against the plain-HTTP rule, not only
/// the first URL.
fn client(options: &HttpOptions) -> Result<reqwest::blocking::Client, HttpError> {
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
        .map_err(|error| HttpError(error.to_string()))
}
