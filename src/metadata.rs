//! Core metadata (`METADATA`, `PKG-INFO`) and `WHEEL` files: email-header style text, read by
//! the installer and the build-requirement resolver alike.

use std::collections::BTreeMap;
use std::str::FromStr;

use pep440_rs::VersionSpecifiers;
use pep508_rs::Requirement;

use crate::pep508::parse_requirement;

/// `Key: value` headers up to the first blank line; continuation lines are folded in.
pub fn parse_headers(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut last_key: Option<String> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(values) = last_key.as_ref().and_then(|key| headers.get_mut(key))
                && let Some(value) = values.last_mut()
            {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            let key = key.trim().to_ascii_lowercase();
            headers
                .entry(key.clone())
                .or_default()
                .push(value.trim().to_string());
            last_key = Some(key);
        }
    }
    headers
}

/// `Requires-Dist` and `Requires-Python` of a METADATA file: what resolving needs.
pub fn parse_dependency_metadata(
    text: &str,
) -> Result<(Vec<Requirement>, Option<VersionSpecifiers>), String> {
    let headers = parse_headers(text);
    let requirements = headers
        .get("requires-dist")
        .into_iter()
        .flatten()
        .map(|line| {
            parse_requirement(line).map_err(|error| format!("Requires-Dist `{line}`: {error}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let requires_python = match headers
        .get("requires-python")
        .and_then(|values| values.first())
    {
        Some(text) => Some(
            VersionSpecifiers::from_str(text)
                .map_err(|error| format!("Requires-Python `{text}`: {error}"))?,
        ),
        None => None,
    };
    Ok((requirements, requires_python))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_gives_requirements_and_python() {
        let text = "Metadata-Version: 2.1\nName: hatchling\nVersion: 1.27.0\nRequires-Python: >=3.8\nRequires-Dist: packaging>=24.2\nRequires-Dist: tomli>=1.2.2; python_version < \"3.11\"\n\nbody\nRequires-Dist: ignored\n";
        let (requirements, python) = parse_dependency_metadata(text).unwrap();
        assert_eq!(
            requirements
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                "packaging>=24.2",
                "tomli>=1.2.2 ; python_full_version < '3.11'"
            ]
        );
        assert_eq!(python.unwrap().to_string(), ">=3.8");
        let error = parse_dependency_metadata("Requires-Dist: not a requirement!!\n").unwrap_err();
        assert!(
            error.starts_with("Requires-Dist `not a requirement!!`"),
            "{error}"
        );
    }

    #[test]
    fn headers_fold_continuations_and_stop_at_the_body() {
        let headers =
            parse_headers("Name: x\nSummary: a\n  b\nClassifier: 1\nClassifier: 2\n\nName: body\n");
        assert_eq!(headers["name"], ["x"]);
        assert_eq!(headers["summary"], ["a b"]);
        assert_eq!(headers["classifier"], ["1", "2"]);
    }
}
