//! A git config file for the proxy (`upstream.vcs_git_config`), taken as git takes
//! `GIT_CONFIG_GLOBAL`: the `go-import` tags name a URL that does not serve git
//! (`https://<host>/moved/...`), `url.<base>.insteadOf` sends it to the real one, and the git
//! host wants a bearer token, sent by `http.extraHeader` in a `[http "https://<host>/"]`
//! section (basic auth is refused there). The go command with `GOPROXY=direct` and the same
//! file as its git's global config, and the go command through the proxy, must get the same
//! versions, `Sum` and `GoModSum`. Without the file the proxy cannot fetch at all.

use athens_e2e::githost::{GitHost, all_modules, downloads, make_repos, times};
use athens_e2e::gocmd::GoEnv;
use athens_e2e::proxy::ProxyProcess;

const TOKEN: &str = "tok-3f9a1c77e0";

#[tokio::test(flavor = "multi_thread")]
async fn git_config_insteadof_and_extraheader_match_goproxy_direct() {
    let dir = tempfile::tempdir().unwrap();
    let (root, work) = (dir.path().join("repos"), dir.path().join("work"));
    std::fs::create_dir_all(&root).unwrap();
    let githost = GitHost::start(&root).await.expect("start the git host");
    let host = githost.host.clone();
    githost.set_repo_base(&format!("https://{host}/moved"));
    githost.require_bearer_for_git(TOKEN);
    make_repos(&root, &work, &host).expect("make repositories");
    let git_config = dir.path().join("gitconfig");
    std::fs::write(
        &git_config,
        format!(
            "[url \"https://{host}/git/\"]\n\tinsteadOf = https://{host}/moved/\n\
             [http \"https://{host}/\"]\n\textraHeader = Authorization: Bearer {TOKEN}\n\
             [http \"https://elsewhere.test/\"]\n\textraHeader = Authorization: Bearer wrong\n"
        ),
    )
    .unwrap();
    let netrc = dir.path().join("netrc");
    std::fs::write(&netrc, githost.netrc()).unwrap();
    let ca = githost.ca_file.display().to_string();
    let modules = all_modules(&host);
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::write(scratch.join("go.mod"), "module scratch\n").unwrap();
    let go_env = |goproxy: &str| {
        let mut go = GoEnv::new_in(dir.path(), goproxy, "off");
        let home = go.root.path().to_path_buf();
        std::fs::copy(&netrc, home.join(".netrc")).unwrap();
        go.extra = vec![
            ("HOME".into(), home.display().to_string()),
            ("SSL_CERT_FILE".into(), ca.clone()),
            ("GIT_SSL_CAINFO".into(), ca.clone()),
            ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
            ("GIT_CONFIG_GLOBAL".into(), git_config.display().to_string()),
        ];
        let var = if goproxy == "direct" {
            "GOPRIVATE"
        } else {
            "GONOSUMDB"
        };
        go.extra.push((var.into(), host.clone()));
        go
    };
    let direct = go_env("direct");
    let want = downloads(&direct, &scratch, &modules);
    let want_times = times(&direct, &scratch, &want);

    let tmp = dir.path().join("proxy-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let (netrc_s, tmp_s) = (netrc.display().to_string(), tmp.display().to_string());
    let env = [
        ("SSL_CERT_FILE", ca.as_str()),
        ("NETRC", netrc_s.as_str()),
        ("TMPDIR", tmp_s.as_str()),
    ];
    let start = |config: Option<&std::path::Path>, name: &str| {
        let storage = format!("file://{}", dir.path().join(name).display());
        let cfg_file = dir.path().join(format!("{name}.toml"));
        let text = match config {
            Some(p) => format!(
                "[upstream]\nvcs_git_config = {:?}\n",
                p.display().to_string()
            ),
            None => String::new(),
        };
        std::fs::write(&cfg_file, text).unwrap();
        let cfg_s = cfg_file.display().to_string();
        let args = [
            "--config",
            cfg_s.as_str(),
            "--listen",
            "127.0.0.1:0",
            "--storage",
            storage.as_str(),
            "--upstream",
            "off",
            "--sumdb",
            "off",
            "--private",
            host.as_str(),
        ];
        let log = dir.path().join(format!("{name}.log"));
        (ProxyProcess::start_logged(&args, &env, &log), log)
    };

    // Without the git config: the go-import URL serves no git, and nothing else gets in.
    let (bare, _) = start(None, "without");
    let resp = reqwest::get(format!("{}/{host}/fresh/@v/list", bare.url))
        .await
        .unwrap();
    assert!(
        !resp.status().is_success(),
        "fetched without the git config: {}",
        resp.status()
    );
    drop(bare);

    let (proxy, log) = start(Some(&git_config), "with");
    let through = go_env(&proxy.url);
    let got = downloads(&through, &scratch, &modules);
    assert_eq!(got, want, "through the proxy vs GOPROXY=direct");
    assert_eq!(times(&through, &scratch, &got), want_times, ".info Time");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(!logged.contains(TOKEN), "the token is in the proxy's log");
}

/// A token per host (`upstream.vcs_tokens`) instead of a `.netrc`: the proxy authenticates
/// discovery and git fetches with it and gets what `GOPROXY=direct` gets; a tiny mirror cache
/// limit changes no answer (mirrors used in the last two minutes are never removed, so this
/// run removes none: removal itself is covered by the unit tests in proxy/src/vcs/cache.rs).
#[tokio::test(flavor = "multi_thread")]
async fn host_token_and_bounded_mirror_cache() {
    let dir = tempfile::tempdir().unwrap();
    let (root, work) = (dir.path().join("repos"), dir.path().join("work"));
    std::fs::create_dir_all(&root).unwrap();
    let githost = GitHost::start(&root).await.expect("start the git host");
    let host = githost.host.clone();
    make_repos(&root, &work, &host).expect("make repositories");
    let netrc = dir.path().join("netrc");
    std::fs::write(&netrc, githost.netrc()).unwrap();
    let ca = githost.ca_file.display().to_string();
    let modules = all_modules(&host);
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::write(scratch.join("go.mod"), "module scratch\n").unwrap();
    let go_env = |goproxy: &str, var: &str| {
        let mut go = GoEnv::new_in(dir.path(), goproxy, "off");
        let home = go.root.path().to_path_buf();
        std::fs::copy(&netrc, home.join(".netrc")).unwrap();
        go.extra = vec![
            ("HOME".into(), home.display().to_string()),
            ("SSL_CERT_FILE".into(), ca.clone()),
            ("GIT_SSL_CAINFO".into(), ca.clone()),
            ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
            (var.into(), host.clone()),
        ];
        go
    };
    let want = downloads(&go_env("direct", "GOPRIVATE"), &scratch, &modules);

    let token = dir.path().join("token");
    std::fs::write(&token, format!("{}\n", athens_e2e::githost::PASSWORD)).unwrap();
    let cfg = dir.path().join("proxy.toml");
    std::fs::write(
        &cfg,
        format!(
            "[upstream]\nvcs_cache_max_bytes = 1\n\n[[upstream.vcs_tokens]]\nhost = {host:?}\n\
             username = {:?}\nfile = {:?}\n",
            athens_e2e::githost::USER,
            token.display().to_string()
        ),
    )
    .unwrap();
    let tmp = dir.path().join("proxy-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let (cfg_s, tmp_s) = (cfg.display().to_string(), tmp.display().to_string());
    let storage = format!("file://{}", dir.path().join("storage").display());
    // No NETRC: the token is the only credential.
    let env = [("SSL_CERT_FILE", ca.as_str()), ("TMPDIR", tmp_s.as_str())];
    let args = [
        "--config",
        cfg_s.as_str(),
        "--listen",
        "127.0.0.1:0",
        "--storage",
        storage.as_str(),
        "--upstream",
        "off",
        "--sumdb",
        "off",
        "--private",
        host.as_str(),
    ];
    let log = dir.path().join("proxy.log");
    let proxy = ProxyProcess::start_logged(&args, &env, &log);
    let got = downloads(&go_env(&proxy.url, "GONOSUMDB"), &scratch, &modules);
    assert_eq!(got, want, "with a host token vs GOPROXY=direct");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        !logged.contains(athens_e2e::githost::PASSWORD),
        "token in the log"
    );
}
