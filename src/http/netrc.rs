//! Credentials from a `.netrc` file (`$NETRC`, else `~/.netrc`), as curl and pip read them:
//! `machine HOST login USER password SECRET`, and `default login USER password SECRET` for any
//! other host. Credentials written into a URL take precedence. `macdef` blocks are skipped.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Netrc {
    /// `(machine, login, password)`; `None` is the `default` entry.
    entries: Vec<(Option<String>, String, String)>,
}

impl Netrc {
    /// `$NETRC`, else `~/.netrc`; a missing or unreadable file means no credentials.
    pub fn from_environment() -> Netrc {
        let path = std::env::var_os("NETRC")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".netrc")));
        path.map_or_else(Netrc::default, |path| Netrc::read(&path))
    }

    pub fn read(path: &Path) -> Netrc {
        fs_err::read_to_string(path).map_or_else(|_| Netrc::default(), |text| Netrc::parse(&text))
    }

    pub fn parse(text: &str) -> Netrc {
        let mut entries = Vec::new();
        // (machine, login, password) of the entry being read.
        let mut current: Option<(Option<String>, String, String)> = None;
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let mut tokens = line.split_whitespace();
            while let Some(token) = tokens.next() {
                match token {
                    "machine" | "default" => {
                        entries.extend(current.take());
                        let machine = if token == "machine" {
                            tokens.next().map(str::to_string)
                        } else {
                            None
                        };
                        current = Some((machine, String::new(), String::new()));
                    }
                    "login" => {
                        if let (Some(entry), Some(value)) = (current.as_mut(), tokens.next()) {
                            entry.1 = value.to_string();
                        }
                    }
                    "password" => {
                        if let (Some(entry), Some(value)) = (current.as_mut(), tokens.next()) {
                            entry.2 = value.to_string();
                        }
                    }
                    "account" => {
                        tokens.next();
                    }
                    // A macro runs until the next blank line.
                    "macdef" => {
                        for macro_line in lines.by_ref() {
                            if macro_line.trim().is_empty() {
                                break;
                            }
                        }
                        break;
                    }
                    _ => {}
                }
            }
        }
        entries.extend(current);
        Netrc { entries }
    }

    /// Login and password for `host`: its own entry, else the default one.
    pub fn credentials(&self, host: &str) -> Option<(&str, &str)> {
        let found = self
            .entries
            .iter()
            .find(|(machine, _, _)| machine.as_deref() == Some(host))
            .or_else(|| {
                self.entries
                    .iter()
                    .find(|(machine, _, _)| machine.is_none())
            })?;
        Some((found.1.as_str(), found.2.as_str()))
    }
}

/// Add the netrc credentials for `url`'s host, unless the URL carries its own.
pub fn authorize(
    builder: reqwest::blocking::RequestBuilder,
    url: &str,
    netrc: &Netrc,
) -> reqwest::blocking::RequestBuilder {
    let Ok(parsed) = url::Url::parse(url) else {
        return builder;
    };
    if !parsed.username().is_empty() {
        return builder;
    }
    match parsed.host_str().and_then(|host| netrc.credentials(host)) {
        Some((login, password)) => builder.basic_auth(login, Some(password)),
        None => builder,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_defaults_and_macros() {
        let netrc = Netrc::parse(
            "machine mirror.internal\n  login builder\n  password s3cret\n\nmacdef init\ncd /tmp\n\nmachine other login a password b account x\ndefault login anon password anon@\n",
        );
        assert_eq!(
            netrc.credentials("mirror.internal"),
            Some(("builder", "s3cret"))
        );
        assert_eq!(netrc.credentials("other"), Some(("a", "b")));
        assert_eq!(netrc.credentials("anything.else"), Some(("anon", "anon@")));
        assert_eq!(
            Netrc::parse("machine only login x password y").credentials("else"),
            None
        );
        assert_eq!(
            Netrc::read(Path::new("/nonexistent/.netrc")),
            Netrc::default()
        );
    }
}
