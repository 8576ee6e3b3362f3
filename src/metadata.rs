//! Core metadata (`METADATA`, `PKG-INFO`) and `WHEEL` files: email-header style text, read by
//! the installer and the build-requirement resolver alike.

use std::collections::BTreeMap;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_fold_continuations_and_stop_at_the_body() {
        let headers =
            parse_headers("Name: x\nSummary: a\n  b\nClassifier: 1\nClassifier: 2\n\nName: body\n");
        assert_eq!(headers["name"], ["x"]);
        assert_eq!(headers["summary"], ["a b"]);
        assert_eq!(headers["classifier"], ["1", "2"]);
    }
}
