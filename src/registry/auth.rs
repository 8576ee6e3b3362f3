//! Credentials and the registry's challenges, as docker, podman and skopeo handle them.
//!
//! Credentials are looked up for the registry's `host[:port]`: `$DOCKER_CONFIG/config.json` or
//! `~/.docker/config.json` (`auths` with `auth` or `identitytoken`, and credential helpers),
//! then podman's `$REGISTRY_AUTH_FILE` / `auth.json`, then `.netrc`. Nothing is sent until the
//! registry asks (a 401 with `WWW-Authenticate`): `Basic` gets the login and password, `Bearer
//! realm=…,service=…,scope=…` sends them to the token service (distribution's token
//! authentication) and the token it returns is used from then on. A token service on another
//! origin than the registry gets only the credentials configured for that origin
//! ([`super::origin`]). Credentials and tokens never appear in messages or logs.

use std::sync::Mutex;

use docker_credential::DockerCredential;

use super::RegistryError;
use crate::http::Netrc;

/// What the user gave for a registry.
#[derive(Clone)]
pub enum Credential {
    Password {
        login: String,
        password: String,
    },
    /// A refresh token (`identitytoken` in docker's config), exchanged for access tokens.
    IdentityToken(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Password { login, .. } => write!(formatter, "Password({login}, ***)"),
            Credential::IdentityToken(_) => formatter.write_str("IdentityToken(***)"),
        }
    }
}

/// The credential for `registry` (`host[:port]`), from the first place that has one.
pub fn credential_for(registry: &str, netrc: &Netrc) -> Option<Credential> {
    let from_docker = |credential: DockerCredential| match credential {
        DockerCredential::UsernamePassword(login, password) => {
            Credential::Password { login, password }
        }
        DockerCredential::IdentityToken(token) => Credential::IdentityToken(token),
    };
    docker_credential::get_credential(registry)
        .ok()
        .or_else(|| docker_credential::get_podman_credential(registry).ok())
        .map(from_docker)
        .or_else(|| {
            let host = registry.split(':').next().unwrap_or(registry);
            netrc
                .credentials(registry)
                .or_else(|| netrc.credentials(host))
                .map(|(login, password)| Credential::Password {
                    login: login.to_string(),
                    password: password.to_string(),
                })
        })
}

/// What is sent in `Authorization` once the registry has asked.
#[derive(Clone)]
enum Answer {
    Basic { login: String, password: String },
    Bearer(String),
}

/// The credential and the answer that worked, shared by a run's requests to one registry.
pub struct Authenticator {
    /// The registry's origin: the only one its credential goes to.
    base: reqwest::Url,
    credential: Option<Credential>,
    answer: Mutex<Option<Answer>>,
    insecure_hosts: Vec<String>,
    netrc: Netrc,
    /// Bounds on a token service's answer.
    limits: crate::limits::Limits,
}

impl Authenticator {
    /// For the registry at `base`, with the credential configured for it; `insecure_hosts`
    /// and `netrc` decide what a token service on another origin gets.
    pub fn new(
        base: reqwest::Url,
        credential: Option<Credential>,
        insecure_hosts: &[String],
        netrc: &Netrc,
        limits: crate::limits::Limits,
    ) -> Authenticator {
        Authenticator {
            base,
            credential,
            answer: Mutex::new(None),
            insecure_hosts: insecure_hosts.to_vec(),
            netrc: netrc.clone(),
            limits,
        }
    }

    pub fn has_credential(&self) -> bool {
        self.credential.is_some()
    }

