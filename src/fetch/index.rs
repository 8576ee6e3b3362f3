//! Simple repository indexes: PEP 691 (JSON) and PEP 503 (HTML), so that any static HTTP server
//! over a directory tree can serve as a private index.
//!
//! PEP 503: "the URL … MUST respond with a valid HTML5 page with a single anchor element per
//! file for the project … The text of the anchor tag MUST match the final path component (the
//! filename) of the URL", and a URL "SHOULD include a hash in the form of a URL fragment with the
//! following syntax, #<hashname>=<hashvalue>". PEP 691 serves the same as JSON when asked with
//! `Accept: application/vnd.pypi.simple.v1+json`.

use serde::Deserialize;
use url::Url;

use super::{ArtifactRequest, FetchError, FetchOptions, redacted};
use crate::identity::{FileName, Sha256};

const ACCEPT: &str = "application/vnd.pypi.simple.v1+json, text/html;q=0.1";

/// One file a project page lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// Files whose name is not one path component are left out of a page.
    pub filename: FileName,
    /// Absolute, without the hash fragment.
    pub url: String,
    /// A hash that is not 64 hex digits counts as none.
    pub sha256: Option<Sha256>,
    /// `Requires-Python` of the file, as the index gives it (PEP 503 `data-requires-python`).
    pub requires_python: Option<String>,
    /// PEP 592: yanked files are chosen only when pinned exactly.
    pub yanked: bool,
    /// PEP 658/714: the index serves the file's METADATA at `<url>.metadata`; with its sha256
    /// when the index gives one.
    pub core_metadata: Option<Option<Sha256>>,
}

#[derive(Deserialize)]
struct JsonPage {
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: std::collections::BTreeMap<String, String>,
    #[serde(default, rename = "requires-python")]
    requires_python: Option<String>,
    #[serde(default)]
    yanked: serde_json::Value,
    #[serde(default, rename = "core-metadata")]
    core_metadata: serde_json::Value,
    #[serde(default, rename = "dist-info-metadata")]
    dist_info_metadata: serde_json::Value,
}

/// PEP 691's `core-metadata`: `true`, or a dictionary of hashes.
fn json_core_metadata(value: &serde_json::Value) -> Option<Option<Sha256>> {
    match value {
        serde_json::Value::Bool(true) => Some(None),
        serde_json::Value::Object(hashes) => Some(
            hashes
                .get("sha256")
                .and_then(|hash| hash.as_str())
                .and_then(sha256_of),
        ),
        _ => None,
    }
}

/// PEP 503's `data-core-metadata="sha256=…"` (or `"true"`).
fn html_core_metadata(value: &str) -> Option<Sha256> {
    value.strip_prefix("sha256=").and_then(sha256_of)
}

/// A hash as an index writes it (either case).
fn sha256_of(text: &str) -> Option<Sha256> {
    text.to_ascii_lowercase().parse().ok()
}

/// The few entities index pages use inside attribute values.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The page of `project` on the index at `index_url` (the URL that ends in `/simple`): PEP 503's
/// `<index>/<normalized name>/`.
pub fn page_url(index_url: &str, project: &str) -> String {
    let normalized = project.to_ascii_lowercase().replace(['_', '.'], "-");
    format!("{}/{normalized}/", index_url.trim_end_matches('/'))
}

/// The files of `project` on the index at `index_url`, read once per run (by the run's one
/// service) and retried under the one retry policy.
pub fn project_files(
    http: &crate::http::HttpService,
    index_url: &str,
    project: &str,
    options: &super::FetchOptions,
) -> Result<Vec<IndexFile>, String> {
    let page = page_url(index_url, project);
    http.once_per_run(&page, || {
        crate::http::with_retries(
            &options.network,
            &page,
            options.network.deadline(),
            || read_page(http.client(), &page, &options.network),
            |attempts, message| format!("{message} (gave up after {attempts} attempts)"),
        )
    })
}

