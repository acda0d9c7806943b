//! golang.org/x/mod as an oracle: `tests/xmod` answers x/mod's verdicts on module paths,
//! versions and module zips, a batch of requests through one process.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::process::{Command, Stdio};

use serde::Serialize;

/// One question for x/mod; which of `a`, `b`, `c` mean what depends on `op` (see
/// tests/xmod/main.go).
#[derive(Debug, Clone, Serialize)]
pub struct Ask {
    pub op: &'static str,
    pub a: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub b: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub c: String,
}

impl Ask {
    pub fn new(op: &'static str, a: &str) -> Self {
        Self::with(op, a, "", "")
    }

    pub fn with(op: &'static str, a: &str, b: &str, c: &str) -> Self {
        Self {
            op,
            a: a.to_string(),
            b: b.to_string(),
            c: c.to_string(),
        }
    }
}

/// x/mod's answer: named string fields; a field ending in `_err` (or `err`) is empty on success.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Answer(pub HashMap<String, String>);

impl Answer {
    /// A field, `""` if absent.
    pub fn get(&self, field: &str) -> &str {
        self.0.get(field).map_or("", String::as_str)
    }

    /// Whether the x/mod call behind `<field>` succeeded (its error field is empty).
    pub fn ok(&self, err_field: &str) -> bool {
        self.get(err_field).is_empty()
    }
}

/// Sends every question to one `tests/xmod` process and returns the answers in order.
pub fn ask_all(asks: impl IntoIterator<Item = Ask>) -> Vec<Answer> {
    let asks: Vec<Ask> = asks.into_iter().collect();
    let mut child = Command::new(crate::gohelper::binary("xmod"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting tests/xmod");
    let stdin = child.stdin.take().expect("stdin");
    let lines: Vec<String> = asks
        .iter()
        .map(|a| serde_json::to_string(a).expect("request as JSON"))
        .collect();
    // Write from another thread: the helper answers while we still send.
    let writer = std::thread::spawn(move || {
        let mut w = BufWriter::new(stdin);
        for line in lines {
            if writeln!(w, "{line}").is_err() {
                return;
            }
        }
        let _ = w.flush();
    });
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut answers = Vec::with_capacity(asks.len());
    for line in stdout.lines() {
        let line = line.expect("reading tests/xmod output");
        answers.push(serde_json::from_str(&line).expect("tests/xmod answer as JSON"));
    }
    writer.join().expect("writer thread");
    let status = child.wait().expect("waiting for tests/xmod");
    assert!(status.success(), "tests/xmod failed: {status}");
    assert_eq!(answers.len(), asks.len(), "tests/xmod answered too few");
    answers
}
