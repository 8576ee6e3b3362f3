//! Core metadata (`METADATA`, `PKG-INFO`) and `WHEEL` files: email-header style text, read by
//! the installer and the build-requirement resolver alike.

use std::collections::BTreeMap;
use std::str::FromStr;

use pep440_rs::VersionSpecifiers;
use pep508_rs::{ExtraName, PackageName, Pep508Error, Pep508ErrorSource, Requirement};

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

/// Parse a PEP 508 requirement. Use this, not `Requirement::from_str`: pep508_rs 0.9.2 panics
/// on a name or an extra that ends in `.`, `-` or `_` when more text follows it (`name- ; …`,
/// `name[extra-]`, both found by fuzzing) instead of returning its error, so such names are
/// refused here first, with the message pep508_rs gives when the name ends the input.
pub fn parse_requirement(text: &str) -> Result<Requirement, Pep508Error> {
    if let Some(error) = unparsable_name(text) {
        return Err(error);
    }
    Requirement::from_str(text)
}

/// The first name or extra in `text` that pep508_rs would scan but then fail to validate.
fn unparsable_name(text: &str) -> Option<Pep508Error> {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    let invalid = |kind: &str, name: &str, end: usize| {
        let last = name.chars().last().unwrap_or('-');
        Pep508Error {
            message: Pep508ErrorSource::String(format!(
                "{kind} must end with an alphanumeric character, not '{last}'"
            )),
            start: end.saturating_sub(1),
            len: 1,
            input: text.to_string(),
        }
    };
    let name_start = text.len() - text.trim_start().len();
    let name_end = text[name_start..]
        .find(|c: char| !is_name_char(c))
        .map_or(text.len(), |length| name_start + length);
    let name = &text[name_start..name_end];
    if name.starts_with(|c: char| c.is_ascii_alphanumeric()) && PackageName::from_str(name).is_err()
    {
        return Some(invalid("Package name", name, name_end));
    }
    // Extras: `[a, b]` after the name and optional whitespace.
    let rest = &text[name_end..];
    let bracket = name_end + (rest.len() - rest.trim_start().len());
    if !text[bracket..].starts_with('[') {
        return None;
    }
    let mut position = bracket + 1;
    for piece in text[position..]
        .split_once(']')
        .map_or(&text[position..], |(inside, _)| inside)
        .split(',')
    {
        let extra_start = position + (piece.len() - piece.trim_start().len());
        let extra = &text[extra_start..][..text[extra_start..]
            .find(|c: char| !is_name_char(c))
            .unwrap_or(text.len() - extra_start)];
        if extra.starts_with(|c: char| c.is_ascii_alphanumeric())
            && ExtraName::from_str(extra).is_err()
        {
            return Some(invalid("Extra name", extra, extra_start + extra.len()));
        }
        position += piece.len() + 1;
    }
    None
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
    fn a_name_ending_in_punctuation_is_an_error_not_a_panic() {
        for text in [
            "extra- ; python_version > '3'",
            "name_[x]",
            "a.>=1",
            "b-",
            "c[extra-]",
            "d [ok, kys_platform. ]>=1",
        ] {
            let error = parse_requirement(text).unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains("must end with an alphanumeric character"),
                "{text}: {error}"
            );
        }
        assert_eq!(parse_requirement("a-b>=1").unwrap().name.as_ref(), "a-b");
        assert_eq!(
            parse_requirement("e[x-y, z]").unwrap().extras.len(),
            2,
            "valid extras still parse"
        );
    }

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
