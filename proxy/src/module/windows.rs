//! Windows reserved device names: module paths, versions and the files inside module zips may
//! not use them as an element (x/mod `badWindowsNames`), so a module extracts on every platform.

const RESERVED: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// The part of `elem` before its first dot, if that is a reserved name in any case.
///
/// x/mod compares with `strings.EqualFold`; ASCII case folding is the same here because no
/// reserved name contains K or S, the only ASCII letters with non-ASCII fold partners.
pub fn reserved_name(elem: &str) -> Option<&str> {
    let short = elem.split('.').next().unwrap_or(elem);
    RESERVED
        .iter()
        .any(|bad| bad.eq_ignore_ascii_case(short))
        .then_some(short)
}

#[cfg(test)]
mod tests {
    use super::reserved_name;

    #[test]
    fn reserved_names_in_any_case_before_the_first_dot() {
        assert_eq!(reserved_name("con"), Some("con"));
        assert_eq!(reserved_name("Aux.txt"), Some("Aux"));
        assert_eq!(reserved_name("lpt9.a.b"), Some("lpt9"));
        assert_eq!(reserved_name("console"), None);
        assert_eq!(reserved_name("com10"), None);
        assert_eq!(reserved_name("a.con"), None);
    }
}