/// One attempt at reading the index page `page`: a broken connection and 408, 429 and 5xx are
/// worth another try (see [`crate::http::with_retries`]); anything else is final.
fn read_page(
    client: &reqwest::blocking::Client,
    page: &str,
    network: &crate::http::HttpOptions,
) -> Result<Vec<IndexFile>, crate::http::Retryable<String>> {
    use crate::http::Retryable::{Fatal, Transient};
    let cap = network.limits.index_page_bytes;
    let page_url =
        Url::parse(page).map_err(|error| Fatal(format!("invalid index URL {page}: {error}")))?;
    let response = crate::http::authorize(client.get(page_url.clone()), page, &network.netrc)
        .header(reqwest::header::ACCEPT, ACCEPT)
        .send()
        .map_err(|error| Transient(None, format!("cannot read the index page: {error}")))?;
    if !response.status().is_success() {
        let message = format!("the index page answered {}", response.status());
        return Err(match crate::http::transient_status(&response) {
            Some(retry_after) => Transient(retry_after, message),
            None => Fatal(message),
        });
    }
    let is_json = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("json"));
    // Read at most the cap (and one byte more, to know it was crossed), never the whole body.
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(response, cap + 1), &mut text)
        .map_err(|error| Transient(None, format!("cannot read the index page: {error}")))?;
    if text.len() as u64 > cap {
        return Err(Fatal(format!(
            "the index page is larger than {cap} bytes (raise it with --max-index-page-size)"
        )));
    }
    if is_json {
        parse_json(&page_url, &text).map_err(Fatal)
    } else {
        Ok(parse_html(&page_url, &text))
    }
}

fn parse_json(page: &Url, text: &str) -> Result<Vec<IndexFile>, String> {
    let parsed: JsonPage =
        serde_json::from_str(text).map_err(|error| format!("invalid PEP 691 page: {error}"))?;
    Ok(parsed
        .files
        .into_iter()
        .filter_map(|file| {
            let url = page.join(&file.url).ok()?;
            Some(IndexFile {
                filename: file.filename.parse().ok()?,
                url: without_fragment(url),
                sha256: file.hashes.get("sha256").and_then(|hash| sha256_of(hash)),
                requires_python: file.requires_python.filter(|text| !text.trim().is_empty()),
                yanked: match &file.yanked {
                    serde_json::Value::Bool(yanked) => *yanked,
                    serde_json::Value::String(_) => true,
                    _ => false,
                },
                core_metadata: json_core_metadata(&file.core_metadata)
                    .or_else(|| json_core_metadata(&file.dist_info_metadata)),
            })
        })
        .collect())
}

/// Every `<a href="…">file name</a>` of a PEP 503 page.
fn parse_html(page: &Url, text: &str) -> Vec<IndexFile> {
    let lower = text.to_ascii_lowercase();
    let mut files = Vec::new();
    let mut position = 0;
    while let Some(start) = lower[position..].find("<a ") {
        let tag_start = position + start;
        let Some(tag_end) = lower[tag_start..].find('>').map(|end| tag_start + end) else {
            break;
        };
        let Some(close) = lower[tag_end..].find("</a>").map(|end| tag_end + end) else {
            break;
        };
        position = close + 4;
        let Some(href) = attribute(
            &text[tag_start..tag_end],
            &lower[tag_start..tag_end],
            "href",
        ) else {
            continue;
        };
        let href = unescape(&href);
        let tag = &text[tag_start..tag_end];
        let lower_tag = &lower[tag_start..tag_end];
        let requires_python = attribute(tag, lower_tag, "data-requires-python")
            .map(|value| unescape(&value))
            .filter(|value| !value.trim().is_empty());
        let yanked = lower_tag.contains("data-yanked");
        let core_metadata = attribute(tag, lower_tag, "data-core-metadata")
            .or_else(|| attribute(tag, lower_tag, "data-dist-info-metadata"))
            .map(|value| html_core_metadata(&value));
        let Ok(url) = page.join(&href) else { continue };
        let sha256 = url
            .fragment()
            .and_then(|fragment| fragment.strip_prefix("sha256="))
            .and_then(sha256_of);
        let Ok(filename) = text[tag_end + 1..close].trim().parse() else {
            continue;
        };
        files.push(IndexFile {
            filename,
            url: without_fragment(url),
            sha256,
            requires_python,
            yanked,
            core_metadata,
        });
    }
    files
}

/// The value of `name="…"` (or `'…'`) in a tag, found case-insensitively.
fn attribute(tag: &str, lower_tag: &str, name: &str) -> Option<String> {
    let start = lower_tag.find(&format!("{name}="))? + name.len() + 1;
    let quote = tag[start..].chars().next()?;
    if quote != '"' && quote != '\'' {
        return None;
    }
    let value_start = start + 1;
    let end = tag[value_start..].find(quote)? + value_start;
    Some(tag[value_start..end].to_string())
}

