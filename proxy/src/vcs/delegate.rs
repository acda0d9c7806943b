//! Modules in Mercurial, Subversion, Bazaar and Fossil repositories, fetched by a configured
//! `go` binary (`upstream.vcs_go_binary`) with `GOPROXY=direct`: the versions, `.info`, `.mod`
//! and `.zip` are the files the go command writes into its module cache, so their hashes are
//! exactly what a developer's `GOPROXY=direct` produces. The binary never talks to a proxy or
//! the checksum database: what it returns goes through the proxy's own verification.

use super::{DirectBody, FileKind, Login, VcsError, Wanted};
use crate::module::{ModulePath, Version};
use bytes::Bytes;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The VCS kinds handed to the go binary (git is fetched natively).
pub const DELEGATED: &[&str] = &["hg", "svn", "bzr", "fossil"];
/// A clone of a large repository takes a while; a hung one must not hold a request forever.
const TIMEOUT: Duration = Duration::from_secs(600);
/// go runs at once: each may run a VCS tool cloning a whole repository.
const RUNS: usize = 4;
/// Most bytes of the go command's stdout read (JSON; a version list is the largest).
const MAX_STDOUT: u64 = 4 << 20;
/// Most bytes of its stderr kept for the error message.
const MAX_STDERR: u64 = 64 << 10;
/// Variables taken from the proxy's environment: where the VCS tools are, which VCS the go
/// command may use, Mercurial's config (its `[auth]`, `[web] cacerts`), trusted CAs, proxies.
const PASSED_ENV: &[&str] = &[
    "PATH",
    "GOVCS",
    "HGRCPATH",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "https_proxy",
    "http_proxy",
    "no_proxy",
];

/// The configured go binary and its private directories.
pub struct GoDelegate {
    go: PathBuf,
    /// `home`, `gopath` (with the module cache), `gocache` and `tmp` live here.
    dir: PathBuf,
    env: Vec<(OsString, OsString)>,
    /// `.netrc` text for the go command's HTTPS requests (the proxy's logins).
    netrc: String,
    /// The directories exist and the `.netrc` is written.
    ready: tokio::sync::OnceCell<()>,
    runs: tokio::sync::Semaphore,
    timeout: Duration,
}

impl std::fmt::Debug for GoDelegate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GoDelegate {{ go: {:?}, dir: {:?} }}", self.go, self.dir)
    }
}

/// `go list -m -json` and `go mod download -json` output, the fields used.
#[derive(serde::Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase", default)]
struct GoModule {
    version: String,
    versions: Vec<String>,
    error: Option<serde_json::Value>,
}

impl GoDelegate {
    /// `go` run with its files under `dir`, `private` as its `GOPRIVATE` (so `GOVCS`'s
    /// `private:all` default covers the proxy's private modules as it does developers'), and
    /// `logins` as its `.netrc`.
    pub fn new(go: PathBuf, dir: PathBuf, private: &[String], logins: &[(String, Login)]) -> Self {
        let p = |s: &str| dir.join(s).into_os_string();
        let mut env: Vec<(OsString, OsString)> = vec![
            ("GOPROXY".into(), "direct".into()),
            // The proxy verifies what this returns like any other fill; the go binary itself
            // never sends a module name to the checksum database.
            ("GOSUMDB".into(), "off".into()),
            ("GOPRIVATE".into(), private.join(",").into()),
            ("GOFLAGS".into(), "-modcacherw".into()),
            ("GOTOOLCHAIN".into(), "local".into()),
            ("GO111MODULE".into(), "on".into()),
            ("GOWORK".into(), "off".into()),
            ("GOENV".into(), "off".into()),
            ("HOME".into(), p("home")),
            ("GOPATH".into(), p("gopath")),
            ("GOMODCACHE".into(), p("gopath/pkg/mod")),
            ("GOCACHE".into(), p("gocache")),
            ("TMPDIR".into(), p("tmp")),
            ("NETRC".into(), p("home/.netrc")),
        ];
        env.extend(
            PASSED_ENV
                .iter()
                .filter_map(|k| Some((OsString::from(k), std::env::var_os(k)?))),
        );
        Self {
            netrc: netrc_text(logins),
            go,
            dir,
            env,
            ready: tokio::sync::OnceCell::new(),
            runs: tokio::sync::Semaphore::new(RUNS),
            timeout: TIMEOUT,
        }
    }

