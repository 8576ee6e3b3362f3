//! `HOST[:PORT]/REPOSITORY[:TAG|@sha256:HEX]`, as `docker push` and `skopeo` write them, always
//! with the registry named: akpkg has no default registry to guess.

use std::fmt;
use std::str::FromStr;

use super::RegistryError;
use crate::identity::Sha256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`, as it appears in credentials files.
    pub registry: String,
    pub repository: String,
    pub target: Target,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tag(String),
    Digest(Sha256),
}

impl fmt::Display for Target {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tag(tag) => formatter.write_str(tag),
            Target::Digest(digest) => write!(formatter, "sha256:{}", digest.as_str()),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let separator = match self.target {
            Target::Tag(_) => ':',
            Target::Digest(_) => '@',
        };
        write!(
            formatter,
            "{}/{}{separator}{}",
            self.registry, self.repository, self.target
        )
    }
}

impl FromStr for Reference {
    type Err = RegistryError;

    fn from_str(text: &str) -> Result<Reference, RegistryError> {
        let invalid = |reason: &str| RegistryError::Reference {
            reference: text.to_string(),
            reason: reason.to_string(),
        };
        let rest = text.strip_prefix("docker://").unwrap_or(text);
        let (name, target) = match rest.split_once('@') {
            Some((name, digest)) => {
                let hex = digest
                    .strip_prefix("sha256:")
                    .ok_or_else(|| invalid("a digest must be sha256:<64 hex digits>"))?;
                let digest: Sha256 = hex
                    .parse()
                    .map_err(|_| invalid("a digest must be sha256:<64 hex digits>"))?;
                (name, Target::Digest(digest))
            }
            None => {
                let last_slash = rest.rfind('/').unwrap_or(0);
                match rest[last_slash..].rfind(':') {
                    Some(colon) => {
                        let (name, tag) = rest.split_at(last_slash + colon);
                        (name, Target::Tag(tag[1..].to_string()))
                    }
                    None => (rest, Target::Tag("latest".to_string())),
                }
            }
        };
        if let Target::Tag(tag) = &target
            && !valid_tag(tag)
        {
            return Err(invalid(
                "a tag is 1 to 128 of [A-Za-z0-9_.-], not starting with . or -",
            ));
        }
        let (registry, repository) = name.split_once('/').ok_or_else(|| {
            invalid("name the registry and the repository: HOST[:PORT]/REPOSITORY[:TAG]")
        })?;
        (registry.contains(['.', ':']) || registry == "localhost")
            .then_some(())
            .ok_or_else(|| {
                invalid("the first part must be the registry's host (with a dot or a port, or localhost)")
            })?;
        if !repository.split('/').all(valid_path_component) {
            return Err(invalid(
                "a repository is lowercase letters and digits, separated by '/', '.', '_', '__' or '-'",
            ));
        }
        Ok(Reference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            target,
        })
    }
}

/// The distribution spec's `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let mut characters = tag.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric() || first == '_')
        && tag.len() <= 128
        && characters
            .all(|character| character.is_ascii_alphanumeric() || "._-".contains(character))
}

/// One `/`-separated part of a repository name: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
pub fn valid_path_component(component: &str) -> bool {
    let alphanumeric =
        |character: char| character.is_ascii_lowercase() || character.is_ascii_digit();
    let separators_valid = component
        .split(alphanumeric)
        .filter(|separator| !separator.is_empty())
        .all(|separator| {
            matches!(separator, "." | "_" | "__")
                || separator.chars().all(|character| character == '-')
        });
    component.starts_with(alphanumeric)
        && component.ends_with(alphanumeric)
        && component
            .chars()
            .all(|character| alphanumeric(character) || "._-".contains(character))
        && separators_valid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_name_the_registry_the_repository_and_a_tag_or_digest() {
        let reference: Reference = "127.0.0.1:5000/team/authentik:2025.12.4".parse().unwrap();
        assert_eq!(reference.registry, "127.0.0.1:5000");
        assert_eq!(reference.repository, "team/authentik");
        assert_eq!(reference.target, Target::Tag("2025.12.4".to_string()));
        assert_eq!(
            reference.to_string(),
            "127.0.0.1:5000/team/authentik:2025.12.4"
        );

        let latest: Reference = "docker://registry.example.org/authentik".parse().unwrap();
        assert_eq!(latest.target, Target::Tag("latest".to_string()));

        let hex = "a".repeat(64);
        let pinned: Reference = format!("localhost/authentik@sha256:{hex}").parse().unwrap();
        assert_eq!(pinned.target.to_string(), format!("sha256:{hex}"));
    }

    #[test]
    fn malformed_references_are_refused_with_the_rule_they_break() {
        for (text, rule) in [
            ("authentik:1", "name the registry"),
            ("library/authentik", "registry's host"),
            ("127.0.0.1:5000/Authentik", "lowercase"),
            ("127.0.0.1:5000/a..b", "lowercase"),
            ("127.0.0.1:5000/a:-x", "a tag is"),
            ("127.0.0.1:5000/a@sha256:abc", "sha256:<64 hex"),
        ] {
            let message = text.parse::<Reference>().unwrap_err().to_string();
            assert!(message.contains(rule), "{text}: {message}");
        }
    }
}
