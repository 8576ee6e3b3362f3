//! The run's one HTTP service, modelled on uv-client: built once, on first use, and shared by
//! every clone of the run's [`FetchOptions`], so every stage (artifacts, npm tarballs, Go
//! modules, index pages, the OCI registry) goes through
//!
//! - one client: one connection pool, one redirect rule, one set of timeouts;
//! - one pool of download threads, `--concurrency` wide: the limit holds for the whole process,
//!   also when the web UI's and the Go server's fetches run at the same time;
//! - one retry policy ([`super::with_retries`]): 408, 429 and 5xx and broken connections are
//!   tried again, after `Retry-After` when the server sends one; any other 4xx is final;
//! - one cache of index pages: each project page of each index is read once per run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::{FetchError, FetchOptions, IndexFile};

/// The run's HTTP service; see the module's documentation.
pub struct HttpService {
    client: reqwest::blocking::Client,
    downloads: rayon::ThreadPool,
    /// Index pages by page URL.
    index_pages: Mutex<HashMap<String, Vec<IndexFile>>>,
}

/// The service, built by the first caller that needs it and shared by every clone of the
/// options it was built from.
#[derive(Clone, Default)]
pub struct SharedHttp(Arc<OnceLock<Result<HttpService, String>>>);

impl std::fmt::Debug for SharedHttp {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SharedHttp")
            .field("built", &self.0.get().is_some())
            .finish()
    }
}

impl FetchOptions {
    /// The run's HTTP service, built from these options on first use. Options changed after
    /// that (on any clone) no longer reach it: set them before the first download.
    pub fn http(&self) -> Result<&HttpService, FetchError> {
        self.http
            .0
            .get_or_init(|| HttpService::new(self).map_err(|error| error.to_string()))
            .as_ref()
            .map_err(|message| FetchError::Setup(message.clone()))
    }
}

impl HttpService {
    fn new(options: &FetchOptions) -> Result<HttpService, FetchError> {
        let downloads = rayon::ThreadPoolBuilder::new()
            .num_threads(options.concurrency.max(1))
            .thread_name(|index| format!("akpkg-download-{index}"))
            .build()
            .map_err(|error| FetchError::Setup(error.to_string()))?;
        Ok(HttpService {
            client: super::download::client(options)?,
            downloads,
            index_pages: Mutex::new(HashMap::new()),
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

    /// The files of `project` on the index at `index_url`, read once per run and retried under
    /// the one retry policy.
    pub fn project_files(
        &self,
        index_url: &str,
        project: &str,
        options: &FetchOptions,
    ) -> Result<Vec<IndexFile>, String> {
        let page = super::index::page_url(index_url, project);
        if let Some(files) = self.remembered_page(&page) {
            return Ok(files);
        }
        let files = super::with_retries(
            options,
            || super::index::read_page(&self.client, &page, &options.netrc, options),
            |attempts, message| format!("{message} (gave up after {attempts} attempts)"),
        )?;
        if let Ok(mut pages) = self.index_pages.lock() {
            pages.insert(page, files.clone());
        }
        Ok(files)
    }

    /// Whether `url` is served (a HEAD answered 2xx; 403, 404 and 410 say no; a `file://`
    /// URL is a file that exists), retried under the one retry policy.
    pub fn is_served(&self, url: &str, options: &FetchOptions) -> Result<bool, String> {
        if let Some(path) = url::Url::parse(url)
            .ok()
            .filter(|parsed| parsed.scheme() == "file")
            .and_then(|parsed| parsed.to_file_path().ok())
        {
            return Ok(path.is_file());
        }
        super::with_retries(
            options,
            || {
                let response = self
                    .client
                    .head(url)
                    .send()
                    .map_err(|error| super::Retryable::Transient(None, error.to_string()))?;
                let status = response.status();
                match status.as_u16() {
                    200..=299 => Ok(true),
                    403 | 404 | 410 => Ok(false),
                    408 | 429 | 500..=599 => Err(super::Retryable::Transient(
                        None,
                        format!("{} answered {status}", super::redacted(url)),
                    )),
                    _ => Err(super::Retryable::Fatal(format!(
                        "{} answered {status}",
                        super::redacted(url)
                    ))),
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

    fn remembered_page(&self, page: &str) -> Option<Vec<IndexFile>> {
        self.index_pages
            .lock()
            .ok()
            .and_then(|pages| pages.get(page).cloned())
    }
}
