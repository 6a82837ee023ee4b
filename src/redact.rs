//! Redaction, at the bottom of the crate: what every module uses to show a URL (an endpoint, a
//! proxy, the Pushgateway) without the credentials or tokens it may carry.

/// A URL safe to show: the user and password become `REDACTED`, and a query or fragment (where
/// tokens live) becomes `?REDACTED`. A password holding an unencoded `/` (`https://u:pa/ss@host`)
/// is still hidden: when the part before the first `/` has a `:` and an `@` follows, everything up
/// to that `@` is taken for credentials. Errs towards hiding too much.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (main, tail) = match rest.find(['?', '#']) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let authority_end = main.find('/').unwrap_or(main.len());
    let userinfo_end = match main[..authority_end].rfind('@') {
        Some(at) => Some(at),
        None if main[..authority_end].contains(':') => main.rfind('@'),
        None => None,
    };
    let main = match userinfo_end {
        Some(at) => format!("REDACTED@{}", &main[at + 1..]),
        None => main.to_string(),
    };
    let tail = if tail.is_empty() { "" } else { "?REDACTED" };
    format!("{scheme}://{main}{tail}")
}
