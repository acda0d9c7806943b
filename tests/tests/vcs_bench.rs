//! A benchmark, not a test (ignored; run it with
//! `cargo test -p athens-e2e --test vcs_bench -- --ignored --nocapture`, best with a release
//! proxy: `ATHENS_PROXY_BIN=target/release/athens-proxy`): the same git repository fetched by
//! `GOPROXY=direct` (the go command running git) and through the proxy (native fetch), timed
//! for a first fetch, a second version of the same repository, `list` and `@latest`.

use athens_e2e::githost::{GitHost, RepoBuilder, scratch_module, trusting_go};
use athens_e2e::gocmd::GoEnv;
use athens_e2e::proxy::ProxyProcess;
use std::path::Path;
use std::time::{Duration, Instant};

fn timed(go: &GoEnv, dir: &Path, args: &[&str]) -> Duration {
    let t = Instant::now();
    go.run_ok(dir, args);
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run by hand with --ignored"]
async fn bench_native_git_against_goproxy_direct() {
    let dir = tempfile::tempdir().unwrap();
    let (githost, root, work) = GitHost::start_in(dir.path()).await;
    let host = githost.host.clone();
    // 1,500 files in 50 packages, about 9 MB, then a second version changing 30 files.
    let mut repo = RepoBuilder::new(work.join("big")).unwrap();
    let mut files = vec![(
        "go.mod".to_string(),
        format!("module {host}/big\n\ngo 1.22\n"),
    )];
    for i in 0..1500 {
        let body: String = (0..120)
            .map(|l| {
                format!(
                    "var v{i}_{l} = \"{:x}\"\n",
                    (i * 7919 + l * 104729) as u64 * 2654435761
                )
            })
            .collect();
        files.push((format!("p{}/f{i}.go", i % 50), format!("package p\n{body}")));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    repo.write(&refs).unwrap();
    repo.commit("v1.0.0").unwrap();
    repo.tag("v1.0.0").unwrap();
    for (p, c) in files.iter_mut().skip(1).step_by(50) {
        c.push_str("// changed\n");
        repo.write(&[(p.as_str(), c.as_str())]).unwrap();
    }
    repo.commit("v1.1.0").unwrap();
    repo.tag("v1.1.0").unwrap();
    repo.publish(&root, "big").unwrap();

    let netrc = dir.path().join("netrc");
    std::fs::write(&netrc, githost.netrc()).unwrap();
    let ca = githost.ca_file.to_string_lossy().into_owned();
    let scratch = scratch_module(dir.path());
    let go_env = |goproxy: &str| trusting_go(dir.path(), goproxy, &host, &netrc, &ca, &[]);
    let storage = format!("file://{}", dir.path().join("storage").display());
    let netrc_s = netrc.to_string_lossy().into_owned();
    let tmp = dir.path().join("proxy-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let tmp_s = tmp.to_string_lossy().into_owned();
    let env = [
        ("SSL_CERT_FILE", ca.as_str()),
        ("NETRC", netrc_s.as_str()),
        ("TMPDIR", tmp_s.as_str()),
    ];
    let args = [
        "--storage",
        storage.as_str(),
        "--upstream",
        "off",
        "--sumdb",
        "off",
        "--private",
        host.as_str(),
    ];
    let proxy = ProxyProcess::start(&args, &env);

    let m = format!("{host}/big");
    let (v1, v2, latest) = (
        format!("{m}@v1.0.0"),
        format!("{m}@v1.1.0"),
        format!("{m}@latest"),
    );
    let steps: [(&str, Vec<&str>); 4] = [
        ("first fetch", vec!["mod", "download", &v1]),
        ("second version", vec!["mod", "download", &v2]),
        ("list", vec!["list", "-m", "-versions", &m]),
        ("@latest", vec!["list", "-m", &latest]),
    ];
    // One client each, kept across steps, as a developer's machine would be.
    let direct = go_env("direct");
    let through = go_env(&proxy.url);
    println!("| step | GOPROXY=direct | through the proxy (native git) |\n|---|---|---|");
    for (name, cmd) in &steps {
        let d = timed(&direct, &scratch, cmd);
        let p = timed(&through, &scratch, cmd);
        println!(
            "| {name} | {:.0} ms | {:.0} ms |",
            d.as_secs_f64() * 1e3,
            p.as_secs_f64() * 1e3
        );
    }
    let fresh = go_env(&proxy.url);
    let s = timed(&fresh, &scratch, &["mod", "download", &v1]);
    println!(
        "| v1.0.0 again, new client, from storage | - | {:.0} ms |",
        s.as_secs_f64() * 1e3
    );
}
