//! Athens filter files and download modes, through the real go command: a local upstream with
//! made-up modules, a real signing checksum database, and athens-proxy in between.

use athens_e2e::gocmd::GoEnv;
use athens_e2e::modzip::FakeModule;
use athens_e2e::proxy::ProxyProcess;
use athens_e2e::sumdb::SumdbServer;
use athens_e2e::upstream::{Fault, LocalUpstream};
use athens_e2e::world::serve_signed;
use base64::Engine;
use std::path::Path;
use std::time::{Duration, Instant};

struct World {
    dir: tempfile::TempDir,
    upstream: LocalUpstream,
    sumdb: SumdbServer,
    storage: tempfile::TempDir,
}

impl World {
    async fn new(modules: &[FakeModule]) -> Self {
        let (dir, sumdb, upstream) = serve_signed(modules).await;
        Self {
            dir,
            upstream,
            sumdb,
            storage: tempfile::tempdir().unwrap(),
        }
    }

    /// A proxy over this world whose `[policy]` section is `policy_toml` (re-read every second).
    fn proxy(&self, policy_toml: &str) -> ProxyProcess {
        let config = self.dir.path().join("proxy.toml");
        std::fs::write(
            &config,
            format!("listen = \"127.0.0.1:0\"\n[policy]\nreload_seconds = 1\n{policy_toml}\n"),
        )
        .unwrap();
        let storage_url = format!("file://{}", self.storage.path().display());
        let gosumdb = self.sumdb.gosumdb();
        ProxyProcess::start(
            &[
                "--config",
                config.to_str().unwrap(),
                "--storage",
                &storage_url,
                "--upstream",
                &self.upstream.url,
                "--sumdb",
                &gosumdb,
            ],
            &[],
        )
    }

    fn go(&self, proxy: &ProxyProcess) -> GoEnv {
        GoEnv::new(&proxy.url, &self.sumdb.key)
    }

    fn stored(&self, module: &str, file: &str) -> bool {
        self.storage
            .path()
            .join(module)
            .join("@v")
            .join(file)
            .exists()
    }
}

fn lib(version: &str) -> FakeModule {
    FakeModule::new("example.com/lib", version)
}

/// A go module folder to run the go command in.
fn workdir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("go.mod"),
        "module example.com/work\n\ngo 1.21\n",
    )
    .unwrap();
    d
}

