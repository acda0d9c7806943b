//! Quoting user input for error messages.

/// Quotes user input for an error message, cut short so a huge input cannot make a huge body.
pub(crate) fn quote(s: &str) -> String {
    const SHOWN: usize = 80;
    if s.len() <= SHOWN {
        return format!("{s:?}");
    }
    let mut end = SHOWN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}... ({} bytes)", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quote_truncates() {
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
        let long = "é".repeat(100);
        let q = quote(&long);
        assert!(q.ends_with("... (200 bytes)"), "{q}");
        assert!(q.len() < 100);
    }
}
