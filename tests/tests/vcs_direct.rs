//! Private modules straight from git: the proxy's native fetcher (`--private`) against
//! repositories made here, served by `git http-backend` over HTTPS with basic auth and
//! `go-import` discovery. For every module the go command through the proxy must get the same
//! versions, `Sum` and `GoModSum` as `GOPROXY=direct` (the go command running git itself), and
//! again from storage once the git host is gone.

use athens_e2e::githost::{GitHost, RepoBuilder};
use athens_e2e::gocmd::GoEnv;
use athens_e2e::proxy::ProxyProcess;
use std::collections::BTreeMap;
use std::path::Path;

/// What `go mod download -json` reports that must match.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Download {
    version: String,
    sum: String,
    go_mod_sum: String,
    time: String,
}

fn downloads(go: &GoEnv, dir: &Path, mods: &[(String, String)]) -> BTreeMap<String, Download> {
    let list: Vec<(&str, &str)> = mods.iter().map(|(p, v)| (p.as_str(), v.as_str())).collect();
    let out = go.download(dir, &list);
    let mut got = BTreeMap::new();
    for v in serde_json::Deserializer::from_str(&out).into_iter::<serde_json::Value>() {
        let v = v.expect("go mod download -json output");
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        assert!(s("Error").is_empty(), "{v}");
        got.insert(
            format!("{}@{}", s("Path"), s("Version")),
            Download {
                version: s("Version"),
                sum: s("Sum"),
                go_mod_sum: s("GoModSum"),
                time: s("Time"),
            },
        );
    }
    assert_eq!(got.len(), mods.len(), "{out}");
    got
}

fn versions(go: &GoEnv, dir: &Path, module: &str) -> String {
    go.run_ok(dir, &["list", "-m", "-versions", module])
}

/// The repositories: every case of the module layout the go command distinguishes.
fn make_repos(root: &Path, work: &Path, host: &str) -> anyhow::Result<()> {
    // "lib": a root module with vendor/, a nested module, an upper-case file name, a LICENSE,
    // a subdirectory module (tags `sub/vX`, LICENSE taken from the root), a v2 major-version
    // subdirectory, and annotated and lightweight tags.
    let mut lib = RepoBuilder::new(work.join("lib"))?;
    lib.write(&[
        ("go.mod", &format!("module {host}/lib\n\ngo 1.21\n")),
        ("lib.go", "package lib\n\nconst V = 1\n"),
        ("LICENSE", "Copyright (c) the lib authors\n"),
        ("README.MD", "Upper-case names are kept.\n"),
        ("vendor/modules.txt", "# vendored\n"),
        ("vendor/corp.test/dep/dep.go", "package dep\n"),
        ("pkg/vendor/vendor.go", "package vendor\n"),
        ("nested/go.mod", &format!("module {host}/lib/nested\n")),
        ("nested/n.go", "package nested\n"),
        ("sub/go.mod", &format!("module {host}/lib/sub\n\ngo 1.24\n")),
        ("sub/sub.go", "package sub\n"),
        ("sub/vendor/modules.txt", "# dropped from Go 1.24 on\n"),
    ])?;
    lib.commit("v1.0.0")?;
    lib.tag("v1.0.0")?;
    lib.tag("sub/v0.1.0")?;
    lib.write(&[("lib.go", "package lib\n\nconst V = 2\n")])?;
    lib.commit("v1.1.0")?;
    lib.annotated_tag("v1.1.0")?;
    lib.tag("v1.2.0-rc.1")?;
    lib.tag("not-a-version")?;
    lib.write(&[
        ("v2/go.mod", &format!("module {host}/lib/v2\n\ngo 1.22\n")),
        ("v2/lib.go", "package lib\n\nconst V = 3\n"),
    ])?;
    lib.commit("v2 in a subdirectory")?;
    lib.tag("v2.0.0")?;
    lib.annotated_tag("sub/v0.2.0")?;
    lib.publish(root, "lib")?;

    // "legacy": no go.mod at all; v2+ tags become +incompatible versions.
    let mut legacy = RepoBuilder::new(work.join("legacy"))?;
    legacy.write(&[("legacy.go", "package legacy\n")])?;
    legacy.commit("one")?;
    legacy.tag("v1.0.0")?;
    legacy.write(&[("legacy.go", "package legacy // two\n")])?;
    legacy.commit("two")?;
    legacy.tag("v2.0.0")?;
    legacy.tag("v2.1.0")?;
    legacy.publish(root, "legacy")?;
    Ok(())
}

