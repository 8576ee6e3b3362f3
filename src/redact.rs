//! Text fit for messages and logs: URLs without their credentials. A leaf, so that every stage
//! that shows a URL (the fetch, the plan's renderers, the registry) uses one rule.

/// A URL fit for messages and logs: any `user:password@` is replaced.
pub fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}{}", &rest[authority_end..]),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}
