//! Running the real `athens-proxy` binary as a child process.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The `athens-proxy` binary of this workspace build (`tests/run` builds it first).
pub fn proxy_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ATHENS_PROXY_BIN") {
        return PathBuf::from(p);
    }
    crate::wait::workspace_bin("athens-proxy").unwrap_or_else(|e| panic!("{e:#}"))
}

/// A running proxy; killed on drop.
pub struct ProxyProcess {
    pub url: String,
    /// The separate metrics address (`access.metrics_listen`), when the proxy serves one.
    pub metrics_url: Option<String>,
    pub child: Child,
}

impl ProxyProcess {
    /// The text of the proxy's `/metrics`.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.url))
            .await
            .and_then(|r| r.error_for_status())
            .expect("GET /metrics")
            .text()
            .await
            .expect("/metrics body")
    }

    /// Starts the proxy with `args` (listening on a free loopback port unless `args` says
    /// otherwise) and waits for its `GOPROXY=` line.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_with_stderr(args, env, Stdio::inherit())
    }

    /// [`Self::start`] with the proxy's log (stderr, at `debug` unless `RUST_LOG` is in `env`)
    /// written to `log`, for tests that check what it logs.
    pub fn start_logged(args: &[&str], env: &[(&str, &str)], log: &std::path::Path) -> Self {
        let file = std::fs::File::create(log).expect("create the proxy log file");
        let mut env = env.to_vec();
        if !env.iter().any(|(k, _)| *k == "RUST_LOG") {
            env.push(("RUST_LOG", "debug"));
        }
        Self::start_with_stderr(args, &env, Stdio::from(file))
    }

    /// [`Self::start`] with the proxy's log (stderr) going to `stderr`.
    pub fn start_with_stderr(args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Self {
        let mut cmd = Command::new(proxy_bin());
        if !args.iter().any(|a| *a == "--listen" || *a == "--config") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .env_remove("ATHENS_CONFIG")
            // Traces only where a test asks for them (the machine's own collector is not ours).
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            // Quiet by default: test output is for the tests. ATHENS_TEST_PROXY_LOG=debug to see.
            .env(
                "RUST_LOG",
                std::env::var("ATHENS_TEST_PROXY_LOG").unwrap_or_else(|_| "warn".into()),
            );
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn athens-proxy");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("GOPROXY=") {
                    let _ = tx.send((true, url.to_string()));
                } else if let Some(url) = line.strip_prefix("METRICS=") {
                    let _ = tx.send((false, url.to_string()));
                }
            }
        });
        let mut metrics_url = None;
        let url = loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok((true, url)) => break url,
                Ok((false, url)) => metrics_url = Some(url),
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    panic!("athens-proxy did not start (exit: {status:?})");
                }
            }
        };
        Self {
            url,
            metrics_url,
            child,
        }
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        self.kill_hard();
    }
}