fn all_modules(host: &str) -> Vec<(String, String)> {
    [
        ("lib", "v1.0.0"),
        ("lib", "v1.1.0"),
        ("lib", "v1.2.0-rc.1"),
        ("lib/sub", "v0.1.0"),
        ("lib/sub", "v0.2.0"),
        ("lib/v2", "v2.0.0"),
        ("legacy", "v1.0.0"),
        ("legacy", "v2.1.0+incompatible"),
    ]
    .iter()
    .map(|(m, v)| (format!("{host}/{m}"), v.to_string()))
    .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn private_git_modules_match_goproxy_direct() {
    let dir = tempfile::tempdir().unwrap();
    let (root, work) = (dir.path().join("repos"), dir.path().join("work"));
    std::fs::create_dir_all(&root).unwrap();
    let githost = GitHost::start(&root).await.expect("start the git host");
    let host = githost.host.clone();
    make_repos(&root, &work, &host).expect("make repositories");
    let netrc = dir.path().join("netrc");
    std::fs::write(&netrc, githost.netrc()).unwrap();
    let ca = githost.ca_file.to_string_lossy().into_owned();
    let modules = all_modules(&host);
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::write(scratch.join("go.mod"), "module scratch\n").unwrap();

    // The go command's own answer: GOPROXY=direct, git run by the go command.
    let go_env = |goproxy: &str| {
        let mut go = GoEnv::new_in(dir.path(), goproxy, "off");
        let home = go.root.path().to_path_buf();
        std::fs::copy(&netrc, home.join(".netrc")).unwrap();
        go.extra = vec![
            ("HOME".into(), home.to_string_lossy().into_owned()),
            ("SSL_CERT_FILE".into(), ca.clone()),
            ("GIT_SSL_CAINFO".into(), ca.clone()),
            ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
            ("GOPRIVATE".into(), host.clone()),
        ];
        go
    };
    let direct = go_env("direct");
    let want = downloads(&direct, &scratch, &modules);
    let want_versions: Vec<String> = ["lib", "lib/sub", "lib/v2", "legacy"]
        .iter()
        .map(|m| versions(&direct, &scratch, &format!("{host}/{m}")))
        .collect();

    // The proxy: private patterns go straight to git, with the same netrc and CA.
    let storage = dir.path().join("storage");
    let tmp = dir.path().join("proxy-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let storage_url = format!("file://{}", storage.display());
    let netrc_s = netrc.to_string_lossy().into_owned();
    let tmp_s = tmp.to_string_lossy().into_owned();
    let proxy_env = [
        ("SSL_CERT_FILE", ca.as_str()),
        ("NETRC", netrc_s.as_str()),
        ("TMPDIR", tmp_s.as_str()),
    ];
    let args = [
        "--storage",
        storage_url.as_str(),
        "--upstream",
        "off",
        "--sumdb",
        "off",
        "--private",
        host.as_str(),
    ];
    let mut proxy = ProxyProcess::start(&args, &proxy_env);
    let mut through = go_env(&proxy.url);
    // Through the proxy, not around it: GOPRIVATE would send the go command to git itself.
    through.extra.retain(|(k, _)| k != "GOPRIVATE");
    through.extra.push(("GONOSUMDB".into(), host.clone()));
    let got = downloads(&through, &scratch, &modules);
    eprintln!("GOPROXY=direct: {want:#?}");
    assert_eq!(got, want, "through the proxy vs GOPROXY=direct");
    let got_versions: Vec<String> = ["lib", "lib/sub", "lib/v2", "legacy"]
        .iter()
        .map(|m| versions(&through, &scratch, &format!("{host}/{m}")))
        .collect();
    assert_eq!(got_versions, want_versions, "version lists");
    assert!(
        want_versions[3].contains("v2.1.0+incompatible"),
        "the legacy repository lists +incompatible versions: {want_versions:?}"
    );

    // The git host goes away; a new proxy process on the same storage still serves it all.
    drop(githost);
    proxy.kill_hard();
    let proxy = ProxyProcess::start(&args, &proxy_env);
    let mut again = go_env(&proxy.url);
    again.extra.retain(|(k, _)| k != "GOPRIVATE");
    again.extra.push(("GONOSUMDB".into(), host.clone()));
    let stored = downloads(&again, &scratch, &modules);
    assert_eq!(stored, want, "from storage with the git host stopped");
}