    /// Answers `want` for `module`, whose repository is a `vcs` one.
    pub async fn get(
        &self,
        module: &ModulePath,
        vcs: &str,
        want: Wanted,
    ) -> Result<DirectBody, VcsError> {
        let m = module.as_str();
        let query = match want {
            Wanted::List => {
                let args = ["list", "-m", "-versions", "-retracted", "-json", m];
                let listed = self.run(vcs, &args).await?;
                let list: Vec<Version> = listed
                    .versions
                    .iter()
                    .filter_map(|v| Version::parse(v).ok())
                    .collect();
                let text = crate::module::list_text(&list);
                return Ok(DirectBody::Bytes(Bytes::from(text)));
            }
            Wanted::Latest => "latest".to_string(),
            Wanted::Query(q) => q,
            Wanted::File(v, FileKind::Info) => v.as_str().to_string(),
            Wanted::File(v, kind) => {
                let arg = format!("{m}@{}", v.as_str());
                self.run(vcs, &["mod", "download", "-json", &arg]).await?;
                return self.cached(module, &v, kind).await;
            }
        };
        // `go list -m` resolves the query and writes the version's `.info` (with the Origin
        // the go command records) into the module cache, without making a zip.
        let arg = format!("{m}@{query}");
        let got = self.run(vcs, &["list", "-m", "-json", &arg]).await?;
        let version = Version::parse(&got.version).map_err(|e| {
            VcsError::Failed(format!(
                "{m}@{query}: go resolved it to {:?}: {e}",
                got.version
            ))
        })?;
        self.cached(module, &version, FileKind::Info).await
    }

    /// A file the go command left in its download cache.
    async fn cached(
        &self,
        module: &ModulePath,
        v: &Version,
        kind: FileKind,
    ) -> Result<DirectBody, VcsError> {
        let path = self
            .dir
            .join("gopath/pkg/mod/cache/download")
            .join(module.escaped().as_ref())
            .join("@v")
            .join(format!("{}.{}", v.escaped(), kind.ext()));
        let missing = |e: std::io::Error| {
            VcsError::Failed(format!(
                "{}@{}: the go command left no .{}: {e}",
                module.as_str(),
                v.as_str(),
                kind.ext()
            ))
        };
        if kind != FileKind::Zip {
            let body = tokio::fs::read(&path).await.map_err(missing)?;
            return Ok(DirectBody::Bytes(Bytes::from(body)));
        }
        let zip = std::fs::File::open(&path).map_err(missing)?;
        // The open file stays readable; the proxy stores it, so the module cache need not
        // keep the zip or the tree the go command extracted from it (the biggest part).
        let extracted =
            self.dir
                .join("gopath/pkg/mod")
                .join(format!("{}@{}", module.escaped(), v.escaped()));
        let ziphash = path.with_extension("ziphash");
        for f in [&path, &ziphash] {
            let _ = tokio::fs::remove_file(f).await;
        }
        if let Err(e) = tokio::fs::remove_dir_all(&extracted).await {
            tracing::debug!(dir = %extracted.display(), "removing an extracted module: {e}");
        }
        Ok(DirectBody::File(zip))
    }