fn go_output(go: &GoEnv, dir: &Path, args: &[&str]) -> (bool, String) {
    let out = go.run(dir, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get(url: &str) -> (u16, String) {
    let resp = no_redirects().get(url).send().await.expect("GET");
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap_or("").to_string());
    let body = resp.text().await.unwrap_or_default();
    (status, location.unwrap_or(body))
}

/// Polls `check` until it holds; generous, since the machine may be busy.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_excluded_upstream_latest_gives_the_newest_allowed_version() {
    let world = World::new(&[lib("v1.0.0"), lib("v1.1.0"), lib("v1.2.0")]).await;
    // The folder upstream has no `@latest`; this one names v1.2.0, which the filter excludes.
    world.upstream.fault(
        "example.com/lib/@latest",
        Fault::Body(br#"{"Version":"v1.2.0","Time":"2024-01-01T00:00:00Z"}"#.to_vec()),
    );
    let filter = world.dir.path().join("filter");
    std::fs::write(&filter, "+\n- example.com/lib v1.2.0\n").unwrap();
    let proxy = world.proxy(&format!("filter_file = {:?}", filter.display().to_string()));

    let (status, latest) = get(&format!("{}/example.com/lib/@latest", proxy.url)).await;
    assert_eq!(status, 200, "{latest}");
    assert!(latest.contains("\"Version\":\"v1.1.0\""), "{latest}");
    // The go command agrees, and the excluded version's zip was never fetched.
    let go = world.go(&proxy);
    let out = go.run_ok(workdir().path(), &["list", "-m", "example.com/lib@latest"]);
    assert_eq!(out.trim(), "example.com/lib v1.1.0", "{out}");
    assert_eq!(world.upstream.hits("example.com/lib/@v/v1.2.0.zip"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_blocks_versions_filters_lists_and_reloads() {
    let world = World::new(&[lib("v1.0.0"), lib("v1.1.0"), lib("v1.2.0")]).await;
    let filter = world.dir.path().join("filter");
    // Athens's grammar: a default, and an exclude rule for one version.
    std::fs::write(&filter, "+\n- example.com/lib v1.1.0\n").unwrap();
    let proxy = world.proxy(&format!("filter_file = {:?}", filter.display().to_string()));
    let go = world.go(&proxy);
    let work = workdir();

    // A blocked version: go fails, and shows the proxy's reason.
    let (ok, out) = go_output(
        &go,
        work.path(),
        &["mod", "download", "example.com/lib@v1.1.0"],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("403"), "{out}");
    assert!(
        out.contains("excluded by this proxy's filter rules"),
        "{out}"
    );
    assert_eq!(
        world.upstream.hits("example.com/lib/@v/v1.1.0.zip"),
        0,
        "an excluded version never reaches upstream"
    );

    // Allowed versions download; the list leaves the excluded version out.
    go.download(
        work.path(),
        &[("example.com/lib", "v1.0.0"), ("example.com/lib", "v1.2.0")],
    );
    let list = go.run_ok(work.path(), &["list", "-m", "-versions", "example.com/lib"]);
    assert_eq!(list.trim(), "example.com/lib v1.0.0 v1.2.0", "{list}");

    // Reload on change: now v1.2.0 is excluded and v1.1.0 allowed, without a restart.
    std::fs::write(&filter, "- example.com/lib v1.2.0\n").unwrap();
    let info = |v: &str| format!("{}/example.com/lib/@v/{v}.info", proxy.url);
    eventually("the new filter file in force", async || {
        get(&info("v1.2.0")).await.0 == 403
    })
    .await;
    assert_eq!(get(&info("v1.1.0")).await.0, 200);
    // v1.2.0 is stored, but an excluded version is never latest (upstream has no @latest
    // here, so this is the answer from storage). v1.1.0's `.info` was answered before its zip
    // was stored (the zip follows in the background), and storage's latest counts complete
    // versions: until then the answer is v1.0.0, never v1.2.0.
    eventually("v1.1.0 latest once stored whole", async || {
        let (status, latest) = get(&format!("{}/example.com/lib/@latest", proxy.url)).await;
        assert_eq!(status, 200, "{latest}");
        assert!(!latest.contains("\"v1.2.0\""), "{latest}");
        latest.contains("\"v1.1.0\"")
    })
    .await;
    let list = go.run_ok(work.path(), &["list", "-m", "-versions", "example.com/lib"]);
    assert_eq!(list.trim(), "example.com/lib v1.0.0 v1.1.0", "{list}");

    // A bad new file is refused; the last good rules stay.
    std::fs::write(&filter, "? example.com/lib\n").unwrap();
    let metrics = format!("{}/metrics", proxy.url);
    eventually("the bad file refused", async || {
        get(&metrics)
            .await
            .1
            .contains("athens_policy_reloads_total{result=\"refused\"} 1")
    })
    .await;
    assert_eq!(get(&info("v1.2.0")).await.0, 403);
    let m = get(&metrics).await.1;
    assert!(
        m.contains("athens_policy_decisions_total{decision=\"exclude\",kind=\"filter\"}"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn direct_rules_send_the_go_command_to_the_global_endpoint() {
    let world = World::new(&[
        lib("v1.0.0"),
        FakeModule::new("example.com/other", "v1.0.0"),
    ])
    .await;
    let filter = world.dir.path().join("filter");
    std::fs::write(&filter, "D example.com/lib\n").unwrap();
    let proxy = world.proxy(&format!(
        "filter_file = {:?}\nglobal_endpoint = {:?}",
        filter.display().to_string(),
        world.upstream.url
    ));
    let (status, location) = get(&format!("{}/example.com/lib/@v/v1.0.0.mod", proxy.url)).await;
    assert_eq!(status, 303);
    assert_eq!(
        location,
        format!("{}/example.com/lib/@v/v1.0.0.mod", world.upstream.url)
    );
    let go = world.go(&proxy);
    let work = workdir();
    go.download(
        work.path(),
        &[
            ("example.com/lib", "v1.0.0"),
            ("example.com/other", "v1.0.0"),
        ],
    );
    assert!(
        !world.stored("example.com/lib", "v1.0.0.info"),
        "direct modules are not stored"
    );
    assert!(world.stored("example.com/other", "v1.0.0.info"));
}

#[tokio::test(flavor = "multi_thread")]
async fn download_modes_from_an_athens_hcl_file() {
    let mods = [
        FakeModule::new("example.com/async/m", "v1.0.0"),
        FakeModule::new("example.com/redirect/m", "v1.0.0"),
        FakeModule::new("example.com/none/m", "v1.0.0"),
        FakeModule::new("example.com/sync/m", "v1.0.0"),
    ];
    let world = World::new(&mods).await;
    let hcl = world.dir.path().join("download.hcl");
    std::fs::write(
        &hcl,
        format!(
            "downloadURL = {:?}\nmode = \"sync\"\n\
             download \"example.com/async\" {{\n    mode = \"async\"\n}}\n\
             download \"example.com/redirect\" {{\n    mode = \"redirect\"\n}}\n\
             download \"example.com/none/*\" {{\n    mode = \"none\"\n}}\n",
            world.upstream.url
        ),
    )
    .unwrap();
    let proxy = world.proxy(&format!(
        "download_mode = {:?}",
        format!("file:{}", hcl.display())
    ));
    let go = world.go(&proxy);
    let work = workdir();

    // async: 404 now with the reason, then stored by the background fill.
    let (status, body) = get(&format!("{}/example.com/async/m/@v/v1.0.0.info", proxy.url)).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("background"), "{body}");
    eventually("the async fill stored", async || {
        world.stored("example.com/async/m", "v1.0.0.info")
    })
    .await;
    go.download(work.path(), &[("example.com/async/m", "v1.0.0")]);
    assert_eq!(world.upstream.hits("example.com/async/m/@v/v1.0.0.zip"), 1);

    // redirect: the go command follows the 301 to the download URL; nothing is stored.
    go.download(work.path(), &[("example.com/redirect/m", "v1.0.0")]);
    assert!(!world.stored("example.com/redirect/m", "v1.0.0.info"));
    let (status, location) = get(&format!(
        "{}/example.com/redirect/m/@v/v1.0.0.zip",
        proxy.url
    ))
    .await;
    assert_eq!(status, 301);
    assert_eq!(
        location,
        format!(
            "{}/example.com/redirect/m/@v/v1.0.0.zip",
            world.upstream.url
        )
    );

    // none: 404 with the reason in go's output.
    let (ok, out) = go_output(
        &go,
        work.path(),
        &["mod", "download", "example.com/none/m@v1.0.0"],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("download mode for it is none"), "{out}");

    // The default: sync.
    go.download(work.path(), &[("example.com/sync/m", "v1.0.0")]);
    assert!(world.stored("example.com/sync/m", "v1.0.0.info"));

    // The same file as custom:BASE64 is accepted at startup too.
    let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&hcl).unwrap());
    let proxy2 = world.proxy(&format!("download_mode = \"custom:{b64}\""));
    let (status, _) = get(&format!("{}/example.com/none/m/@v/v1.0.0.mod", proxy2.url)).await;
    assert_eq!(status, 404);
}
