//! A client of the OCI distribution specification (v1.1) on the run's one HTTP client and its
//! one retry policy: what `akpkg push` needs.
//!
//! The endpoints used, by the spec's table:
//! - end-2  `HEAD /v2/<name>/blobs/<digest>`: is the blob there already;
//! - end-11 `POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<other>`: cross-repository mount;
//! - end-4a `POST /v2/<name>/blobs/uploads/`, then end-6 `PUT <location>?digest=<digest>`: a
//!   monolithic upload, which the registry checks against the digest before it keeps the blob;
//! - end-7  `PUT /v2/<name>/manifests/<reference>`: the manifest, as its exact bytes.
//!
//! The scheme is https, except for loopback hosts and `--allow-insecure-host` ones, which are
//! spoken to over plain HTTP (as skopeo's `--dest-tls-verify=false` would).

mod auth;
mod cache;
mod error;
mod origin;
mod push;
mod reference;
mod signing;

use std::path::Path;

pub use auth::{Credential, credential_for};
pub use cache::{
    BUILT_WHEEL_TYPE, FILE_MEDIA_TYPE, GO_SERVER_TYPE, RECORD_MEDIA_TYPE, RemoteCache,
    RemoteCacheLocation, RemoteCacheTrust, TAR_MEDIA_TYPE, TakenEntry, WEB_TYPE, built_wheel_tag,
    publish, taken_from_remote_cache,
};
pub use error::RegistryError;
pub use push::{PushReport, push_layout};
pub use reference::{Reference, Target};
pub use signing::{PublicKey, SecretKey, read_public_keys, read_secret_key, write_secret_key};

use crate::http::{HttpOptions, Retryable};
use crate::identity::Sha256;
use auth::Authenticator;

/// One registry, reached through the run's HTTP client.
pub struct Registry {
    http: reqwest::blocking::Client,
    /// `http(s)://host[:port]`.
    base: reqwest::Url,
    host: String,
    authenticator: Authenticator,
    options: HttpOptions,
}