    /// Runs the go binary with `args` (argv, no shell) in its isolated environment, killing
    /// it and everything it started on timeout or when the request goes away.
    async fn run(&self, vcs: &str, args: &[&str]) -> Result<GoModule, VcsError> {
        self.ready
            .get_or_try_init(|| self.prepare())
            .await
            .map_err(|e| VcsError::Failed(format!("preparing the go binary's directories: {e}")))?;
        let _slot = self
            .runs
            .acquire()
            .await
            .map_err(|e| VcsError::Failed(format!("go run limit: {e}")))?;
        let what = format!("go {} ({vcs})", args.join(" "));
        tracing::debug!(command = %what, "running the go binary for a {vcs} repository");
        let mut cmd = tokio::process::Command::new(&self.go);
        cmd.args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            // Outside any module: no go.mod is looked for above the root.
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so the VCS tools it starts are killed with it.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| VcsError::Failed(format!("running {}: {e}", self.go.display())))?;
        let group = KillGroup(child.id());
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(VcsError::Failed(format!("{what}: no output pipes")));
        };
        let (out, err, status) = tokio::time::timeout(self.timeout, async {
            tokio::join!(
                read_bounded(stdout, MAX_STDOUT),
                read_bounded(stderr, MAX_STDERR),
                child.wait()
            )
        })
        .await
        .map_err(|_| {
            VcsError::Failed(format!("{what}: no answer in {}s", self.timeout.as_secs()))
        })?;
        let status = status.map_err(|e| VcsError::Failed(format!("{what}: {e}")))?;
        // Exited and reaped: its group id may be reused, so it is not signalled any more.
        std::mem::forget(group);
        let out = match out {
            Ok((out, false)) => out,
            Ok((_, true)) => {
                return Err(VcsError::Failed(format!(
                    "{what}: more than {MAX_STDOUT} bytes of output"
                )));
            }
            Err(e) => return Err(VcsError::Failed(format!("{what}: stdout: {e}"))),
        };
        let err = err.map(|(e, _)| e).unwrap_or_default();
        let err = String::from_utf8_lossy(&err).into_owned();
        // `-json` puts a module's error in the output too; stderr has the rest.
        let parsed: Option<GoModule> = serde_json::from_slice(&out).ok();
        let json_error = parsed
            .as_ref()
            .and_then(|m| m.error.as_ref())
            .map(|e| match e {
                serde_json::Value::Object(o) => o
                    .get("Err")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string(),
                other => other.as_str().unwrap_or_default().to_string(),
            })
            .filter(|e| !e.is_empty());
        match (status.success(), parsed, json_error) {
            (true, Some(m), None) => Ok(m),
            (_, _, Some(e)) => Err(classify(&e)),
            (false, _, None) => Err(classify(&err)),
            (true, None, None) => Err(VcsError::Failed(format!(
                "{what}: output is not JSON: {}",
                first_lines(&String::from_utf8_lossy(&out))
            ))),
        }
    }

    /// Creates the directories and writes the `.netrc` (owner-only: it holds credentials).
    async fn prepare(&self) -> std::io::Result<()> {
        for d in ["home", "gopath", "gocache", "tmp"] {
            tokio::fs::create_dir_all(self.dir.join(d)).await?;
        }
        let path = self.dir.join("home/.netrc");
        let text = self.netrc.clone();
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(path)?;
            f.write_all(text.as_bytes())
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

/// SIGKILL to a process group when dropped (a timeout, a cancelled request).
struct KillGroup(Option<u32>);

impl Drop for KillGroup {
    fn drop(&mut self) {
        if let Some(pid) = self
            .0
            .and_then(|p| rustix::process::Pid::from_raw(p as i32))
        {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

/// The proxy's logins as `.netrc` lines; entries a whitespace-separated netrc cannot hold
/// are left out rather than garbled.
fn netrc_text(logins: &[(String, Login)]) -> String {
    logins
        .iter()
        .filter(|(h, l)| {
            [h, &l.user, &l.password]
                .iter()
                .all(|s| !s.is_empty() && !s.contains(char::is_whitespace))
        })
        .map(|(h, l)| format!("machine {h} login {} password {}\n", l.user, l.password))
        .collect()
}

/// The first `max` bytes, and whether there were more (read and dropped, so the process is
/// never blocked on a full pipe).
async fn read_bounded(mut r: impl AsyncRead + Unpin, max: u64) -> std::io::Result<(Vec<u8>, bool)> {
    let mut buf = Vec::new();
    (&mut r).take(max).read_to_end(&mut buf).await?;
    let more = tokio::io::copy(&mut r, &mut tokio::io::sink()).await?;
    Ok((buf, more > 0))
}

/// The go command's message as our error: "does not exist" kinds are NotFound (a 404 lets
/// the client go on), anything else Failed. Credentials in URLs are masked.
fn classify(msg: &str) -> VcsError {
    let text = athens_config::redact_userinfo(&first_lines(msg));
    let lower = text.to_ascii_lowercase();
    let missing_tool = lower.contains("executable file not found");
    let absent = [
        "unknown revision",
        "not found",
        "no matching versions",
        "invalid version",
        "no such file or directory",
    ]
    .iter()
    .any(|s| lower.contains(s));
    if absent && !missing_tool {
        VcsError::NotFound(text)
    } else {
        VcsError::Failed(text)
    }
}

/// The first few lines, trimmed: what the go command says comes first.
fn first_lines(s: &str) -> String {
    let lines: Vec<&str> = s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(4)
        .collect();
    let mut out = lines.join("; ");
    if out.len() > 1000 {
        let mut end = 1000;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_and_masked() {
        let nf = classify("go: m.test/r@v9.0.0: invalid version: unknown revision v9.0.0\n");
        assert!(matches!(nf, VcsError::NotFound(_)), "{nf:?}");
        let e = classify("go: m.test/r: hg clone https://u:secret@m.test/r: exit status 255\n");
        let VcsError::Failed(m) = e else {
            panic!("{e:?}")
        };
        assert!(!m.contains("secret") && m.contains("***@m.test"), "{m}");
        let tool = classify("go: m.test/r: exec: \"hg\": executable file not found in $PATH");
        assert!(matches!(tool, VcsError::Failed(_)), "{tool:?}");
    }

    #[test]
    fn netrc_lines_skip_what_netrc_cannot_hold() {
        let login = |u: &str, p: &str| Login {
            user: u.into(),
            password: p.into(),
        };
        let text = netrc_text(&[
            ("a.test".into(), login("u", "p")),
            ("b.test".into(), login("u", "has space")),
        ]);
        assert_eq!(text, "machine a.test login u password p\n");
    }

    /// A delegate whose "go" is the shell script `body`.
    fn fake_go(dir: &std::path::Path, body: &str) -> GoDelegate {
        use std::os::unix::fs::PermissionsExt;
        let go = dir.join("go");
        std::fs::write(&go, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&go, std::fs::Permissions::from_mode(0o755)).unwrap();
        let login = Login {
            user: "u".into(),
            password: "p".into(),
        };
        GoDelegate::new(
            go,
            dir.join("cache"),
            &["corp.test".into()],
            &[("corp.test".into(), login)],
        )
    }

    #[tokio::test]
    async fn the_go_binary_gets_an_isolated_environment() {
        let dir = tempfile::tempdir().unwrap();
        // cargo runs tests with it set: it must not reach the go binary.
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        let go = fake_go(
            dir.path(),
            r#"printf '{"Versions":["%s","%s","%s","%s","%s","%s","%s"]}' "$GOPROXY" "$GOSUMDB" \
               "$GOPRIVATE" "$GOTOOLCHAIN" "${CARGO_MANIFEST_DIR:-unset}" "$(pwd)" \
               "$(cat "$NETRC")""#,
        );
        let got = go.run("hg", &["list"]).await.unwrap().versions;
        assert_eq!(
            got,
            [
                "direct",
                "off",
                "corp.test",
                "local",
                "unset",
                "/",
                "machine corp.test login u password p"
            ]
        );
        let mode = std::fs::metadata(dir.path().join("cache/home/.netrc"))
            .unwrap()
            .permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o600);
    }

    #[tokio::test]
    async fn failures_are_not_found_or_failed_and_output_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let go = fake_go(
            dir.path(),
            "echo 'go: m.test/r@v9.0.0: invalid version: unknown revision v9.0.0' >&2; exit 1",
        );
        let e = go.run("hg", &["list"]).await.unwrap_err();
        assert!(matches!(e, VcsError::NotFound(_)), "{e:?}");
        let go = fake_go(
            dir.path(),
            r#"printf '{"Version":"v1.0.0","Error":{"Err":"hg clone: exit status 255"}}'"#,
        );
        let e = go.run("hg", &["list"]).await.unwrap_err();
        assert!(matches!(e, VcsError::Failed(_)), "{e:?}");
        let go = fake_go(dir.path(), "head -c 5000000 /dev/zero");
        let e = go.run("hg", &["list"]).await.unwrap_err();
        assert!(e.to_string().contains("bytes of output"), "{e}");
    }

    #[tokio::test]
    async fn a_hung_go_binary_is_killed_with_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let script = format!("sleep 60 & echo $! > {}; wait", pid_file.display());
        let mut go = fake_go(dir.path(), &script);
        go.timeout = Duration::from_millis(500);
        let e = go.run("hg", &["list"]).await.unwrap_err();
        assert!(e.to_string().contains("no answer"), "{e}");
        gone(&pid_file).await;
        // Cancelled (the request went away) rather than timed out: the same.
        go.timeout = TIMEOUT;
        let cancelled =
            tokio::time::timeout(Duration::from_millis(500), go.run("hg", &["list"])).await;
        assert!(cancelled.is_err());
        gone(&pid_file).await;
    }

    /// Waits until the process whose id is in `pid_file` is dead (gone, or a zombie).
    async fn gone(pid_file: &std::path::Path) {
        let pid = std::fs::read_to_string(pid_file).unwrap();
        let stat = std::path::PathBuf::from(format!("/proc/{}/stat", pid.trim()));
        for _ in 0..50 {
            let state = std::fs::read_to_string(&stat).unwrap_or_default();
            if state.is_empty() || state.contains(") Z") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the VCS tool the go binary started is still running");
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "x".repeat(5000) + "\nsecond\nthird\nfourth\nfifth\n";
        let got = first_lines(&long);
        assert!(got.len() <= 1003 && got.ends_with("..."), "{}", got.len());
        assert_eq!(first_lines("a\n\n b \nc\nd\ne\n"), "a; b; c; d");
    }
}
