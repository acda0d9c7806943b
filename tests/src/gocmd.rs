//! Running the real `go` command in isolation: its own module cache, GOPATH and settings.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A sandbox for the go command: a fresh GOPATH/GOMODCACHE per instance.
pub struct GoEnv {
    pub root: tempfile::TempDir,
    pub goproxy: String,
    pub gosumdb: String,
    pub extra: Vec<(String, String)>,
}

impl GoEnv {
    pub fn new(goproxy: &str, gosumdb: &str) -> Self {
        Self::new_in(&std::env::temp_dir(), goproxy, gosumdb)
    }

    /// Like [`GoEnv::new`], with the sandbox under `parent`.
    pub fn new_in(parent: &Path, goproxy: &str, gosumdb: &str) -> Self {
        Self {
            root: tempfile::tempdir_in(parent).expect("tempdir"),
            goproxy: goproxy.into(),
            gosumdb: gosumdb.into(),
            extra: Vec::new(),
        }
    }

    pub fn modcache(&self) -> PathBuf {
        self.root.path().join("gopath/pkg/mod")
    }

    /// Runs `go args...` in `dir` with this sandbox's settings.
    pub fn run(&self, dir: &Path, args: &[&str]) -> Output {
        let gopath = self.root.path().join("gopath");
        let mut cmd = Command::new("go");
        cmd.args(args)
            .current_dir(dir)
            .env("GOPATH", &gopath)
            .env("GOMODCACHE", self.modcache())
            .env("GOCACHE", self.root.path().join("gocache"))
            .env("GOPROXY", &self.goproxy)
            .env("GOSUMDB", &self.gosumdb)
            .env("GOFLAGS", "-modcacherw")
            .env("GOTOOLCHAIN", "local")
            .env_remove("GOPRIVATE")
            .env_remove("GONOSUMDB")
            .env_remove("GONOPROXY");
        for (k, v) in &self.extra {
            cmd.env(k, v);
        }
        cmd.output().expect("run go")
    }

    /// `go mod download -json path@version…` in `dir`; panics when it fails.
    pub fn download(&self, dir: &Path, modules: &[(&str, &str)]) -> String {
        let args: Vec<String> = modules.iter().map(|(p, v)| format!("{p}@{v}")).collect();
        let mut cmd = vec!["mod", "download", "-json"];
        cmd.extend(args.iter().map(String::as_str));
        self.run_ok(dir, &cmd)
    }

    /// Like `run`, but panics with the go command's output when it fails.
    pub fn run_ok(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.run(dir, args);
        assert!(
            out.status.success(),
            "go {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The machine's own upstream, as the go command sees it (`$GOPROXY`, else `go env GOPROXY`).
pub fn machine_goproxy() -> String {
    go_env("GOPROXY")
}

/// The machine's checksum database setting.
pub fn machine_gosumdb() -> String {
    go_env("GOSUMDB")
}

fn go_env(name: &str) -> String {
    if let Ok(v) = std::env::var(name)
        && !v.trim().is_empty()
    {
        return v;
    }
    let out = Command::new("go")
        .args(["env", name])
        .output()
        .expect("go env");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `../shared/test-modules.txt`: (path, version) pairs.
pub fn test_modules() -> Vec<(String, String)> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/test-modules.txt");
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?.to_string(), parts.next()?.to_string()))
        })
        .collect()
}
