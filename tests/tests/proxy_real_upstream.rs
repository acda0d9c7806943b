//! The real go command downloading the shared test modules through athens-proxy, with the
//! machine's own GOPROXY as upstream and its checksum database: sums identical to a direct
//! download; then again offline from storage alone; then with GOPROXY=file://<storage>.

use athens_e2e::gocmd::{GoEnv, machine_goproxy, machine_gosumdb, test_modules};
use athens_e2e::proxy::ProxyProcess;
use std::collections::BTreeSet;

/// `go mod download -json` of all `mods`; returns the sorted go.sum lines it reports.
fn download(go: &GoEnv, mods: &[(String, String)]) -> BTreeSet<String> {
    let work = tempfile::tempdir().unwrap();
    let mut args = vec!["mod".to_string(), "download".into(), "-json".into()];
    args.extend(mods.iter().map(|(p, v)| format!("{p}@{v}")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = go.run_ok(work.path(), &args);
    let mut sums = BTreeSet::new();
    for obj in serde_json::Deserializer::from_str(&out).into_iter::<serde_json::Value>() {
        let obj = obj.expect("go mod download -json output");
        assert!(obj.get("Error").is_none(), "{obj}");
        let (p, v) = (
            obj["Path"].as_str().unwrap(),
            obj["Version"].as_str().unwrap(),
        );
        sums.insert(format!("{p} {v} {}", obj["Sum"].as_str().unwrap()));
        sums.insert(format!(
            "{p} {v}/go.mod {}",
            obj["GoModSum"].as_str().unwrap()
        ));
    }
    sums
}

#[tokio::test(flavor = "multi_thread")]
async fn go_sums_through_proxy_equal_direct_then_offline_then_file() {
    let upstream = machine_goproxy();
    let gosumdb = machine_gosumdb();
    assert!(!upstream.is_empty(), "no GOPROXY on this machine");
    let mods = test_modules();
    assert!(
        mods.len() >= 10,
        "test-modules.txt has {} modules",
        mods.len()
    );

    let direct = download(&GoEnv::new(&upstream, &gosumdb), &mods);
    assert_eq!(direct.len(), 2 * mods.len());

    let storage = tempfile::tempdir().unwrap();
    let storage_url = format!("file://{}", storage.path().display());
    {
        let proxy = ProxyProcess::start(
            &[
                "--storage",
                &storage_url,
                "--upstream",
                &upstream,
                "--sumdb",
                &gosumdb,
            ],
            &[],
        );
        // The go command verifies against the checksum database through the proxy too.
        let via_proxy = download(&GoEnv::new(&proxy.url, &gosumdb), &mods);
        assert_eq!(via_proxy, direct);
    }
    {
        let offline = ProxyProcess::start(
            &[
                "--storage",
                &storage_url,
                "--upstream",
                "off",
                "--sumdb",
                "off",
                "--network-mode",
                "offline",
            ],
            &[],
        );
        let from_storage = download(&GoEnv::new(&offline.url, "off"), &mods);
        assert_eq!(from_storage, direct);
    }
    let from_folder = download(&GoEnv::new(&storage_url, "off"), &mods);
    assert_eq!(from_folder, direct);
}

/// The first http(s) proxy of the machine's GOPROXY list.
fn first_proxy_url(list: &str) -> String {
    list.split([',', '|'])
        .map(str::trim)
        .find(|e| e.starts_with("http"))
        .expect("the machine's GOPROXY has an http(s) proxy")
        .trim_end_matches('/')
        .to_string()
}

async fn get(url: &str) -> (u16, String) {
    let resp = reqwest::get(url).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// A copy of `zip` with one more file: what a lying upstream would send.
fn with_extra_file(zip_bytes: &[u8], name: &str) -> Vec<u8> {
    use std::io::Write as _;
    let mut src = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut out);
        for i in 0..src.len() {
            w.raw_copy_file(src.by_index_raw(i).unwrap()).unwrap();
        }
        w.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(b"package uuid\n\nfunc init() { /* not what the author published */ }\n")
            .unwrap();
        w.finish().unwrap();
    }
    out.into_inner()
}

/// The settings the shipped image has: no --sumdb, no GOSUMDB, no go command on PATH. The
/// proxy must then verify against the go command's default database with its built-in key, so
/// a real public module whose zip an upstream altered is refused and never stored, while the
/// genuine modules from the machine's upstream pass.
#[tokio::test(flavor = "multi_thread")]
async fn with_no_settings_a_tampered_public_module_is_refused() {
    let machine = first_proxy_url(&machine_goproxy());
    let (module, version) = ("github.com/google/uuid", "v1.6.0");
    let dir = tempfile::tempdir().unwrap();
    let vdir = dir.path().join(module).join("@v");
    std::fs::create_dir_all(&vdir).unwrap();
    for ext in ["info", "mod", "zip"] {
        let url = format!("{machine}/{module}/@v/{version}.{ext}");
        let body = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
        let body = if ext == "zip" {
            with_extra_file(&body, &format!("{module}@{version}/extra.go"))
        } else {
            body.to_vec()
        };
        std::fs::write(vdir.join(format!("{version}.{ext}")), body).unwrap();
    }
    let lying = athens_e2e::upstream::LocalUpstream::start(dir.path().to_path_buf()).await;

    // The lying upstream first, the machine's next: the lying one has no /sumdb/, so the
    // checksum database is reached through the machine's proxy, as the go command would.
    let upstream = format!("{},{machine}", lying.url);
    let proxy = ProxyProcess::start(
        &["--storage", "memory://", "--upstream", &upstream],
        &[("GOSUMDB", ""), ("PATH", "/usr/bin:/bin")],
    );
    let (status, body) = get(&format!("{}/version", proxy.url)).await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["checksum_database"],
        athens_config::DEFAULT_SUMDB,
        "{body}"
    );
    assert_eq!(v["verification"], "on", "{body}");

    let zip_url = format!("{}/{module}/@v/{version}.zip", proxy.url);
    let (status, body) = get(&zip_url).await;
    assert_eq!(status, 502, "tampered zip must be refused: {body}");
    assert!(body.contains("checksum mismatch"), "{body}");
    // Nothing of the tampered zip was stored: asked again, it is refused again.
    let (status, body) = get(&zip_url).await;
    assert_eq!(status, 502, "a refused zip must not be stored: {body}");
    // The `.mod` stage is vouched for by the database's `/go.mod` hash on its own (issue 17's
    // mod-first fill), so the genuine `.mod` may be served; it must be byte-equal to the one
    // the machine's upstream has, never anything the liar made up.
    let (status, genuine) = get(&format!("{machine}/{module}/@v/{version}.mod")).await;
    assert_eq!(status, 200, "{genuine}");
    let (status, served) = get(&format!("{}/{module}/@v/{version}.mod", proxy.url)).await;
    assert_eq!(status, 200, "{served}");
    assert_eq!(served, genuine);

    // A genuine module through the same proxy (the lying upstream does not have it: 404 there,
    // so the machine's upstream answers) is verified and served.
    let (status, body) = get(&format!("{}/rsc.io/quote/@v/v1.5.2.zip", proxy.url)).await;
    assert_eq!(status, 200, "{body}");
}

/// A database named without a key that is not built in is a configuration error at startup,
/// as in the go command; `off` must be said explicitly.
#[test]
fn a_database_without_a_known_key_is_refused_at_startup() {
    let out = std::process::Command::new(athens_e2e::proxy::proxy_bin())
        .args(["--listen", "127.0.0.1:0", "--storage", "memory://"])
        .args(["--upstream", "off", "--sumdb", "sumdb.example"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no verifier key for \"sumdb.example\""),
        "{err}"
    );
}
