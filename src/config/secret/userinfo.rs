//! URLs with their user-info masked: `http://user:KEY@host/v1` is shown as
//! `http://***@host/v1`. A base URL may carry a credential in its user-info; wherever a URL is
//! shown or logged (`veyra config show`, errors, health output, the log) it goes through
//! [`display_url`], and text that may quote one (an HTTP library's error) through
//! [`mask_userinfo`].

use std::borrow::Cow;

/// What the user-info of a shown URL becomes.
pub const MASKED_USERINFO: &str = "***";

/// `url` for display: its user-info (`user:password@`) masked, the rest as written. Text that
/// has no scheme is read as starting with the authority (`user:pw@host:8080/v1`). Borrowed
/// when there is nothing to mask.
pub fn display_url(url: &str) -> Cow<'_, str> {
    if url.contains("://") {
        return mask_userinfo(url);
    }
    match userinfo_end(url) {
        Some(at) => Cow::Owned(format!("{MASKED_USERINFO}{}", &url[at..])),
        None => Cow::Borrowed(url),
    }
}

/// `text` with the user-info of every URL in it (`scheme://user:password@`) masked. Borrowed
/// when there is nothing to mask.
pub fn mask_userinfo(text: &str) -> Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut masked = false;
    while let Some(scheme_end) = rest.find("://") {
        let authority = scheme_end + 3;
        out.push_str(&rest[..authority]);
        rest = &rest[authority..];
        if let Some(at) = userinfo_end(rest) {
            out.push_str(MASKED_USERINFO);
            rest = &rest[at..];
            masked = true;
        }
    }
    if !masked {
        return Cow::Borrowed(text);
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Where the user-info of the authority that `text` starts with ends (the index of its last
/// `@`), if it has any. The authority ends where a path, query or fragment starts, or at
/// whitespace or a quote (a URL quoted in a sentence).
fn userinfo_end(text: &str) -> Option<usize> {
    let end = text
        .find(|c: char| {
            matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`') || c.is_whitespace()
        })
        .unwrap_or(text.len());
    text[..end].rfind('@')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_is_masked_and_the_rest_kept() {
        for (url, shown) in [
            ("http://u:KEY@host/v1", "http://***@host/v1"),
            ("https://KEY@host:8443", "https://***@host:8443"),
            (
                "http://u:p%40ss@[::1]:8080/v1?x=1",
                "http://***@[::1]:8080/v1?x=1",
            ),
            ("http://u:a@b@host/v1", "http://***@host/v1"),
            ("u:KEY@host:8080/v1", "***@host:8080/v1"),
            ("http://host/v1/u@x", "http://host/v1/u@x"),
            ("http://localhost:11434/v1", "http://localhost:11434/v1"),
            ("localhost:11434/v1", "localhost:11434/v1"),
        ] {
            assert_eq!(display_url(url), shown, "{url}");
        }
        assert!(matches!(
            display_url("http://localhost:11434/v1"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn urls_quoted_in_text_lose_their_user_info() {
        assert_eq!(
            mask_userinfo(
                "error sending request for url (http://u:KEY@127.0.0.1:9/v1/chat): refused; \
                 see 'https://x:y@h' or mail ops@example.com"
            ),
            "error sending request for url (http://***@127.0.0.1:9/v1/chat): refused; \
             see 'https://***@h' or mail ops@example.com"
        );
        let plain = "connect to http://127.0.0.1:9 failed, mail ops@example.com";
        assert!(matches!(mask_userinfo(plain), Cow::Borrowed(_)));
    }
}