    /// `request` with the current answer, if the registry has asked for one.
    pub fn authorize(
        &self,
        request: reqwest::blocking::RequestBuilder,
    ) -> reqwest::blocking::RequestBuilder {
        let answer = self.answer.lock().ok().and_then(|answer| answer.clone());
        match answer {
            Some(Answer::Basic { login, password }) => request.basic_auth(login, Some(password)),
            Some(Answer::Bearer(token)) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Answer the challenges of a 401 (`WWW-Authenticate`) for `scope`; `Ok(false)` when there
    /// is nothing to answer with (no credential for Basic, an unknown scheme).
    pub fn answer(
        &self,
        http: &reqwest::blocking::Client,
        challenges: &str,
        scope: &str,
    ) -> Result<bool, RegistryError> {
        for challenge in http_auth::ChallengeParser::new(challenges).flatten() {
            let parameter = |name: &str| {
                challenge
                    .params
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(name))
                    .map(|(_, value)| value.to_unescaped())
            };
            let answer = if challenge.scheme.eq_ignore_ascii_case("bearer") {
                let Some(realm) = parameter("realm") else {
                    continue;
                };
                let scope = parameter("scope").unwrap_or_else(|| scope.to_string());
                let service = parameter("service").unwrap_or_default();
                Answer::Bearer(self.token(http, &realm, &service, &scope)?)
            } else if challenge.scheme.eq_ignore_ascii_case("basic") {
                match &self.credential {
                    Some(Credential::Password { login, password }) => Answer::Basic {
                        login: login.clone(),
                        password: password.clone(),
                    },
                    _ => continue,
                }
            } else {
                continue;
            };
            if let Ok(mut current) = self.answer.lock() {
                *current = Some(answer);
            }
            return Ok(true);
        }
        Ok(false)
    }

    /// A token from the token service (distribution's `token` and `oauth` specs): GET with the
    /// login and password (or none, for anonymous pulls), or POST a refresh token.
    fn token(
        &self,
        http: &reqwest::blocking::Client,
        realm: &str,
        service: &str,
        scope: &str,
    ) -> Result<String, RegistryError> {
        let failed = |message: String| RegistryError::Token {
            realm: realm.to_string(),
            message,
        };
        let mut url = reqwest::Url::parse(realm).map_err(|error| failed(error.to_string()))?;
        // The registry's credential goes to its own origin only; another origin gets what the
        // user configured for it, or nothing.
        let credential = match super::origin::peer(&self.base, &url, &self.insecure_hosts)
            .map_err(|error| failed(error.to_string()))?
        {
            super::origin::Peer::Registry => self.credential.clone(),
            super::origin::Peer::Other => {
                credential_for(&super::origin::credential_key(&url), &self.netrc)
            }
        };
        let request = match &credential {
            Some(Credential::IdentityToken(refresh_token)) => {
                let form = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", refresh_token)
                    .append_pair("service", service)
                    .append_pair("scope", scope)
                    .append_pair("client_id", "akpkg")
                    .finish();
                http.post(url)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(form)
            }
            credential => {
                url.query_pairs_mut()
                    .append_pair("service", service)
                    .append_pair("scope", scope);
                match credential {
                    Some(Credential::Password { login, password }) => {
                        http.get(url).basic_auth(login, Some(password))
                    }
                    _ => http.get(url),
                }
            }
        };
        let response = request
            .send()
            .map_err(|error| failed(crate::http::without_url(&error)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(failed(format!("answered {status}")));
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        // At most 1 MiB, within the stall rule and deadline: a token service that never ends
        // its answer costs bounded time and memory.
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut crate::http::bounded_reader(response, 1 << 20, &self.limits),
            &mut bytes,
        )
        .map_err(|error| failed(error.to_string()))?;
        let body: TokenResponse = serde_json::from_slice(&bytes)
            .map_err(|error| failed(format!("an answer that is not a token: {error}")))?;
        body.token
            .or(body.access_token)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| failed("an answer without a token".to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_challenges_are_answered_only_with_a_password() {
        let http = reqwest::blocking::Client::new();
        let base = reqwest::Url::parse("http://127.0.0.1:9/").unwrap();
        let anonymous = Authenticator::new(
            base.clone(),
            None,
            &[],
            &Netrc::default(),
            crate::limits::Limits::default(),
        );
        assert!(
            !anonymous
                .answer(&http, r#"Basic realm="Registry""#, "x")
                .unwrap()
        );
        let with_password = Authenticator::new(
            base,
            Some(Credential::Password {
                login: "builder".to_string(),
                password: "secret".to_string(),
            }),
            &[],
            &Netrc::default(),
            crate::limits::Limits::default(),
        );
        assert!(
            with_password
                .answer(&http, r#"Basic realm="Registry Realm""#, "x")
                .unwrap()
        );
        let request = with_password
            .authorize(http.get("http://127.0.0.1:9/v2/"))
            .build()
            .unwrap();
        assert_eq!(
            request.headers()["authorization"],
            "Basic YnVpbGRlcjpzZWNyZXQ="
        );
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let credential = Credential::Password {
            login: "builder".to_string(),
            password: "secret".to_string(),
        };
        assert_eq!(format!("{credential:?}"), "Password(builder, ***)");
        let token = Credential::IdentityToken("refresh".to_string());
        assert!(!format!("{token:?}").contains("refresh"));
    }
}
