//! A git config file for the proxy (`upstream.vcs_git_config`), taken as git takes
//! `GIT_CONFIG_GLOBAL`: the `go-import` tags name a URL that does not serve git
//! (`https://<host>/moved/...`), `url.<base>.insteadOf` sends it to the real one, and the git
//! host wants a bearer token, sent by `http.extraHeader` in a `[http "https://<host>/"]`
//! section (basic auth is refused there). The go command with `GOPROXY=direct` and the same
//! file as its git's global config, and the go command through the proxy, must get the same
//! versions, `Sum` and `GoModSum`. Without the file the proxy cannot fetch at all.

use athens_e2e::githost::{
    GitHost, all_modules, downloads, make_repos, refused, scratch_module, start_private_proxy,
    times, trusting_go,
};

const TOKEN: &str = "tok-3f9a1c77e0";

#[tokio::test(flavor = "multi_thread")]
async fn git_config_insteadof_and_extraheader_match_goproxy_direct() {
    let dir = tempfile::tempdir().unwrap();
    let (githost, root, work) = GitHost::start_in(dir.path()).await;
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
    let scratch = scratch_module(dir.path());
    let git_config_s = git_config.display().to_string();
    let go_env = |goproxy: &str| {
        let env = [("GIT_CONFIG_GLOBAL", git_config_s.as_str())];
        trusting_go(dir.path(), goproxy, &host, &netrc, &ca, &env)
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
    let (githost, root, work) = GitHost::start_in(dir.path()).await;
    let host = githost.host.clone();
    make_repos(&root, &work, &host).expect("make repositories");
    let netrc = dir.path().join("netrc");
    std::fs::write(&netrc, githost.netrc()).unwrap();
    let ca = githost.ca_file.display().to_string();
    let modules = all_modules(&host);
    let scratch = scratch_module(dir.path());
    let go_env = |goproxy: &str| trusting_go(dir.path(), goproxy, &host, &netrc, &ca, &[]);
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

/// Credentials from a git credential helper program (`credential.helper` in the git config),
/// run by the proxy itself with git's protocol on stdin: the go-import pages need no login
/// (as on GitHub) and there is no `.netrc`, so the helper is the only way into the
/// repositories. The go command with `GOPROXY=direct` and the same git config runs the same
/// helper through git and must get the same versions, `Sum` and `GoModSum`. An absolute path,
/// a `!` shell command and a bare name (`git-credential-<name>` on `PATH`) all work; `cache`
/// is refused with a message saying why; the password is nowhere the proxy writes.
#[tokio::test(flavor = "multi_thread")]
async fn credential_helper_program_matches_goproxy_direct() {
    use athens_e2e::githost::{PASSWORD, USER};
    let dir = tempfile::tempdir().unwrap();
    let (githost, root, work) = GitHost::start_in(dir.path()).await;
    let host = githost.host.clone();
    githost.open_discovery();
    make_repos(&root, &work, &host).expect("make repositories");
    // The helper logs each request it gets (no secret in it) and answers `get` only.
    let asked = dir.path().join("asked.log");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("git-credential-testhelper");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 0\n\
             while IFS= read -r line && [ -n \"$line\" ]; do echo \"$line\" >> {asked:?}; done\n\
             echo end >> {asked:?}\nprintf 'username=%s\\npassword=%s\\n' {USER} {PASSWORD}\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config_with = |helper_value: &str, name: &str| {
        let path = dir.path().join(format!("gitconfig-{name}"));
        std::fs::write(&path, format!("[credential]\n\thelper = {helper_value}\n")).unwrap();
        path.display().to_string()
    };
    let by_path = config_with(&helper.display().to_string(), "by-path");
    // No `.netrc` anywhere: an empty one for the go command's HOME.
    let netrc = dir.path().join("netrc");
    std::fs::write(&netrc, "").unwrap();
    let ca = githost.ca_file.display().to_string();
    let modules = all_modules(&host);
    let scratch = scratch_module(dir.path());
    let go_env = |goproxy: &str| {
        let env = [("GIT_CONFIG_GLOBAL", by_path.as_str())];
        trusting_go(dir.path(), goproxy, &host, &netrc, &ca, &env)
    };
    let want = downloads(&go_env("direct"), &scratch, &modules);
    let _ = std::fs::remove_file(&asked);

    let tmp = dir.path().join("proxy-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let tmp_s = tmp.display().to_string();
    let path_env = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = [
        ("SSL_CERT_FILE", ca.as_str()),
        ("TMPDIR", tmp_s.as_str()),
        ("PATH", path_env.as_str()),
    ];
    let start = |git_config: &str, name: &str| {
        let config = format!("[upstream]\nvcs_git_config = {git_config:?}\n");
        start_private_proxy(dir.path(), name, &config, &host, &env)
    };
    let (proxy, log) = start(&by_path, "by-path");
    let got = downloads(&go_env(&proxy.url), &scratch, &modules);
    assert_eq!(got, want, "a helper by path vs GOPROXY=direct");
    let requests = std::fs::read_to_string(&asked).expect("the proxy ran the helper");
    assert!(
        requests.contains(&format!("protocol=https\nhost={host}\nend\n")),
        "{requests}"
    );
    let metrics = proxy.metrics().await;
    drop(proxy);

    // The other two ways git names a helper, on one module each.
    let one = [modules[1].clone()];
    let key = format!("{}@{}", one[0].0, one[0].1);
    for (value, name) in [
        (format!("\"!{} \"", helper.display()), "shell"),
        ("testhelper".to_string(), "by-name"),
    ] {
        let (proxy, _) = start(&config_with(&value, name), name);
        let got = downloads(&go_env(&proxy.url), &scratch, &one);
        assert_eq!(got[&key], want[&key], "helper = {value}");
    }

    // `cache` needs git's daemon: refused, and the answer says so.
    let (proxy, _) = start(&config_with("cache", "cache"), "cache");
    let body = refused(&format!("{}/{host}/fresh/@v/list", proxy.url)).await;
    assert!(body.contains("credential helper `cache`"), "{body}");

    let mut written = std::fs::read_to_string(&log).unwrap() + &metrics;
    for entry in walk(&dir.path().join("by-path")) {
        written.push_str(&String::from_utf8_lossy(&std::fs::read(entry).unwrap()));
    }
    assert!(!written.contains(PASSWORD), "the password was written out");
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
