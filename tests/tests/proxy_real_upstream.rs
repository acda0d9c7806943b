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
