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

const ACCEPT: &str = "application/vnd.pypi.simple.v1+json, text/html;q=0.1";

/// One file a project page lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    pub filename: String,
    /// Absolute, without the hash fragment.
    pub url: String,
    pub sha256: Option<String>,
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
}

/// The files of `project` on the index at `index_url` (the URL that ends in `/simple`).
pub fn project_files(
    client: &reqwest::blocking::Client,
    index_url: &str,
    project: &str,
    netrc: &super::Netrc,
) -> Result<Vec<IndexFile>, String> {
    // PEP 503: the project's URL is `<index>/<normalized name>/`.
    let normalized = project.to_ascii_lowercase().replace(['_', '.'], "-");
    let page = format!("{}/{normalized}/", index_url.trim_end_matches('/'));
    let page_url =
        Url::parse(&page).map_err(|error| format!("invalid index URL {page}: {error}"))?;
    let response = super::netrc::authorize(client.get(page_url.clone()), &page, netrc)
        .header(reqwest::header::ACCEPT, ACCEPT)
        .send()
        .map_err(|error| format!("cannot read the index page: {error}"))?;
    if !response.status().is_success() {
        return Err(format!("the index page answered {}", response.status()));
    }
    let is_json = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("json"));
    let text = response
        .text()
        .map_err(|error| format!("cannot read the index page: {error}"))?;
    if is_json {
        parse_json(&page_url, &text)
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
                filename: file.filename,
                url: without_fragment(url),
                sha256: file
                    .hashes
                    .get("sha256")
                    .map(|hash| hash.to_ascii_lowercase()),
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
        let href = href.replace("&amp;", "&");
        let Ok(url) = page.join(&href) else { continue };
        let sha256 = url
            .fragment()
            .and_then(|fragment| fragment.strip_prefix("sha256="))
            .map(str::to_ascii_lowercase);
        let filename = text[tag_end + 1..close].trim().to_string();
        files.push(IndexFile {
            filename,
            url: without_fragment(url),
            sha256,
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
            <A HREF="../../files/Django-5.2.11-py3-none-any.whl#sha256=ABCDEF" data-requires-python="&gt;=3.10">Django-5.2.11-py3-none-any.whl</A><br/>
            <a href='https://files.example/django-5.2.11.tar.gz?x=1&amp;y=2'> django-5.2.11.tar.gz </a>
            <a name="no-href">ignored</a>
        </body></html>"#;
        assert_eq!(
            parse_html(&page(), html),
            [
                IndexFile {
                    filename: "Django-5.2.11-py3-none-any.whl".into(),
                    url: "http://127.0.0.1:8000/files/Django-5.2.11-py3-none-any.whl".into(),
                    sha256: Some("abcdef".into()),
                },
                IndexFile {
                    filename: "django-5.2.11.tar.gz".into(),
                    url: "https://files.example/django-5.2.11.tar.gz?x=1&y=2".into(),
                    sha256: None,
                },
            ]
        );
    }

    #[test]
    fn json_pages_are_read_too() {
        let json = r#"{"meta": {"api-version": "1.0"}, "name": "django", "files": [
            {"filename": "django-5.2.11-py3-none-any.whl", "url": "/files/django-5.2.11-py3-none-any.whl", "hashes": {"sha256": "AA11"}}
        ]}"#;
        let files = parse_json(&page(), json).unwrap();
        assert_eq!(
            files[0].url,
            "http://127.0.0.1:8000/files/django-5.2.11-py3-none-any.whl"
        );
        assert_eq!(files[0].sha256.as_deref(), Some("aa11"));
        assert!(
            parse_json(&page(), "{}")
                .unwrap_err()
                .starts_with("invalid PEP 691 page")
        );
    }
}
