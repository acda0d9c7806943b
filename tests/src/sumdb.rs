//! A real, signing checksum database for tests: `tests/sumdb`, built on golang.org/x/mod's
//! reference server, over the modules in a GOPROXY-layout folder.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running checksum database; killed on drop.
pub struct SumdbServer {
    child: Child,
    /// Base URL (the database answers at its root and under `/sumdb/<name>/`).
    pub url: String,
    /// Verifier key, `name+hash+key`.
    pub key: String,
    _keydir: tempfile::TempDir,
}

impl SumdbServer {
    /// The `GOSUMDB` value for this database: `name+key url`.
    pub fn gosumdb(&self) -> String {
        format!("{} {}", self.key, self.url)
    }

    /// Starts a database named `name` signing every module zip found in `proxy_dir`.
    pub fn start(proxy_dir: &Path, name: &str) -> Self {
        Self::start_with(proxy_dir, name, &[])
    }

    /// Like [`SumdbServer::start`], with extra flags (`-lazy`: add each record on its first
    /// lookup, so the tree grows during a test).
    pub fn start_with(proxy_dir: &Path, name: &str, extra: &[&str]) -> Self {
        let keydir = tempfile::tempdir().expect("tempdir");
        let keyfile = keydir.path().join("key");
        let mut child = Command::new(binary())
            .arg("-dir")
            .arg(proxy_dir)
            .args(["-listen", "127.0.0.1:0", "-name", name, "-keyfile"])
            .arg(&keyfile)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting tests/sumdb");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!("tests/sumdb did not print its URL");
        };
        let key = std::fs::read_to_string(&keyfile)
            .expect("sumdb key file")
            .trim()
            .to_string();
        Self {
            child,
            url: line.trim().to_string(),
            key,
            _keydir: keydir,
        }
    }
}

impl Drop for SumdbServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds tests/sumdb once per test process.
pub fn binary() -> PathBuf {
    crate::gohelper::binary("sumdb")
}
