//! Building the small Go programs under tests/ (tests/sumdb, tests/xmod), once per test process;
//! go's build cache makes every build after the first on a machine nearly instant.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Builds the Go program in `tests/<dir>` and returns the path of its binary.
pub fn binary(dir: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(bin) = built.get(dir) {
        return bin.clone();
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let out = std::env::temp_dir().join(format!("athens-e2e-{dir}-{}", std::process::id()));
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(&src)
        .env("GOWORK", "off")
        .env("GOFLAGS", "-mod=mod")
        .status()
        .unwrap_or_else(|e| panic!("running go build for tests/{dir}: {e}"));
    assert!(status.success(), "go build of tests/{dir} failed");
    built.insert(dir.to_string(), out.clone());
    out
}
