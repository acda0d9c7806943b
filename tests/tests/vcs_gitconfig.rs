//! A git config file for the proxy (`upstream.vcs_git_config`), taken as git takes
//! `GIT_CONFIG_GLOBAL`: the `go-import` tags name a URL that does not serve git
//! (`https://<host>/moved/...`), `url.<base>.insteadOf` sends it to the real one, and the git
//! host wants a bearer token, sent by `http.extraHeader` in a `[http "https://<host>/"]`
//! section (basic auth is refused there). The go command with `GOPROXY=direct` and the same
//! file as its git's global config, and the go command through the proxy, must get the same
//! versions, `Sum` and `GoModSum`. Without the file the proxy cannot fetch at all.

use athens_e2e::githost::{
    GitHost, all_modules, downloads, make_repos, private_go, start_private_proxy, times,
};

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
    let git_config_s = git_config.display().to_string();
    let go_env = |goproxy: &str| {
        private_go(
            dir.path(),
            goproxy,
            &host,
            &netrc,
            &[
                ("SSL_CERT_FILE", ca.as_str()),
                ("GIT_SSL_CAINFO", ca.as_str()),
                ("GIT_CONFIG_NOSYSTEM", "1"),
                ("GIT_CONFIG_GLOBAL", git_config_s.as_str()),
            ],
        )
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
    let start =
        |config: &str, name: &str| start_private_proxy(dir.path(), name, config, &host, &env);

    // Without the git config: the go-import URL serves no git, and nothing else gets in.
    let (bare, _) = start("", "without");
    let resp = reqwest::get(format!("{}/{host}/fresh/@v/list", bare.url))
        .await
        .unwrap();
    assert!(
        !resp.status().is_success(),
        "fetched without the git config: {}",
        resp.status()
    );
    drop(bare);

    let with = format!("[upstream]\nvcs_git_config = {git_config_s:?}\n");
    let (proxy, log) = start(&with, "with");
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
    let go_env = |goproxy: &str| {
        let env = [
            ("SSL_CERT_FILE", ca.as_str()),
            ("GIT_SSL_CAINFO", ca.as_str()),
            ("GIT_CONFIG_NOSYSTEM", "1"),
        ];
        private_go(dir.path(), goproxy, &host, &netrc, &env)
    };
    let want = downloads(&go_env("direct"), &scratch, &modules);

    let token = dir.path().join("token");
    std::fs::write(&token, format!("{}\n", athens_e2e::githost::PASSWORD)).unwrap();
    let config = format!(
        "[upstream]\nvcs_cache_max_bytes = 1\n\n[[upstream.vcs_tokens]]\nhost = {host:?}\n\
         username = {:?}\nfile = {:?}\n",
        athens_e2e::githost::USER,
        token.display().to_string()
    );
    let tmp = dir.path().join("proxy-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let tmp_s = tmp.display().to_string();
    // No NETRC: the token is the only credential.
    let env = [("SSL_CERT_FILE", ca.as_str()), ("TMPDIR", tmp_s.as_str())];
    let (proxy, log) = start_private_proxy(dir.path(), "storage", &config, &host, &env);
    let got = downloads(&go_env(&proxy.url), &scratch, &modules);
    assert_eq!(got, want, "with a host token vs GOPROXY=direct");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        !logged.contains(athens_e2e::githost::PASSWORD),
        "token in the log"
    );
}
