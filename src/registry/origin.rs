//! Which peers a registry client may talk to, and which of them receive credentials: the one
//! rule for `push`, `--remote-cache` and every other use of a registry.
//!
//! A registry names other URLs: a token service (`WWW-Authenticate: Bearer realm=…`) and upload
//! locations (`Location`). Whoever runs the registry chooses them, so the registry's
//! credentials stay with the registry's own origin (scheme, host, port):
//! - the registry's origin gets the registry's credentials;
//! - another origin gets only what the user's configuration holds for that origin (a token
//!   realm on `auth.example` gets `auth.example`'s credentials, if any, else the request is
//!   anonymous), and an upload location on another origin gets no `Authorization` at all;
//! - another origin over plain HTTP is refused unless `--allow-insecure-host` names its host
//!   (loopback included: another port on 127.0.0.1 is another program);
//! - a scheme other than `https` or `http` is refused.
//!
//! Redirects are the HTTP client's: reqwest drops `Authorization` whenever a redirect changes
//! the host or port, and the run's redirect rule refuses plain HTTP to non-loopback hosts.

use super::RegistryError;

/// Who a URL a registry named belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// The registry's own origin.
    Registry,
    /// Another origin, reachable under the rule above.
    Other,
}

/// The peer `url` is, from a registry at `base`; an error when the rule refuses it.
pub fn peer(
    base: &reqwest::Url,
    url: &reqwest::Url,
    insecure_hosts: &[String],
) -> Result<Peer, RegistryError> {
    if url.origin() == base.origin() {
        return Ok(Peer::Registry);
    }
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_string();
    match url.scheme() {
        "https" => Ok(Peer::Other),
        "http" if insecure_hosts.contains(&host) => Ok(Peer::Other),
        "http" => Err(RegistryError::Insecure { host }),
        scheme => Err(RegistryError::Reference {
            reference: url.to_string(),
            reason: format!(
                "the registry named a {scheme}: URL; only https (and plain HTTP to its own \
                 loopback origin or an --allow-insecure-host) is followed"
            ),
        }),
    }
}

/// `host[:port]` of `url`, as credentials are looked up (docker's config keys).
pub fn credential_key(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> reqwest::Url {
        reqwest::Url::parse(text).unwrap()
    }

    #[test]
    fn only_the_registrys_own_origin_is_the_registry() {
        let base = url("http://127.0.0.1:5000/");
        let none: &[String] = &[];
        assert_eq!(
            peer(
                &base,
                &url("http://127.0.0.1:5000/v2/x/blobs/uploads/1"),
                none
            )
            .unwrap(),
            Peer::Registry
        );
        // Another port on loopback is another program, over plain HTTP: refused.
        let error = peer(&base, &url("http://127.0.0.1:5001/token"), none).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("--allow-insecure-host 127.0.0.1"),
            "{error}"
        );
        assert_eq!(
            peer(&base, &url("https://auth.example/token"), none).unwrap(),
            Peer::Other
        );
        let error = peer(&base, &url("http://auth.example/token"), none).unwrap_err();
        assert!(error.to_string().contains("auth.example"), "{error}");
        let allowed = vec!["auth.example".to_string()];
        assert_eq!(
            peer(&base, &url("http://auth.example/token"), &allowed).unwrap(),
            Peer::Other
        );
        let error = peer(&base, &url("file:///etc/passwd"), none).unwrap_err();
        assert!(error.to_string().contains("file: URL"), "{error}");
        // The same host over another scheme is another origin.
        let secure = url("https://registry.example/");
        assert_eq!(
            peer(&secure, &url("https://registry.example:8443/u"), none).unwrap(),
            Peer::Other
        );
        assert!(peer(&secure, &url("http://registry.example/u"), none).is_err());
    }

    #[test]
    fn credentials_are_looked_up_by_host_and_port() {
        assert_eq!(
            credential_key(&url("https://auth.example/t")),
            "auth.example"
        );
        assert_eq!(
            credential_key(&url("http://127.0.0.1:5001/t")),
            "127.0.0.1:5001"
        );
    }
}
