//! `.netrc` credentials for upstream hosts, read the way the go command reads them
//! (cmd/go/internal/auth/netrc.go), so the same file works for both.

/// One `machine` entry with both a login and a password.
#[derive(Clone, PartialEq, Eq)]
pub struct NetrcLine {
    pub machine: String,
    pub login: String,
    pub password: String,
}

// Never print a password, not even in debug output.
impl std::fmt::Debug for NetrcLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "NetrcLine {{ machine: {:?}, login: <redacted> }}",
            self.machine
        )
    }
}

/// Parses netrc text: `machine`, `login`, `password` and `macdef` tokens; parsing stops at
/// `default` (which, like the go command, we do not use).
pub fn parse_netrc(data: &str) -> Vec<NetrcLine> {
    let mut out = Vec::new();
    let (mut machine, mut login, mut password) = (String::new(), String::new(), String::new());
    let mut in_macro = false;
    for line in data.split('\n') {
        if in_macro {
            in_macro = !line.is_empty();
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let mut i = 0;
        while i + 1 < f.len() {
            match f[i] {
                "machine" => {
                    machine = f[i + 1].to_string();
                    login.clear();
                    password.clear();
                }
                "login" => login = f[i + 1].to_string(),
                "password" => password = f[i + 1].to_string(),
                "macdef" => in_macro = true,
                _ => {}
            }
            if !machine.is_empty() && !login.is_empty() && !password.is_empty() {
                out.push(NetrcLine {
                    machine: std::mem::take(&mut machine),
                    login: std::mem::take(&mut login),
                    password: std::mem::take(&mut password),
                });
            }
            i += 2;
        }
        if f.get(i) == Some(&"default") {
            break;
        }
    }
    out
}

/// The first entry for `host` (host name only, as the go command matches).
pub fn credentials_for<'a>(lines: &'a [NetrcLine], host: &str) -> Option<&'a NetrcLine> {
    lines.iter().find(|l| l.machine.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_the_go_command() {
        let text = "machine a.test login u1 password p1\n\
                    machine b.test\n  login u2\n  password p2\n\
                    macdef init\nmachine evil.test login x password y\n\n\
                    machine c.test login u3 password p3\n\
                    default login d password d\n\
                    machine after.test login z password z\n\
                    default\n\
                    machine never.test login n password n\n";
        let lines = parse_netrc(text);
        let machines: Vec<&str> = lines.iter().map(|l| l.machine.as_str()).collect();
        // As in cmd/go: only a `default` left as the last token of a line ends the file.
        assert_eq!(machines, ["a.test", "b.test", "c.test", "after.test"]);
        assert_eq!(credentials_for(&lines, "B.test").unwrap().login, "u2");
        assert!(credentials_for(&lines, "evil.test").is_none());
        assert!(!format!("{:?}", lines[0]).contains("p1"));
    }
}
