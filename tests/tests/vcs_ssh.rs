//! Private modules over SSH: the `go-import` tags (HTTPS, the test's CA, basic auth) name
//! `ssh://` repositories served by Debian's `sshd`, started here on loopback with its own host
//! key and one authorized key. The go command with `GOPROXY=direct` (git running `ssh` with
//! that key and known_hosts, set for the go command only) and the go command through the proxy
//! (its own SSH client, configured with the same key and known_hosts) must get the same
//! versions, `Sum` and `GoModSum`; then a new proxy process serves it all from storage with
//! sshd stopped. The private key never shows in the proxy's log, its storage or its metrics.

use athens_e2e::githost::{
    GitHost, all_modules, downloads, git, make_repos, refused, resolved, times, versions,
};
use athens_e2e::gocmd::GoEnv;
use athens_e2e::proxy::ProxyProcess;
use athens_e2e::sshhost::SshHost;
use std::path::Path;

/// Every file under `dir`, read as text where it is text.
fn files_text(dir: &Path) -> String {
    let mut out = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.push_str(&String::from_utf8_lossy(&b));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_git_modules_match_goproxy_direct() {
    let dir = tempfile::tempdir().unwrap();
    let (githost, root, work) = GitHost::start_in(dir.path()).await;
    let host = githost.host.clone();
    let ip = host.parse().unwrap();
    let mut sshd = tokio::task::spawn_blocking(move || SshHost::start(ip))
        .await
        .unwrap()
        .expect("start sshd");
    // go-import tags now say ssh://<user>@<ip>:<port>/<root>/<name>.git.
    githost.set_repo_base(&format!("{}{}", sshd.url_base(), root.display()));
    make_repos(&root, &work, &host).expect("make repositories");
    let netrc = dir.path().join("netrc");
    std::fs::write(&netrc, githost.netrc()).unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::copy(&githost.ca_file, &ca_path).unwrap();
    let ca = ca_path.to_string_lossy().into_owned();
    let mut modules = all_modules(&host);
    let head = git(&work.join("lib"), &["rev-parse", "feature"], &[]).unwrap();
    modules.push((format!("{host}/lib"), head.trim()[..12].to_string()));
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::write(scratch.join("go.mod"), "module scratch\n").unwrap();

    let ssh_command = sshd.git_ssh_command();
    let go_env = |goproxy: &str| {
        let mut go = GoEnv::new_in(dir.path(), goproxy, "off");
        let home = go.root.path().to_path_buf();
        std::fs::copy(&netrc, home.join(".netrc")).unwrap();
        go.extra = vec![
            ("HOME".into(), home.to_string_lossy().into_owned()),
            ("SSL_CERT_FILE".into(), ca.clone()),
            ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
            ("GIT_SSH_COMMAND".into(), ssh_command.clone()),
        ];
        if goproxy == "direct" {
            go.extra.push(("GOPRIVATE".into(), host.clone()));
        } else {
            go.extra.push(("GONOSUMDB".into(), host.clone()));
        }
        go
    };
    let direct = go_env("direct");
    let t = std::time::Instant::now();
    let want = downloads(&direct, &scratch, &modules);
    let direct_cold = t.elapsed();
    let want_times = times(&direct, &scratch, &want);
    let names = ["lib", "lib/sub", "lib/v2", "legacy", "fresh"];
    let want_versions: Vec<String> = names
        .iter()
        .map(|m| versions(&direct, &scratch, &format!("{host}/{m}")))
        .collect();
    assert!(
        want_versions[0].contains("v1.2.0-rc.1"),
        "{want_versions:?}"
    );

    // The proxy: its own SSH client, with the key and known_hosts from its configuration.
    let storage = dir.path().join("storage");
    let tmp = dir.path().join("proxy-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let config = dir.path().join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            "[upstream]\nvcs_ssh_keys = [{:?}]\nvcs_known_hosts = {:?}\n",
            sshd.key.display().to_string(),
            sshd.known_hosts.display().to_string()
        ),
    )
    .unwrap();
    let storage_url = format!("file://{}", storage.display());
    let (netrc_s, tmp_s) = (netrc.display().to_string(), tmp.display().to_string());
    let config_s = config.display().to_string();
    let env = [
        ("SSL_CERT_FILE", ca.as_str()),
        ("NETRC", netrc_s.as_str()),
        ("TMPDIR", tmp_s.as_str()),
    ];
    let args = [
        "--config",
        config_s.as_str(),
        "--listen",
        "127.0.0.1:0",
        "--storage",
        storage_url.as_str(),
        "--upstream",
        "off",
        "--sumdb",
        "off",
        "--private",
        host.as_str(),
    ];
    let log = dir.path().join("proxy.log");
    let mut proxy = ProxyProcess::start_logged(&args, &env, &log);
    let through = go_env(&proxy.url);
    let t = std::time::Instant::now();
    let got = downloads(&through, &scratch, &modules);
    let proxy_cold = t.elapsed();
    assert_eq!(
        got, want,
        "through the proxy (native SSH) vs GOPROXY=direct"
    );
    assert_eq!(times(&through, &scratch, &got), want_times, ".info Time");
    let got_versions: Vec<String> = names
        .iter()
        .map(|m| versions(&through, &scratch, &format!("{host}/{m}")))
        .collect();
    assert_eq!(got_versions, want_versions, "version lists");

    // A proxy whose known_hosts does not list the server refuses it, and says why.
    let empty = dir.path().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let config2 = dir.path().join("proxy2.toml");
    std::fs::write(
        &config2,
        format!(
            "[upstream]\nvcs_ssh_keys = [{:?}]\nvcs_known_hosts = {:?}\n",
            sshd.key.display().to_string(),
            empty.display().to_string()
        ),
    )
    .unwrap();
    let (config2_s, storage2) = (
        config2.display().to_string(),
        format!("file://{}", dir.path().join("storage2").display()),
    );
    let mut args2 = args;
    args2[1] = config2_s.as_str();
    args2[5] = storage2.as_str();
    let log2 = dir.path().join("proxy2.log");
    let unknown = ProxyProcess::start_logged(&args2, &env, &log2);
    let body = refused(&format!("{}/{host}/fresh/@v/list", unknown.url)).await;
    assert!(
        body.contains("host key is not in the known_hosts file"),
        "{body}"
    );
    drop(unknown);

    // The private key is nowhere the proxy writes: log, storage, metrics, mirror cache.
    let metrics = proxy.metrics().await;
    let logged = std::fs::read_to_string(&log).unwrap() + &std::fs::read_to_string(&log2).unwrap();
    assert!(
        logged.contains("ssh"),
        "the debug log shows the SSH fetches"
    );
    let stored = files_text(&storage);
    assert!(stored.contains(&host), "storage holds the modules");
    let secret = sshd.secret_lines().unwrap();
    assert!(secret.len() >= 3, "{secret:?}");
    for line in &secret {
        for (what, text) in [
            ("log", &logged),
            ("storage", &stored),
            ("metrics", &metrics),
            ("mirror cache", &files_text(&tmp)),
        ] {
            assert!(!text.contains(line.as_str()), "private key in the {what}");
        }
    }

    // sshd and the HTTPS host stop; a new proxy process on the same storage serves it all.
    sshd.stop();
    drop(githost);
    proxy.kill_hard();
    let proxy = ProxyProcess::start(&args, &env);
    let again = go_env(&proxy.url);
    let resolved = resolved(&want);
    let stored = downloads(&again, &scratch, &resolved);
    assert_eq!(stored, want, "from storage with sshd stopped");
    eprintln!(
        "{} modules over SSH: GOPROXY=direct {direct_cold:?}; through the proxy, first fetch \
         {proxy_cold:?}",
        modules.len()
    );
}
