//! Credentials never appear in what the proxy prints: user info in URLs is replaced.

/// `s` with the user info of every `scheme://user:pass@host` URL in it replaced by `***`.
/// Works on whole GOPROXY lists, GOSUMDB values and error messages alike.
pub fn redact_userinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the path, query or fragment, or where a list or a sentence
        // goes on.
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | ',' | '|' | '"' | '\'') || c.is_whitespace()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::redact_userinfo;

    #[test]
    fn user_info_is_replaced_everywhere() {
        let table = [
            ("https://a.test", "https://a.test"),
            ("https://u:p@a.test/x", "https://***@a.test/x"),
            (
                "https://u:p@a.test,http://v@b.test|direct",
                "https://***@a.test,http://***@b.test|direct",
            ),
            (
                "GET https://u:p%40x@a.test: 500",
                "GET https://***@a.test: 500",
            ),
            ("s3://bucket/prefix", "s3://bucket/prefix"),
            ("off", "off"),
            (
                "name+key https://t@sum.test",
                "name+key https://***@sum.test",
            ),
        ];
        for (input, want) in table {
            assert_eq!(redact_userinfo(input), want, "{input}");
        }
    }
}