/// What an upload sends.
#[derive(Debug, Clone, Copy)]
pub enum Content<'c> {
    File(&'c Path),
    Bytes(&'c [u8]),
}

/// What a mount request gave.
pub enum Mount {
    Mounted,
    /// The registry could not mount and opened an upload instead, at this location.
    Upload(String),
}

impl Registry {
    /// A client for `host` (`host[:port]`), with its credentials looked up.
    pub fn connect(host: &str, options: &HttpOptions) -> Result<Registry, RegistryError> {
        let plain = reqwest::Url::parse(&format!("http://{host}/")).map_err(|_| {
            RegistryError::Reference {
                reference: host.to_string(),
                reason: "not a host[:port]".to_string(),
            }
        })?;
        let base = if crate::http::plain_http_host(&plain, &options.insecure_hosts).is_none() {
            plain
        } else {
            reqwest::Url::parse(&format!("https://{host}/")).map_err(|_| {
                RegistryError::Insecure {
                    host: host.to_string(),
                }
            })?
        };
        let http = options
            .service()
            .map_err(|error| RegistryError::Request {
                url: base.to_string(),
                message: error.to_string(),
            })?
            .client()
            .clone();
        Ok(Registry {
            http,
            base: base.clone(),
            host: host.to_string(),
            authenticator: Authenticator::new(
                base,
                credential_for(host, &options.netrc),
                &options.insecure_hosts,
                &options.netrc,
                options.limits,
            ),
            options: options.clone(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base.as_str().trim_end_matches('/'), path)
    }

    /// Send the request `build` makes, with the one retry policy; a 401 is answered once with
    /// the credentials (for `repository`, pushing or pulling), then the request is sent again.
    fn send(
        &self,
        repository: &str,
        url: &str,
        build: &dyn Fn(&reqwest::blocking::Client) -> reqwest::blocking::RequestBuilder,
    ) -> Result<reqwest::blocking::Response, RegistryError> {
        let scope = format!("repository:{repository}:pull,push");
        // A URL the registry named on another origin (an upload location) is reached without
        // the registry's credentials, and its challenges are not answered.
        let parsed = reqwest::Url::parse(url).map_err(|error| RegistryError::Request {
            url: url.to_string(),
            message: error.to_string(),
        })?;
        let own = origin::peer(&self.base, &parsed, &self.options.insecure_hosts)?
            == origin::Peer::Registry;
        let once = || -> Result<reqwest::blocking::Response, Retryable<RegistryError>> {
            let request = build(&self.http);
            let request = if own {
                self.authenticator.authorize(request)
            } else {
                request
            };
            let response = request
                .send()
                .map_err(|error| Retryable::Transient(None, crate::http::without_url(&error)))?;
            match crate::http::transient_status(&response) {
                Some(retry_after) => Err(Retryable::Transient(
                    retry_after,
                    format!("the registry answered {}", response.status()),
                )),
                None => Ok(response),
            }
        };
        crate::http::with_retries(
            &self.options,
            url,
            self.options.deadline(),
            || {
                let response = once()?;
                if !own || response.status() != reqwest::StatusCode::UNAUTHORIZED {
                    return Ok(response);
                }
                let challenges = response
                    .headers()
                    .get_all(reqwest::header::WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|value| value.to_str().ok())
                    .collect::<Vec<_>>()
                    .join(", ");
                match self.authenticator.answer(&self.http, &challenges, &scope) {
                    Ok(true) => once(),
                    Ok(false) => Ok(response),
                    Err(error) => Err(Retryable::Fatal(error)),
                }
            },
            |attempts, message| RegistryError::GaveUp {
                url: url.to_string(),
                attempts,
                message,
            },
        )
        .and_then(|response| self.refused(response, repository))
    }

    /// A 401 or 403 that answering did not cure, as the error that says where credentials come
    /// from.
    fn refused(
        &self,
        response: reqwest::blocking::Response,
        repository: &str,
    ) -> Result<reqwest::blocking::Response, RegistryError> {
        let status = response.status().as_u16();
        if status != 401 && status != 403 {
            return Ok(response);
        }
        Err(RegistryError::Unauthorized {
            host: self.host.clone(),
            repository: repository.to_string(),
            status,
            hint: if self.authenticator.has_credential() {
                ": the credentials found were refused".to_string()
            } else {
                ": no credentials were found for it".to_string()
            },
        })
    }

    /// An unexpected status of this registry (see [`status_error`]).
    fn unexpected(
        &self,
        action: &'static str,
        url: &str,
        status: u16,
        response: reqwest::blocking::Response,
    ) -> RegistryError {
        status_error(&self.options.limits, action, url, status, response)
    }

    /// The bounds this client's reads keep.
    pub fn limits(&self) -> &crate::limits::Limits {
        &self.options.limits
    }

    /// Whether `repository` holds the blob.
    pub fn has_blob(&self, repository: &str, digest: &Sha256) -> Result<bool, RegistryError> {
        let url = self.url(&format!(
            "/v2/{repository}/blobs/sha256:{}",
            digest.as_str()
        ));
        let response = self.send(repository, &url, &|http| http.head(&url))?;
        match response.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            status => Err(self.unexpected("checking", &url, status, response)),
        }
    }

    /// Ask the registry to mount the blob from `from`, another repository on it.
    pub fn mount_blob(
        &self,
        repository: &str,
        digest: &Sha256,
        from: &str,
    ) -> Result<Mount, RegistryError> {
        let url = self.url(&format!(
            "/v2/{repository}/blobs/uploads/?mount=sha256:{}&from={from}",
            digest.as_str()
        ));
        let response = self.send(repository, &url, &|http| http.post(&url))?;
        match response.status().as_u16() {
            201 => Ok(Mount::Mounted),
            202 => Ok(Mount::Upload(self.location(&url, &response)?)),
            status => Err(self.unexpected("mounting", &url, status, response)),
        }
    }

    /// Upload `content` as the blob `digest` (into the upload `session` a declined mount
    /// opened, else a new one); the registry checks the digest before it keeps the blob.
    pub fn upload_blob(
        &self,
        repository: &str,
        digest: &Sha256,
        content: Content<'_>,
        session: Option<String>,
    ) -> Result<(), RegistryError> {
        let location = match session {
            Some(location) => location,
            None => {
                let url = self.url(&format!("/v2/{repository}/blobs/uploads/"));
                let response = self.send(repository, &url, &|http| http.post(&url))?;
                match response.status().as_u16() {
                    202 => self.location(&url, &response)?,
                    status => {
                        return Err(self.unexpected(
                            "starting an upload at",
                            &url,
                            status,
                            response,
                        ));
                    }
                }
            }
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{separator}digest=sha256:{}", digest.as_str());
        if let Content::File(path) = content {
            // Opened again for each attempt below; a file that cannot be read fails here, with
            // its path.
            crate::path_io::open_regular(path)
                .map_err(|error| RegistryError::io("reading", path, error))?;
        }
        let response = self.send(repository, &url, &|http| {
            let body = match content {
                Content::File(path) => match crate::path_io::open_regular(path)
                    .and_then(|file| Ok((file.metadata()?.len(), file)))
                {
                    Ok((size, file)) => reqwest::blocking::Body::sized(file, size),
                    Err(_) => reqwest::blocking::Body::from(Vec::new()),
                },
                Content::Bytes(bytes) => reqwest::blocking::Body::from(bytes.to_vec()),
            };
            http.put(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(body)
        })?;
        match response.status().as_u16() {
            201 => check_digest(&response, &url, digest, "the blob"),
            status => Err(self.unexpected("uploading to", &url, status, response)),
        }
    }

    /// The blob's bytes as a stream of at most `max_bytes` (the caller checks them against
    /// `digest`), within the download deadline and stall rule; `None` when the repository does
    /// not have it. A body longer than `max_bytes` fails its read.
    pub fn get_blob(
        &self,
        repository: &str,
        digest: &Sha256,
        max_bytes: u64,
    ) -> Result<Option<impl std::io::Read + use<>>, RegistryError> {
        let url = self.url(&format!(
            "/v2/{repository}/blobs/sha256:{}",
            digest.as_str()
        ));
        let response = self.send(repository, &url, &|http| http.get(&url))?;
        match response.status().as_u16() {
            200 => Ok(Some(crate::http::bounded_reader(
                response,
                max_bytes,
                &self.options.limits,
            ))),
            404 => Ok(None),
            status => Err(self.unexpected("reading", &url, status, response)),
        }
    }

    /// The image manifest stored under `reference`, as bytes (at most 4 MiB), or `None`.
    pub fn get_manifest(
        &self,
        repository: &str,
        reference: &Target,
    ) -> Result<Option<Vec<u8>>, RegistryError> {
        const MANIFEST_LIMIT: u64 = 4 << 20;
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let response = self.send(repository, &url, &|http| {
            http.get(&url).header(
                reqwest::header::ACCEPT,
                "application/vnd.oci.image.manifest.v1+json",
            )
        })?;
        match response.status().as_u16() {
            200 => {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(
                    &mut crate::http::bounded_reader(
                        response,
                        MANIFEST_LIMIT,
                        &self.options.limits,
                    ),
                    &mut bytes,
                )
                .map_err(|error| RegistryError::Request {
                    url: url.clone(),
                    message: error.to_string(),
                })?;
                if bytes.len() as u64 > MANIFEST_LIMIT {
                    return Err(RegistryError::Request {
                        url,
                        message: format!("a manifest larger than {MANIFEST_LIMIT} bytes"),
                    });
                }
                Ok(Some(bytes))
            }
            404 => Ok(None),
            status => Err(self.unexpected("reading", &url, status, response)),
        }
    }

    /// Store `manifest` (its exact bytes) under `reference`, a tag or its own digest.
    pub fn put_manifest(
        &self,
        repository: &str,
        reference: &Target,
        media_type: &str,
        manifest: &[u8],
    ) -> Result<Sha256, RegistryError> {
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let response = self.send(repository, &url, &|http| {
            http.put(&url)
                .header(reqwest::header::CONTENT_TYPE, media_type)
                .body(manifest.to_vec())
        })?;
        let digest = Sha256::of_bytes(manifest);
        match response.status().as_u16() {
            201 => check_digest(&response, &url, &digest, "the manifest").map(|()| digest),
            status => Err(self.unexpected("storing the manifest at", &url, status, response)),
        }
    }

    /// The absolute upload location a 202 names (it may be relative to the registry).
    fn location(
        &self,
        url: &str,
        response: &reqwest::blocking::Response,
    ) -> Result<String, RegistryError> {
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| RegistryError::Request {
                url: url.to_string(),
                message: "the registry opened an upload without a Location".to_string(),
            })?;
        let absolute = self
            .base
            .join(location)
            .map_err(|error| RegistryError::Request {
                url: url.to_string(),
                message: format!("the upload location {location:?}: {error}"),
            })?;
        // The upload goes where the registry says, under the one rule for other origins.
        origin::peer(&self.base, &absolute, &self.options.insecure_hosts)?;
        Ok(absolute.to_string())
    }
}

/// The registry's `Docker-Content-Digest`, when it sends one, must be the digest asked for.
fn check_digest(
    response: &reqwest::blocking::Response,
    url: &str,
    expected: &Sha256,
    what: &str,
) -> Result<(), RegistryError> {
    let Some(actual) = response
        .headers()
        .get("docker-content-digest")
        .and_then(|value| value.to_str().ok())
    else {
        return Ok(());
    };
    let expected = format!("sha256:{}", expected.as_str());
    if actual == expected {
        Ok(())
    } else {
        Err(RegistryError::DigestMismatch {
            what: what.to_string(),
            url: url.to_string(),
            expected,
            actual: actual.to_string(),
        })
    }
}

/// An unexpected status, with the first error the registry's JSON body gives.
fn status_error(
    limits: &crate::limits::Limits,
    action: &'static str,
    url: &str,
    status: u16,
    response: reqwest::blocking::Response,
) -> RegistryError {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        code: String,
        message: Option<String>,
    }
    // At most 64 KiB of the registry's error text, within the stall rule and deadline.
    let mut body = Vec::new();
    let read = std::io::Read::read_to_end(
        &mut crate::http::bounded_reader(response, 64 * 1024, limits),
        &mut body,
    );
    let detail = read
        .ok()
        .and_then(|_| serde_json::from_slice::<Errors>(&body).ok())
        .and_then(|errors| errors.errors.into_iter().next())
        .map(|entry| match entry.message {
            Some(message) => format!(": {} ({message})", entry.code),
            None => format!(": {}", entry.code),
        })
        .unwrap_or_default();
    RegistryError::Status {
        action,
        url: url.to_string(),
        status,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    /// A token-authenticated registry in miniature, on 127.0.0.1: `/v2/` answers 401 with a
    /// Bearer challenge unless the request carries the token, which `/token` gives for the
    /// right login and password. Returns its address and the requests it saw (request line and
    /// Authorization header). One request per connection, each answer saying so: a client that
    /// kept the connection for its next request would race the server's close.
    fn token_registry(requests: usize) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let realm = format!("http://{address}/token");
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for stream in listener.incoming().take(requests) {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut authorization = String::new();
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap();
                    if header.trim().is_empty() {
                        break;
                    }
                    if let Some(value) = header.strip_prefix("authorization: ") {
                        authorization = value.trim().to_string();
                    }
                }
                let answer = if line.starts_with("GET /token?") {
                    if authorization == "Basic YnVpbGRlcjpzM2NyZXQ=" {
                        "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: 17\r\n\r\n{\"token\":\"t0k3n\"}".to_string()
                    } else {
                        "HTTP/1.1 401 Unauthorized\r\nconnection: close\r\ncontent-length: 0\r\n\r\n".to_string()
                    }
                } else if authorization == "Bearer t0k3n" {
                    "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n".to_string()
                } else {
                    format!(
                        "HTTP/1.1 401 Unauthorized\r\nconnection: close\r\nwww-authenticate: Bearer realm=\"{realm}\",service=\"test-registry\"\r\ncontent-length: 0\r\n\r\n"
                    )
                };
                seen.push(format!("{} {authorization}", line.trim()));
                stream.write_all(answer.as_bytes()).unwrap();
            }
            seen
        });
        (address, server)
    }

    #[test]
    fn a_bearer_challenge_is_answered_with_a_token_from_the_realm() {
        let (address, server) = token_registry(3);
        let options = HttpOptions {
            retries: 0,
            netrc: crate::http::Netrc::parse("machine 127.0.0.1 login builder password s3cret"),
            ..HttpOptions::default()
        };
        let registry = Registry::connect(&address, &options).unwrap();
        let digest = Sha256::of_bytes(b"blob");
        assert!(registry.has_blob("team/app", &digest).unwrap());
        let seen = server.join().unwrap();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(
            seen[0].starts_with("HEAD /v2/team/app/blobs/sha256:"),
            "{seen:?}"
        );
        assert!(
            seen[0].ends_with(' '),
            "no credentials before the challenge: {seen:?}"
        );
        assert_eq!(
            seen[1],
            "GET /token?service=test-registry&scope=repository%3Ateam%2Fapp%3Apull%2Cpush HTTP/1.1 Basic YnVpbGRlcjpzM2NyZXQ="
        );
        assert!(seen[2].ends_with("Bearer t0k3n"), "{seen:?}");
    }
}
