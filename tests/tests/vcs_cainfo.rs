//! git's `http.sslCAInfo` in the proxy's git config file (`upstream.vcs_git_config`): the git
//! host's certificate is signed by the test's own CA, and only that key names it (the proxy's
//! `SSL_CERT_FILE` stays the machine's). The module path carries a `.git` qualifier, so no
//! `go-import` discovery is involved (discovery trusts `SSL_CERT_FILE`, as the go command
//! does). Without the key the proxy cannot fetch; with it, the go command through the proxy
//! gets the versions, `Sum` and `GoModSum` that `GOPROXY=direct` gets.

use athens_e2e::githost::{
    GitHost, RepoBuilder, downloads, private_go, refused, scratch_module, start_private_proxy,
};

#[tokio::test(flavor = "multi_thread")]
async fn ssl_ca_info_in_the_git_config_trusts_the_git_host() {
    let dir = tempfile::tempdir().unwrap();
    let (githost, root, work) = GitHost::start_in(dir.path()).await;
    let host = githost.host.clone();
    let module = format!("{host}/git/cacert.git");
    let mut repo = RepoBuilder::new(work.join("cacert")).unwrap();
    let go_mod = format!("module {module}\n\ngo 1.21\n");
    repo.write(&[("go.mod", &go_mod), ("ca.go", "package cacert\n")])
        .unwrap();
    repo.commit("one").unwrap();
    repo.tag("v1.0.0").unwrap();
    repo.write(&[("more.go", "package cacert\n\nconst More = 1\n")])
        .unwrap();
    repo.commit("two").unwrap();
    repo.tag("v1.1.0").unwrap();
    repo.publish(&root, "cacert").unwrap();

    let ca = githost.ca_file.display().to_string();
    let git_config = dir.path().join("gitconfig");
    std::fs::write(&git_config, format!("[http]\n\tsslCAInfo = {ca}\n")).unwrap();
    let netrc = dir.path().join("netrc");
    std::fs::write(&netrc, githost.netrc()).unwrap();
    let modules: Vec<(String, String)> = ["v1.0.0", "v1.1.0", "latest"]
        .iter()
        .map(|v| (module.clone(), v.to_string()))
        .collect();
    let scratch = scratch_module(dir.path());
    let git_config_s = git_config.display().to_string();
    // git gives GIT_SSL_CAINFO precedence over the config: the reference run names the CA
    // itself rather than inherit whatever the machine sets.
    let go_env = |goproxy: &str| {
        private_go(
            dir.path(),
            goproxy,
            &host,
            &netrc,
            &[
                ("GIT_SSL_CAINFO", ca.as_str()),
                ("GIT_CONFIG_NOSYSTEM", "1"),
                ("GIT_CONFIG_GLOBAL", git_config_s.as_str()),
            ],
        )
    };
    let want = downloads(&go_env("direct"), &scratch, &modules);
    assert_eq!(want.len(), 2, "{want:?}");

    let tmp = dir.path().join("proxy-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let (netrc_s, tmp_s) = (netrc.display().to_string(), tmp.display().to_string());
    let env = [("NETRC", netrc_s.as_str()), ("TMPDIR", tmp_s.as_str())];
    let start =
        |config: &str, name: &str| start_private_proxy(dir.path(), name, config, &host, &env).0;

    // Without the key the host's certificate is not trusted.
    let bare = start("", "without");
    let body = refused(&format!("{}/{module}/@v/list", bare.url)).await;
    assert!(body.contains("certificate"), "the reason is named: {body}");
    drop(bare);

    let with = format!("[upstream]\nvcs_git_config = {git_config_s:?}\n");
    let proxy = start(&with, "with");
    let got = downloads(&go_env(&proxy.url), &scratch, &modules);
    assert_eq!(got, want, "through the proxy vs GOPROXY=direct");
}