fn without_fragment(mut url: Url) -> String {
    url.set_fragment(None);
    url.to_string()
}

/// The public index, asked when no `--index-url` is given.
pub const DEFAULT_INDEX: &str = "https://pypi.org/simple";

/// Index pages and core metadata for resolving (build requirements): each project page is read
/// once per run; METADATA files enter the artifact cache like any artifact, verified by sha256.
pub struct IndexClient {
    options: FetchOptions,
    indexes: Vec<String>,
}

impl IndexClient {
    pub fn new(options: &FetchOptions) -> Result<IndexClient, FetchError> {
        let indexes = if options.index_urls.is_empty() {
            vec![DEFAULT_INDEX.to_string()]
        } else {
            options.index_urls.clone()
        };
        // Built here, so a broken setup is reported before the first page is needed.
        options.http()?;
        Ok(IndexClient {
            options: options.clone(),
            indexes,
        })
    }

    /// The bounds of the run whose options made this client.
    pub fn limits(&self) -> &crate::limits::Limits {
        &self.options.network.limits
    }

    /// The files of `project` on the first index that lists it.
    pub fn files(&self, project: &str) -> Result<Vec<IndexFile>, FetchError> {
        if self.options.offline {
            return Err(FetchError::Index(format!(
                "`{project}`: resolving it needs an index, and --offline forbids asking one"
            )));
        }
        let http = self.options.http()?;
        let mut failures = Vec::new();
        for index in &self.indexes {
            match project_files(http, index, project, &self.options) {
                Ok(files) => return Ok(files),
                Err(message) => failures.push(format!("{}: {message}", redacted(index))),
            }
        }
        Err(FetchError::Index(format!(
            "no index lists `{project}` ({})",
            failures.join("; ")
        )))
    }

    /// The file of `project` that a hash-only pin (requirements.txt `--hash` lines without a
    /// URL) means for a target: among the index's files with one of `sha256s`, the wheel whose
    /// tags rank best, else an sdist.
    pub fn file_by_hash(
        &self,
        project: &str,
        version: &str,
        sha256s: &[&str],
        tags: &crate::tags::TargetTags,
    ) -> Result<(IndexFile, bool), FetchError> {
        let files = self.files(project)?;
        let pinned: Vec<&IndexFile> = files
            .iter()
            .filter(|file| {
                file.sha256
                    .as_deref()
                    .is_some_and(|sha256| sha256s.contains(&sha256))
            })
            .collect();
        let best_wheel = pinned
            .iter()
            .filter_map(|file| {
                let wheel = file.filename.parse::<crate::tags::WheelFilename>().ok()?;
                Some((tags.rank(&wheel)?, *file))
            })
            .min_by_key(|(rank, _)| *rank);
        if let Some((_, file)) = best_wheel {
            return Ok((file.clone(), true));
        }
        if let Some(sdist) = pinned
            .iter()
            .find(|file| file.filename.ends_with(".tar.gz") || file.filename.ends_with(".zip"))
        {
            return Ok(((*sdist).clone(), false));
        }
        Err(FetchError::Index(format!(
            "`{project}` {version}: none of the {} pinned hashes names a wheel for this target or an sdist on the index ({} of its files carry one of them)",
            sha256s.len(),
            pinned.len()
        )))
    }

    /// The METADATA of one file of `project` `version`: the PEP 658 file when the index
    /// serves one with a sha256, else the METADATA inside the (verified) wheel.
    pub fn metadata(
        &self,
        project: &str,
        version: &str,
        file: &IndexFile,
    ) -> Result<String, FetchError> {
        let request = |filename: FileName, url: String, sha256: Sha256| ArtifactRequest {
            name: project.to_string(),
            version: version.to_string(),
            filename,
            url: Some(url),
            sha256,
            size: None,
        };
        // Only the cache and the lock-free network path: the index is asked here already.
        let options = FetchOptions {
            index_urls: Vec::new(),
            ..self.options.clone()
        };
        if let Some(Some(sha256)) = &file.core_metadata {
            let name = format!("{}.metadata", file.filename).parse().map_err(
                |error: crate::identity::IdentityError| FetchError::Index(error.to_string()),
            )?;
            let metadata = request(name, format!("{}.metadata", file.url), sha256.clone());
            let fetched = super::fetch_all(&[metadata], &options, &super::NoDownloadProgress)?;
            return read_text(&fetched[0].path);
        }
        let sha256 = file.sha256.clone().ok_or_else(|| {
            FetchError::Index(format!(
                "`{project}` {version}: the index gives no sha256 for {}, and akpkg uses nothing unverified",
                file.filename
            ))
        })?;
        let wheel = request(file.filename.clone(), file.url.clone(), sha256);
        let fetched = super::fetch_all(&[wheel], &options, &super::NoDownloadProgress)?;
        wheel_metadata(&fetched[0].path)
    }
}

