//! Modules in a Mercurial repository, delegated to a go binary (`upstream.vcs_go_binary`): a
//! real `hg serve` over HTTPS with the test's CA, found through `go-import` discovery (with
//! basic auth) on the git host's address. The go command through the proxy gets the versions,
//! `Sum`, `GoModSum` and `Time` that `GOPROXY=direct` gets, and again from storage with the hg
//! server stopped; without the setting the proxy answers a 404 naming hg.

use athens_e2e::githost::{
    GitHost, PASSWORD, assert_404, downloads, private_go, resolved, scratch_module,
    start_private_proxy, times, versions,
};
use athens_e2e::hgserve::{HgServe, hg, hg_dir, path_with_hg};
use std::path::PathBuf;

/// The machine's go binary, by absolute path as an operator would name it.
fn go_binary() -> PathBuf {
    let out = std::process::Command::new("go")
        .args(["env", "GOROOT"])
        .output()
        .expect("go env GOROOT");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("bin/go")
}

#[tokio::test(flavor = "multi_thread")]
async fn hg_modules_through_a_go_binary_match_goproxy_direct() {
    let hg_bin = hg_dir().expect("install Mercurial (tests/peers/hg-install)");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repos");
    std::fs::create_dir_all(&root).unwrap();
    let githost = GitHost::start(&root).await.expect("start the git host");
    let host = githost.host.clone();
    let module = format!("{host}/hgmod");

    // Two tags; `hg tag` commits .hgtags, so the default branch's head is past v1.1.0.
    let repo = dir.path().join("hgmod");
    std::fs::create_dir_all(&repo).unwrap();
    let run = |args: &[&str]| hg(&hg_bin, &repo, args).unwrap();
    run(&["init"]);
    let go_mod = format!("module {module}\n\ngo 1.21\n");
    std::fs::write(repo.join("go.mod"), go_mod).unwrap();
    std::fs::write(repo.join("m.go"), "package hgmod\n").unwrap();
    run(&["add", "go.mod", "m.go"]);
    run(&["commit", "-m", "one", "-d", "2024-01-02 10:00 +0000"]);
    run(&["tag", "-d", "2024-01-02 10:01 +0000", "v1.0.0"]);
    std::fs::write(repo.join("m.go"), "package hgmod\n\nconst Two = 2\n").unwrap();
    run(&["commit", "-m", "two", "-d", "2024-01-03 10:00 +0000"]);
    run(&["tag", "-d", "2024-01-03 10:01 +0000", "v1.1.0"]);

    let serve =
        HgServe::start(&hg_bin, &repo, &host, "hg/hgmod", &githost.server_pem).expect("hg serve");
    githost.set_import("hg", &format!("{}/hg", serve.url));

    // hg trusts the test's CA through its own config, as an operator would set it up
    // (HGRCPATH is passed to the go binary); the go command and the proxy through
    // SSL_CERT_FILE.
    let ca_path = dir.path().join("ca.pem");
    std::fs::copy(&githost.ca_file, &ca_path).unwrap();
    let ca = ca_path.display().to_string();
    let hgrc = dir.path().join("hgrc");
    std::fs::write(&hgrc, format!("[web]\ncacerts = {ca}\n")).unwrap();
    let hgrc_s = hgrc.display().to_string();
    let path = path_with_hg(&hg_bin).unwrap();
    let path_s = path.to_string_lossy().into_owned();
    let netrc = dir.path().join("netrc");
    std::fs::write(&netrc, githost.netrc()).unwrap();
    let go_env = |goproxy: &str| {
        private_go(
            dir.path(),
            goproxy,
            &host,
            &netrc,
            &[
                ("SSL_CERT_FILE", ca.as_str()),
                ("HGRCPATH", hgrc_s.as_str()),
                ("PATH", path_s.as_str()),
            ],
        )
    };
    let scratch = scratch_module(dir.path());
    let modules: Vec<(String, String)> = ["v1.0.0", "v1.1.0", "latest", "default"]
        .iter()
        .map(|v| (module.clone(), v.to_string()))
        .collect();

    let direct = go_env("direct");
    let t = std::time::Instant::now();
    let want = downloads(&direct, &scratch, &modules);
    let direct_cold = t.elapsed();
    assert_eq!(want.len(), 3, "two tags and the default head: {want:?}");
    let want_times = times(&direct, &scratch, &want);
    let want_versions = versions(&direct, &scratch, &module);
    assert!(want_versions.contains("v1.0.0 v1.1.0"), "{want_versions}");

    let tmp = dir.path().join("proxy-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let (netrc_s, tmp_s) = (netrc.display().to_string(), tmp.display().to_string());
    let env = [
        ("NETRC", netrc_s.as_str()),
        ("TMPDIR", tmp_s.as_str()),
        ("SSL_CERT_FILE", ca.as_str()),
        ("HGRCPATH", hgrc_s.as_str()),
        ("PATH", path_s.as_str()),
    ];

    // Off by default: a 404 naming the VCS.
    let (bare, _) = start_private_proxy(dir.path(), "bare", "", &host, &env);
    assert_404(&format!("{}/{module}/@v/list", bare.url), "hg repository").await;
    drop(bare);

    let config = format!(
        "[upstream]\nvcs_go_binary = {:?}\n",
        go_binary().display().to_string()
    );
    let (proxy, log) = start_private_proxy(dir.path(), "with", &config, &host, &env);
    let through = go_env(&proxy.url);
    let t = std::time::Instant::now();
    let got = downloads(&through, &scratch, &modules);
    let proxy_cold = t.elapsed();
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        got, want,
        "through the proxy vs GOPROXY=direct; log:\n{log_text}"
    );
    assert_eq!(times(&through, &scratch, &got), want_times, ".info Time");
    assert_eq!(versions(&through, &scratch, &module), want_versions);
    assert!(!log_text.contains(PASSWORD), "a credential reached the log");
    // A version hg does not have: the go command's "unknown revision" becomes a 404.
    let missing = format!("{}/{module}/@v/v1.9.9.info", proxy.url);
    assert_404(&missing, "unknown revision").await;
    // Zips leave the go binary's module cache once served (the proxy stored them).
    let modcache = tmp.join("athens-vcs/go/gopath/pkg/mod");
    let cached = std::fs::read_dir(modcache.join("cache/download").join(&module).join("@v"))
        .expect("the go binary's download cache")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    assert!(cached.iter().any(|f| f.ends_with(".mod")), "{cached:?}");
    assert!(!cached.iter().any(|f| f.ends_with(".zip")), "{cached:?}");
    assert!(!modcache.join(format!("{module}@v1.0.0")).exists());

    // The hg server goes away; a new proxy process on the same storage serves it all.
    drop(serve);
    drop(proxy);
    let (proxy, _) = start_private_proxy(dir.path(), "with", &config, &host, &env);
    let again = go_env(&proxy.url);
    let resolved = resolved(&want);
    let t = std::time::Instant::now();
    let stored = downloads(&again, &scratch, &resolved);
    eprintln!(
        "hg: GOPROXY=direct {direct_cold:?}; through the proxy, first fetch {proxy_cold:?}, \
         from storage {:?}",
        t.elapsed()
    );
    assert_eq!(stored, want, "from storage with the hg server stopped");
}
