//! Private modules straight from git: the proxy's native fetcher (`--private`) against
//! repositories made here, served by `git http-backend` over HTTPS with basic auth and
//! `go-import` discovery. For every module the go command through the proxy must get the same
//! versions, `Sum` and `GoModSum` as `GOPROXY=direct` (the go command running git itself), and
//! again from storage once the git host is gone.

use athens_e2e::githost::{
    GitHost, RepoBuilder, all_modules, assert_404, downloads, git, make_repos, resolved,
    scratch_module, start_private_proxy, times, trusting_go, versions,
};
use athens_e2e::gocmd::GoEnv;
use athens_e2e::proxy::ProxyProcess;
use athens_e2e::upstream::LocalUpstream;

#[tokio::test(flavor = "multi_thread")]
async fn private_git_modules_match_goproxy_direct() {
    let dir = tempfile::tempdir().unwrap();
    let (githost, root, work) = GitHost::start_in(dir.path()).await;
    let host = githost.host.clone();
    make_repos(&root, &work, &host).expect("make repositories");
    let netrc = dir.path().join("netrc");
    std::fs::write(&netrc, githost.netrc()).unwrap();
    // A copy that outlives the host (the last proxy still reads it at startup).
    let ca_path = dir.path().join("ca.pem");
    std::fs::copy(&githost.ca_file, &ca_path).unwrap();
    let ca = ca_path.to_string_lossy().into_owned();
    let mut modules = all_modules(&host);
    // A full hash (tagged v1.0.0) and a 12-digit prefix of the feature branch's head.
    let rev = |r: &str| {
        git(&work.join("lib"), &["rev-parse", r], &[])
            .unwrap()
            .trim()
            .to_string()
    };
    modules.push((format!("{host}/lib"), rev("v1.0.0")));
    modules.push((format!("{host}/lib"), rev("feature")[..12].to_string()));
    let scratch = scratch_module(dir.path());

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
    let t = std::time::Instant::now();
    let want = downloads(&direct, &scratch, &modules);
    let direct_cold = t.elapsed();
    let want_times = times(&direct, &scratch, &want);
    assert!(
        want_times.values().all(|t| t.starts_with("2024-01-")),
        "{want_times:?}"
    );
    let want_versions: Vec<String> = ["lib", "lib/sub", "lib/v2", "legacy", "fresh"]
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
    // A public proxy first in the list: private module names must never reach it.
    let public = LocalUpstream::start(dir.path().join("public")).await;
    let upstream = format!("{},direct", public.url);
    let args = [
        "--storage",
        storage_url.as_str(),
        "--upstream",
        upstream.as_str(),
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
    let t = std::time::Instant::now();
    let got = downloads(&through, &scratch, &modules);
    let proxy_cold = t.elapsed();
    assert_eq!(got, want, "through the proxy vs GOPROXY=direct");
    assert_eq!(times(&through, &scratch, &got), want_times, ".info Time");
    let pseudo: Vec<&String> = want
        .keys()
        .filter(|k| k.contains("-0.") || k.contains(".0.0-"))
        .collect();
    assert!(
        pseudo.len() >= 4,
        "pseudo-versions of every form are covered: {pseudo:?}"
    );
    // Pseudo-versions the go command refuses, the proxy refuses too, before storing anything:
    // another time, a short hash, a base tag the commit does not descend from, v1 without a
    // base.
    let (pm, pv) = want
        .keys()
        .filter_map(|k| k.split_once('@'))
        .find(|(m, v)| m.ends_with("/lib") && v.contains("-0."))
        .expect("a pseudo-version of lib");
    let (head, hash) = pv.rsplit_once('-').unwrap();
    let (pre, ts) = head.split_at(head.len() - 14);
    let other_ts = format!("{}{}", &ts[..13], if ts.ends_with('9') { '8' } else { '9' });
    for bad in [
        format!("{pre}{other_ts}-{hash}"),
        format!("{pre}{ts}-{}", &hash[..7]),
        format!("v1.9.1-0.{ts}-{hash}"),
        format!("v1.0.0-{ts}-{hash}"),
    ] {
        let id = format!("{pm}@{bad}");
        let out = direct.run(&scratch, &["mod", "download", "-json", &id]);
        assert!(!out.status.success(), "GOPROXY=direct takes {id}");
        assert_404(
            &format!("{}/{pm}/@v/{bad}.info", proxy.url),
            "invalid pseudo-version",
        )
        .await;
        assert!(
            !storage
                .join(pm)
                .join("@v")
                .join(format!("{bad}.info"))
                .exists(),
            "{id} stored"
        );
    }
    let got_versions: Vec<String> = ["lib", "lib/sub", "lib/v2", "legacy", "fresh"]
        .iter()
        .map(|m| versions(&through, &scratch, &format!("{host}/{m}")))
        .collect();
    assert_eq!(got_versions, want_versions, "version lists");
    assert!(
        want_versions[3].contains("v2.1.0+incompatible"),
        "the legacy repository lists +incompatible versions: {want_versions:?}"
    );

    // `list` of a repository with no mirror yet comes from the ref advertisement alone when
    // the tags decide it (`lib/sub`: no mirror made), and from a fetch when go.mod files do
    // (`legacy`: v2+ tags without a major suffix); both as the go command lists them.
    {
        let tmp3 = dir.path().join("proxy3-tmp");
        std::fs::create_dir_all(&tmp3).unwrap();
        let tmp3_s = tmp3.to_string_lossy().into_owned();
        let env3 = [
            ("SSL_CERT_FILE", ca.as_str()),
            ("NETRC", netrc_s.as_str()),
            ("TMPDIR", tmp3_s.as_str()),
        ];
        let (proxy3, _log) = start_private_proxy(dir.path(), "proxy3", "", &host, &env3);
        let mirrors = || {
            std::fs::read_dir(tmp3.join("athens-vcs"))
                .map(|d| {
                    d.flatten()
                        .filter(|e| e.path().extension().is_some_and(|x| x == "git"))
                        .count()
                })
                .unwrap_or(0)
        };
        for (module, want_list, mirrored) in [
            ("lib/sub", &want_versions[1], 0),
            ("legacy", &want_versions[3], 1),
        ] {
            let url = format!("{}/{host}/{module}/@v/list", proxy3.url);
            let resp = reqwest::get(&url).await.unwrap();
            assert_eq!(resp.status(), 200, "{url}");
            let body = resp.text().await.unwrap();
            let got: Vec<&str> = body.split_whitespace().collect();
            let want: Vec<&str> = want_list.split_whitespace().skip(1).collect();
            assert_eq!(got, want, "{module} list, cold");
            assert_eq!(mirrors(), mirrored, "mirrors after listing {module}");
        }
    }

    // Fetches are counted per git host: the host alone, never the login or a repository path;
    // a repository the host does not have is `not_found`.
    let missing = reqwest::get(format!("{}/{host}/nosuchrepo/@v/list", proxy.url))
        .await
        .unwrap();
    assert!(!missing.status().is_success(), "{}", missing.status());
    let metrics = proxy.metrics().await;
    let sample = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let ok = sample(&format!(
        "athens_vcs_fetches_total{{host=\"{host}\",result=\"ok\"}}"
    ));
    assert!(ok >= 1.0, "no ok fetch of {host} counted:\n{metrics}");
    let not_found = sample(&format!(
        "athens_vcs_fetches_total{{host=\"{host}\",result=\"not_found\"}}"
    ));
    assert!(not_found >= 1.0, "the missing repository:\n{metrics}");
    let timed = sample(&format!(
        "athens_vcs_fetch_duration_seconds_count{{host=\"{host}\"}}"
    ));
    assert!(timed >= ok + not_found, "fetch durations:\n{metrics}");
    assert!(
        metrics.contains("athens_vcs_mirror_reuses_total{"),
        "mirror reuses:\n{metrics}"
    );
    for secret in [
        athens_e2e::githost::USER,
        athens_e2e::githost::PASSWORD,
        "/git/",
    ] {
        assert!(!metrics.contains(secret), "{secret} in the metrics");
    }

    assert_eq!(
        public.total_hits(),
        0,
        "a private module name reached the public proxy"
    );

    // Without private patterns, `direct` in the list serves what the public proxy lacks.
    let listed = {
        let storage2 = format!("file://{}", dir.path().join("storage2").display());
        let args2 = [
            "--storage",
            storage2.as_str(),
            "--upstream",
            upstream.as_str(),
            "--sumdb",
            "off",
        ];
        let proxy2 = ProxyProcess::start(&args2, &proxy_env);
        let mut go2 = go_env(&proxy2.url);
        go2.extra.retain(|(k, _)| k != "GOPRIVATE");
        go2.extra.push(("GONOSUMDB".into(), host.clone()));
        let some = [modules[1].clone(), modules[7].clone(), modules[10].clone()];
        downloads(&go2, &scratch, &some)
    };
    assert!(!listed.is_empty());
    for (k, d) in &listed {
        assert_eq!(
            Some(d),
            want.get(k),
            "{k} through `direct` in the upstream list"
        );
    }
    let public_hits = public.total_hits();
    assert!(public_hits > 0, "the public proxy was asked first");

    // Other version control systems: a clear not-found naming it.
    let hg = format!("{}/{host}/repo.hg/@v/list", proxy.url);
    assert_404(&hg, "hg repository").await;

    // A moved tag: the go command now gets other bytes from git, the proxy keeps serving
    // what it stored first (and what go.sum files recorded).
    let lib_work = work.join("lib");
    git(&lib_work, &["tag", "-f", "v1.1.0", "main"], &[]).unwrap();
    RepoBuilder::publish_dir(&lib_work, &root, "lib").unwrap();
    let v110 = [modules[1].clone()];
    let key = format!("{}@{}", v110[0].0, v110[0].1);
    let moved = downloads(&go_env("direct"), &scratch, &v110);
    assert_ne!(moved[&key].sum, want[&key].sum, "the tag really moved");
    let mut fresh_client = go_env(&proxy.url);
    fresh_client.extra.retain(|(k, _)| k != "GOPRIVATE");
    fresh_client.extra.push(("GONOSUMDB".into(), host.clone()));
    let kept = downloads(&fresh_client, &scratch, &v110);
    assert_eq!(
        kept[&key], want[&key],
        "the proxy serves what it stored first"
    );

    // The git host goes away; a new proxy process on the same storage still serves it all.
    drop(githost);
    proxy.kill_hard();
    let proxy = ProxyProcess::start(&args, &proxy_env);
    let mut again = go_env(&proxy.url);
    again.extra.retain(|(k, _)| k != "GOPRIVATE");
    again.extra.push(("GONOSUMDB".into(), host.clone()));
    // Queries need the git host; the versions they resolved to are in storage.
    let resolved = resolved(&want);
    let t = std::time::Instant::now();
    let stored = downloads(&again, &scratch, &resolved);
    let proxy_warm = t.elapsed();
    eprintln!(
        "{} modules: GOPROXY=direct {direct_cold:?}; through the proxy, first fetch \
         {proxy_cold:?}, from storage {proxy_warm:?}",
        modules.len()
    );
    assert_eq!(stored, want, "from storage with the git host stopped");
    assert_eq!(
        public.total_hits(),
        public_hits,
        "a private module name reached the public proxy"
    );
}

/// A tiny deterministic generator (no dependency): the repositories differ per seed but a
/// failure is reproducible from the seed printed with it.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Files whose treatment differs between the rules of the module zip format.
const POOL: &[&str] = &[
    "a.go",
    "LICENSE",
    "README.md",
    "Docs/Guide.MD",
    "vendor/modules.txt",
    "vendor/corp.test/x/x.go",
    "internal/vendor/v.go",
    "internal/vendor/p/q.go",
    "tools/go.mod",
    "tools/t.go",
    "deep/er/GO.MOD",
    "deep/er/e.go",
    "deep/d.go",
    ".hg_archival.txt",
    "testdata/big.bin",
];

/// Differential run: generated repositories (random files from [`POOL`], with or without a
/// go.mod and with either vendor rule, symlinks, several tagged versions, a subdirectory
/// module), every version compared between GOPROXY=direct and the proxy.
#[tokio::test(flavor = "multi_thread")]
async fn generated_repositories_match_goproxy_direct() {
    // ATHENS_TEST_SEED=<n> replays a run.
    let seed = std::env::var("ATHENS_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        });
    eprintln!("generated repositories from seed {seed} (ATHENS_TEST_SEED replays it)");
    let mut rng = Lcg(seed);
    let dir = tempfile::tempdir().unwrap();
    let (githost, root, work) = GitHost::start_in(dir.path()).await;
    let host = githost.host.clone();
    let mut modules = Vec::new();
    for r in 0..4 {
        let name = format!("gen{r}");
        let mut repo = RepoBuilder::new(work.join(&name)).unwrap();
        for minor in 0..3 {
            let mut files: Vec<(String, String)> = Vec::new();
            for p in POOL {
                if rng.chance(60) {
                    let body = if p.ends_with("go.mod") || p.ends_with("GO.MOD") {
                        format!("module {host}/{name}/{}\n", p.split('/').next().unwrap())
                    } else if p.ends_with(".bin") {
                        "x".repeat((rng.next() % 100_000) as usize)
                    } else {
                        format!("// {p} {}\n", rng.next())
                    };
                    files.push((p.to_string(), body));
                } else {
                    files.push((format!("-{p}"), String::new()));
                }
            }
            if rng.chance(70) {
                let go = if rng.chance(50) { "1.21" } else { "1.24" };
                files.push((
                    "go.mod".into(),
                    format!("module {host}/{name}\n\ngo {go}\n"),
                ));
            } else {
                files.push(("-go.mod".into(), String::new()));
            }
            files.push(("sub/go.mod".into(), format!("module {host}/{name}/sub\n")));
            files.push(("sub/s.go".into(), format!("package sub // {minor}\n")));
            let refs: Vec<(&str, &str)> = files
                .iter()
                .map(|(p, c)| (p.as_str(), c.as_str()))
                .collect();
            repo.write(&refs).unwrap();
            let link = repo.work.join("link.go");
            let _ = std::fs::remove_file(&link);
            if rng.chance(50) {
                std::os::unix::fs::symlink("a.go", &link).unwrap();
            }
            repo.commit(&format!("v1.{minor}.0")).unwrap();
            repo.tag(&format!("v1.{minor}.0")).unwrap();
            repo.tag(&format!("sub/v0.{minor}.0")).unwrap();
            modules.push((format!("{host}/{name}"), format!("v1.{minor}.0")));
            modules.push((format!("{host}/{name}/sub"), format!("v0.{minor}.0")));
        }
        repo.publish(&root, &name).unwrap();
    }

    let netrc = dir.path().join("netrc");
    std::fs::write(&netrc, githost.netrc()).unwrap();
    let ca = githost.ca_file.to_string_lossy().into_owned();
    let scratch = scratch_module(dir.path());
    let go_env = |goproxy: &str| trusting_go(dir.path(), goproxy, &host, &netrc, &ca, &[]);
    let want = downloads(&go_env("direct"), &scratch, &modules);

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
    let got = downloads(&go_env(&proxy.url), &scratch, &modules);
    assert_eq!(
        got, want,
        "seed {seed}: through the proxy vs GOPROXY=direct"
    );
}
