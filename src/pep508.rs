//! Safe entry points to pep508_rs: requirements and markers are parsed here, never with
//! `FromStr` directly, because pep508_rs 0.9.2 (the version this project pins) panics on some
//! malformed input that fuzzing found. Each guard below refuses one such shape first.

use std::str::FromStr;

use pep508_rs::{ExtraName, MarkerTree, PackageName, Pep508Error, Pep508ErrorSource, Requirement};

/// Parse a PEP 508 requirement. Use this, not `Requirement::from_str`: pep508_rs 0.9.2 panics
/// on some malformed input instead of returning its error (all found by fuzzing): a name or an
/// extra that ends in `.`, `-` or `_` when more text follows it (`name- ; …`, `name[extra-]`),
/// and a multi-byte character where a marker operator is expected. Such input is refused here
/// first, with the message pep508_rs gives for the nearest input it does handle.
pub fn parse_requirement(text: &str) -> Result<Requirement, Pep508Error> {
    if let Some(error) = too_long(text)
        .or_else(|| non_ascii(text))
        .or_else(|| unparsable_name(text))
    {
        return Err(error);
    }
    Requirement::from_str(text)
}

/// Parse a PEP 508 environment marker. Use this, not `MarkerTree::from_str`, for the reason
/// [`parse_requirement`] gives.
pub fn parse_marker(text: &str) -> Result<MarkerTree, Pep508Error> {
    if let Some(error) = too_long(text).or_else(|| non_ascii(text)) {
        return Err(error);
    }
    MarkerTree::from_str(text)
}

/// Text above [`crate::limits::MAX_REQUIREMENT_BYTES`], as an error: real requirements and
/// markers are a few hundred bytes, and pep508_rs's marker algebra grows faster than the
/// clause count, so a hostile marker of tens of thousands of clauses would run for minutes.
fn too_long(text: &str) -> Option<Pep508Error> {
    let limit = crate::limits::MAX_REQUIREMENT_BYTES;
    (text.len() > limit).then(|| Pep508Error {
        message: Pep508ErrorSource::String(format!(
            "{} bytes is longer than akpkg reads in one requirement or marker ({limit} bytes)",
            text.len()
        )),
        start: 0,
        len: 0,
        input: String::new(),
    })
}

/// The first non-ASCII character of `text`, as an error. PEP 508's grammar is ASCII apart from
/// the contents of quoted strings (URLs too: RFC 3986 percent-encodes the rest), and no real
/// marker compares against non-ASCII text. pep508_rs 0.9.2 counts characters where it means
/// bytes when it looks ahead for `and`/`or`, and panics slicing a multi-byte character (found
/// by fuzzing, inside quotes as well as outside), so non-ASCII text is refused before that.
fn non_ascii(text: &str) -> Option<Pep508Error> {
    let (index, character) = text.char_indices().find(|(_, c)| !c.is_ascii())?;
    Some(Pep508Error {
        message: Pep508ErrorSource::String(format!(
            "Unexpected character `{character}`: akpkg reads requirements and markers as ASCII"
        )),
        start: index,
        len: character.len_utf8(),
        input: text.to_string(),
    })
}

/// The first name or extra in `text` that pep508_rs would scan but then fail to validate.
fn unparsable_name(text: &str) -> Option<Pep508Error> {
    let invalid = |kind: &str, name: &str, end: usize| Pep508Error {
        message: Pep508ErrorSource::String(format!(
            "{kind} must end with an alphanumeric character, not '{}'",
            name.chars().last().unwrap_or('-')
        )),
        start: end.saturating_sub(1),
        len: 1,
        input: text.to_string(),
    };
    let name_start = text.len() - text.trim_start().len();
    let name = leading_name(&text[name_start..]);
    let name_end = name_start + name.len();
    if starts_alphanumeric(name) && PackageName::from_str(name).is_err() {
        return Some(invalid("Package name", name, name_end));
    }
    // Extras: `[a, b]` after the name and optional whitespace.
    let rest = text[name_end..].trim_start();
    let inside = rest.strip_prefix('[')?;
    let mut position = text.len() - inside.len();
    let inside = inside.split_once(']').map_or(inside, |(inside, _)| inside);
    for piece in inside.split(',') {
        let extra_start = position + (piece.len() - piece.trim_start().len());
        let extra = leading_name(&text[extra_start..]);
        if starts_alphanumeric(extra) && ExtraName::from_str(extra).is_err() {
            return Some(invalid("Extra name", extra, extra_start + extra.len()));
        }
        position += piece.len() + 1;
    }
    None
}

/// The run of name characters (`A-Z a-z 0-9 . - _`) that `text` starts with.
fn leading_name(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        .unwrap_or(text.len());
    &text[..end]
}

fn starts_alphanumeric(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphanumeric())
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
    fn multi_byte_characters_are_an_error_not_a_panic() {
        for text in [
            "a ; python_version \u{ed68e}= '3'",
            "python_version \u{b8} '3'",
            "python_version > '' '' '3.13A\u{7891}\u{b8}'",
        ] {
            let error = parse_requirement(text)
                .err()
                .or_else(|| parse_marker(text).err())
                .unwrap();
            assert!(error.to_string().contains("as ASCII"), "{error}");
        }
        assert!(parse_marker("python_version == '3' and platform_release == '6.1'").is_ok());
        assert!(parse_requirement("a[b] @ https://h/a-1.0.tar.gz ; os_name == 'posix'").is_ok());
    }

    #[test]
    fn markers_above_the_size_limit_are_refused_before_parsing() {
        let clause = "python_version >= '3' and ";
        let huge = format!("{}python_version >= '3'", clause.repeat(20_000));
        let started = std::time::Instant::now();
        let error = parse_marker(&huge).unwrap_err().to_string();
        assert!(error.contains("longer than akpkg reads"), "{error}");
        assert!(parse_requirement(&format!("x ; {huge}")).is_err());
        // Refused without parsing: well under the minutes pep508_rs would take.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
