//! git credential helper programs, run without git: the `get` request of git's credential
//! protocol (`key=value` lines ended by a blank line) on the helper's stdin, `username=` and
//! `password=` read from its stdout, with a time limit and a bounded answer. What a helper
//! prints is never logged or put into an error: errors name the helper (its program, never a
//! `!` command's text or its arguments, which may hold a token) and what went wrong.

use super::git::Login;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long a helper may take to answer.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read from a helper.
const MAX_ANSWER: usize = 64 << 10;

/// A helper program and its arguments, `get` included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperCommand {
    pub program: String,
    pub args: Vec<String>,
    /// How errors name the helper: safe to print.
    pub label: String,
}

/// Why a helper gave no answer. Never carries what the helper printed.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    #[error("git credential helper {helper}: cannot run it: {reason}")]
    Spawn { helper: String, reason: String },
    #[error("git credential helper {helper}: no answer within {secs} s")]
    Timeout { helper: String, secs: u64 },
    #[error("git credential helper {helper}: exited with {status}")]
    Exit { helper: String, status: String },
    #[error("git credential helper {helper}: answer larger than {max} bytes")]
    TooLarge { helper: String, max: usize },
    #[error(
        "git credential helper `cache` needs git's credential daemon, which the proxy does not \
         have: use `store` or a helper program"
    )]
    CacheUnsupported,
}

/// What a helper answered.
#[derive(Debug, Default)]
pub struct Answer {
    /// Set when the answer has a password (the user name from it, else from the URL).
    pub login: Option<Login>,
    /// `quit=true`: ask no further helper.
    pub quit: bool,
}

/// The `get` request for `url`: `protocol`, `host` (with a port other than the scheme's),
/// `path` only when `credential.useHttpPath` is set, and the URL's user name, as git sends
/// them.
pub fn request(url: &reqwest::Url, use_http_path: bool) -> String {
    let mut out = format!("protocol={}\n", url.scheme());
    if let Some(host) = url.host_str() {
        match url.port() {
            Some(port) => out.push_str(&format!("host={host}:{port}\n")),
            None => out.push_str(&format!("host={host}\n")),
        }
    }
    let path = url.path().trim_start_matches('/');
    if use_http_path && !path.is_empty() {
        out.push_str(&format!("path={path}\n"));
    }
    if !url.username().is_empty() {
        out.push_str(&format!("username={}\n", url.username()));
    }
    out.push('\n');
    out
}

