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
    // One place per checkout (beside the Rust build), not a new file in /tmp per test process:
    // those piled up by the hundred. Built under a per-process name, then renamed, so test
    // processes running at once never see a half-written binary.
    let dir_out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/go-helpers");
    std::fs::create_dir_all(&dir_out)
        .unwrap_or_else(|e| panic!("creating {}: {e}", dir_out.display()));
    let out = dir_out.join(dir);
    let partial = dir_out.join(format!(".{dir}-{}", std::process::id()));
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&partial)
        .arg(".")
        .current_dir(&src)
        .env("GOWORK", "off")
        .env("GOFLAGS", "-mod=mod")
        .status()
        .unwrap_or_else(|e| panic!("running go build for tests/{dir}: {e}"));
    assert!(status.success(), "go build of tests/{dir} failed");
    std::fs::rename(&partial, &out)
        .unwrap_or_else(|e| panic!("moving {} into place: {e}", partial.display()));
    built.insert(dir.to_string(), out.clone());
    out
}