fn read_text(path: &std::path::Path) -> Result<String, FetchError> {
    fs_err::read_to_string(path).map_err(FetchError::io("cannot read", path))
}

/// `*.dist-info/METADATA` of a wheel file.
fn wheel_metadata(path: &std::path::Path) -> Result<String, FetchError> {
    let invalid = |reason: String| FetchError::Index(format!("{}: {reason}", path.display()));
    let file = fs_err::File::open(path).map_err(FetchError::io("cannot open", path))?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|error| invalid(format!("not a zip file: {error}")))?;
    let name = (0..archive.len())
        .filter_map(|index| {
            archive
                .name_for_index(index)?
                .ok()
                .map(|name| name.into_owned())
        })
        .find(|name| {
            name.split_once('/').is_some_and(|(directory, file)| {
                directory.ends_with(".dist-info") && file == "METADATA"
            })
        })
        .ok_or_else(|| invalid("no .dist-info/METADATA".to_string()))?;
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut archive
            .by_name(&name)
            .map_err(|error| invalid(error.to_string()))?,
        &mut text,
    )
    .map_err(|error| invalid(format!("cannot read {name}: {error}")))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Url {
        Url::parse("http://127.0.0.1:8000/simple/django/").unwrap()
    }

    #[test]
    fn html_pages_give_absolute_urls_and_hashes() {
        let html = r#"<!DOCTYPE html><html><body>
            <h1>Links for django</h1>
            <A HREF="../../files/Django-5.2.11-py3-none-any.whl#sha256=ABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCD" data-requires-python="&gt;=3.10">Django-5.2.11-py3-none-any.whl</A><br/>
            <a href='https://files.example/django-5.2.11.tar.gz?x=1&amp;y=2'> django-5.2.11.tar.gz </a>
            <a name="no-href">ignored</a>
        </body></html>"#;
        assert_eq!(
            parse_html(&page(), html),
            [
                IndexFile {
                    filename: "Django-5.2.11-py3-none-any.whl".parse().unwrap(),
                    url: "http://127.0.0.1:8000/files/Django-5.2.11-py3-none-any.whl".into(),
                    sha256: Some(format!("{}abcd", "abcdef".repeat(10)).parse().unwrap()),
                    requires_python: Some(">=3.10".into()),
                    yanked: false,
                    core_metadata: None,
                },
                IndexFile {
                    filename: "django-5.2.11.tar.gz".parse().unwrap(),
                    url: "https://files.example/django-5.2.11.tar.gz?x=1&y=2".into(),
                    sha256: None,
                    requires_python: None,
                    yanked: false,
                    core_metadata: None,
                },
            ]
        );
    }

    #[test]
    fn json_pages_are_read_too() {
        let json = r#"{"meta": {"api-version": "1.0"}, "name": "django", "files": [
            {"filename": "django-5.2.11-py3-none-any.whl", "url": "/files/django-5.2.11-py3-none-any.whl", "hashes": {"sha256": "AA11AA11AA11AA11AA11AA11AA11AA11AA11AA11AA11AA11AA11AA11AA11AA11"}}
        ]}"#;
        let files = parse_json(&page(), json).unwrap();
        assert_eq!(
            files[0].url,
            "http://127.0.0.1:8000/files/django-5.2.11-py3-none-any.whl"
        );
        assert_eq!(files[0].sha256.as_deref(), Some("aa11".repeat(16).as_str()));
        assert!(
            parse_json(&page(), "{}")
                .unwrap_err()
                .starts_with("invalid PEP 691 page")
        );
    }
}