/// Reads a helper's answer: `key=value` lines up to a blank line or the end; unknown keys are
/// ignored, as git does. `user` is the URL's user name, used when the answer names none.
pub fn parse_answer(out: &[u8], user: &str) -> Answer {
    let text = String::from_utf8_lossy(out);
    let (mut username, mut password, mut quit) = (None, None, false);
    for line in text.split('\n') {
        if line.is_empty() {
            break;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key {
            "username" => username = Some(value.to_string()),
            "password" => password = Some(value.to_string()),
            // git's boolean spellings.
            "quit" => quit = matches!(value, "1" | "true" | "yes" | "on"),
            _ => {}
        }
    }
    let username = username.or_else(|| (!user.is_empty()).then(|| user.to_string()));
    let login = match (username, password) {
        (Some(user), Some(password)) => Some(Login { user, password }),
        _ => None,
    };
    Answer { login, quit }
}

/// Asks `cmd` for `url`'s credentials (blocking: call it off the async runtime).
pub fn get(
    cmd: &HelperCommand,
    url: &reqwest::Url,
    use_http_path: bool,
) -> Result<Answer, HelperError> {
    let out = run(cmd, request(url, use_http_path).as_bytes(), HELPER_TIMEOUT)?;
    Ok(parse_answer(&out, url.username()))
}

/// Runs `cmd` with `input` on stdin and returns its stdout, killed after `timeout`. stderr is
/// dropped: a helper may print secrets there.
fn run(cmd: &HelperCommand, input: &[u8], timeout: Duration) -> Result<Vec<u8>, HelperError> {
    let helper = || cmd.label.clone();
    let mut child = Command::new(&cmd.program)
        .args(&cmd.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| HelperError::Spawn {
            helper: helper(),
            reason: e.to_string(),
        })?;
    // The request is far smaller than a pipe's buffer: written at once. A helper that exits
    // without reading it (a broken pipe) may still answer.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let Some(stdout) = child.stdout.take() else {
        let _ = child.kill();
        return Err(HelperError::Spawn {
            helper: helper(),
            reason: "no stdout".into(),
        });
    };
    // Read on a thread so the wait below can give up: a hung helper never blocks a fetch
    // longer than `timeout`.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let read = stdout.take(MAX_ANSWER as u64 + 1).read_to_end(&mut buf);
        let _ = tx.send(read.map(|_| buf));
    });
    let deadline = std::time::Instant::now() + timeout;
    let timed_out = |child: &mut std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
        HelperError::Timeout {
            helper: helper(),
            secs: timeout.as_secs().max(1),
        }
    };
    let out = match rx.recv_timeout(timeout) {
        Ok(Ok(buf)) => buf,
        Ok(Err(e)) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HelperError::Spawn {
                helper: helper(),
                reason: format!("reading its answer: {e}"),
            });
        }
        Err(_) => return Err(timed_out(&mut child)),
    };
    if out.len() > MAX_ANSWER {
        let _ = child.kill();
        let _ = child.wait();
        return Err(HelperError::TooLarge {
            helper: helper(),
            max: MAX_ANSWER,
        });
    }
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Ok(None) => return Err(timed_out(&mut child)),
            Err(e) => {
                return Err(HelperError::Spawn {
                    helper: helper(),
                    reason: e.to_string(),
                });
            }
        }
    };
    if !status.success() {
        return Err(HelperError::Exit {
            helper: helper(),
            status: status.to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).unwrap()
    }

    fn sh(script: &str) -> HelperCommand {
        HelperCommand {
            program: "sh".into(),
            args: vec!["-c".into(), format!("{script} get")],
            label: "a `!` shell helper".into(),
        }
    }

    #[test]
    fn request_lines() {
        assert_eq!(
            request(&url("https://git.corp.test/team/r.git"), false),
            "protocol=https\nhost=git.corp.test\n\n"
        );
        assert_eq!(
            request(&url("https://bot@git.corp.test:8443/team/r.git"), true),
            "protocol=https\nhost=git.corp.test:8443\npath=team/r.git\nusername=bot\n\n"
        );
    }

    #[test]
    fn answers() {
        let a = parse_answer(b"protocol=https\nusername=bot\npassword=p=w\n", "");
        let l = a.login.unwrap();
        assert_eq!((l.user.as_str(), l.password.as_str()), ("bot", "p=w"));
        assert!(!a.quit);
        let a = parse_answer(b"password=tok\n", "from-url");
        assert_eq!(a.login.unwrap().user, "from-url");
        assert!(parse_answer(b"username=bot\n", "").login.is_none());
        assert!(
            parse_answer(b"\nusername=a\npassword=b\n", "")
                .login
                .is_none()
        );
        assert!(parse_answer(b"noise\nquit=true\n", "").quit);
        assert!(parse_answer(b"", "").login.is_none());
    }

    #[test]
    fn runs_a_helper_with_the_request_on_stdin() {
        let cmd = sh("f() { test \"$1\" = get && grep -q '^host=h.test$' && \
                      printf 'username=u\\npassword=s3\\n'; }; f");
        let l = get(&cmd, &url("https://h.test/r.git"), false)
            .unwrap()
            .login
            .unwrap();
        assert_eq!((l.user.as_str(), l.password.as_str()), ("u", "s3"));
    }

    #[test]
    fn failures_never_show_the_answer() {
        let e = run(
            &sh("echo password=leaked; exit 3; true"),
            b"\n",
            HELPER_TIMEOUT,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("exited") && !e.contains("leaked"), "{e}");
        let e = run(&sh("sleep 5; true"), b"\n", Duration::from_millis(200)).unwrap_err();
        assert!(matches!(e, HelperError::Timeout { .. }), "{e}");
        let e = run(&sh("yes password=leaked; true"), b"\n", HELPER_TIMEOUT).unwrap_err();
        assert!(matches!(e, HelperError::TooLarge { .. }), "{e}");
        let missing = HelperCommand {
            program: "/nonexistent/helper".into(),
            args: vec!["get".into()],
            label: "/nonexistent/helper".into(),
        };
        let e = run(&missing, b"\n", HELPER_TIMEOUT).unwrap_err();
        assert!(matches!(e, HelperError::Spawn { .. }), "{e}");
    }
}
