//! Module verification against real peers: a local checksum database built on
//! golang.org/x/mod/sumdb (tests/sumdb), and the `go` command's own hashes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use athens_e2e::sumdb::SumdbServer;
use athens_proxy::upstream::{Entry, Source, parse_goproxy};
use athens_proxy::verify::sumdb::client::decode_hash;
use athens_proxy::verify::sumdb::parse_lookup;
use athens_proxy::verify::{
    SumdbClient, SumdbSpec, VerifyError, check_zip, check_zip_with, expected_go_mod, hash_go_mod,
    prehash,
};
use base64::Engine as _;

/// A client configured with no proxies: lookups go to the spec's URL.
fn no_proxies() -> Vec<Entry> {
    Vec::new()
}

/// Writes `<dir>/<module>/@v/<version>.zip` and `.mod` (module paths here need no escaping).
fn write_module(dir: &Path, module: &str, version: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let vdir = dir.join(module).join("@v");
    std::fs::create_dir_all(&vdir).unwrap();
    let zip_path = vdir.join(format!("{version}.zip"));
    write_zip(&zip_path, module, version, files);
    let go_mod = files
        .iter()
        .find(|(n, _)| *n == "go.mod")
        .map(|(_, d)| d.to_vec());
    let mod_bytes = expected_go_mod(module, go_mod.as_deref());
    std::fs::write(vdir.join(format!("{version}.mod")), mod_bytes).unwrap();
    zip_path
}

fn write_zip(path: &Path, module: &str, version: &str, files: &[(&str, &[u8])]) {
    let mut w = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in files {
        w.start_file(format!("{module}@{version}/{name}"), opts)
            .unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap();
}

const HELLO_GO_MOD: &[u8] = b"module example.com/hello\n\ngo 1.21\n";
const HELLO_GO: &[u8] = b"package hello\n\nfunc Hello() string { return \"hello\" }\n";

#[tokio::test]
async fn local_sumdb_verifies_genuine_and_rejects_tampered() {
    let work = tempfile::tempdir().unwrap();
    let proxy_dir = work.path().join("proxy");
    let hello_zip = write_module(
        &proxy_dir,
        "example.com/hello",
        "v1.0.0",
        &[("go.mod", HELLO_GO_MOD), ("hello.go", HELLO_GO)],
    );
    let nogomod_zip = write_module(
        &proxy_dir,
        "example.com/nogomod",
        "v1.0.0",
        &[
            ("nogomod.go", b"package nogomod\n"),
            ("sub/README", b"no go.mod here\n"),
        ],
    );

    // Filler modules so the log spans a full tile and a partial one (and a level-1 tile).
    for i in 0..300 {
        let module = format!("example.com/filler/m{i:03}");
        let gomod = format!("module {module}\n");
        write_module(
            &proxy_dir,
            &module,
            "v1.0.0",
            &[("go.mod", gomod.as_bytes()), ("f.go", b"package f\n")],
        );
    }
    let server = SumdbServer::start(&proxy_dir, "sumdb.test");
    let http = reqwest::Client::new();

    // GOSUMDB="name+key URL": talk to the database at its root.
    let spec = SumdbSpec::parse(&format!("{} {}", server.key, server.url))
        .unwrap()
        .unwrap();
    assert_eq!(spec.name, "sumdb.test");
    let direct = SumdbClient::new(spec.clone(), no_proxies(), http.clone());
    assert_eq!(direct.base_url().await.unwrap(), server.url);

    for (module, zip_path, has_go_mod) in [
        ("example.com/hello", &hello_zip, true),
        ("example.com/nogomod", &nogomod_zip, false),
    ] {
        let summary = check_zip(zip_path, module, "v1.0.0").unwrap();
        assert_eq!(summary.go_mod.is_some(), has_go_mod);
        let served_mod = std::fs::read(zip_path.with_extension("mod")).unwrap();
        assert_eq!(
            expected_go_mod(module, summary.go_mod.as_deref()),
            served_mod
        );
        let rec = direct.lookup(module, "v1.0.0").await.unwrap();
        assert!(rec.signature_verified);
        assert!(rec.inclusion_verified);
        assert_eq!(rec.zip_hash, summary.h1, "{module}");
        assert_eq!(rec.go_mod_hash, hash_go_mod(&served_mod), "{module}");
        rec.check(
            module,
            "v1.0.0",
            Some(&summary.h1),
            Some(&hash_go_mod(&served_mod)),
        )
        .unwrap();
    }

    for (i, want_id) in [(0, 0), (255, 255), (256, 256), (299, 299)] {
        let module = format!("example.com/filler/m{i:03}");
        let rec = direct.lookup(&module, "v1.0.0").await.unwrap();
        assert_eq!(rec.id, want_id);
        assert_eq!(rec.tree_size, 302);
        assert!(rec.inclusion_verified);
    }

    // The same database reached through a "proxy": the first proxy does not serve it (404 on
    // /sumdb/<name>/supported), the second does.
    let spec_no_url = SumdbSpec::parse(&server.key).unwrap().unwrap();
    let via_proxy = SumdbClient::new(
        spec_no_url,
        parse_goproxy(&format!("{}/no-such-proxy,{}", server.url, server.url)).unwrap(),
        http.clone(),
    );
    assert_eq!(
        via_proxy.base_url().await.unwrap(),
        format!("{}/sumdb/sumdb.test", server.url)
    );
    let rec = via_proxy
        .lookup("example.com/hello", "v1.0.0")
        .await
        .unwrap();
    assert_eq!(
        rec.zip_hash,
        check_zip(&hello_zip, "example.com/hello", "v1.0.0")
            .unwrap()
            .h1
    );

    // A tampered zip (one byte changed in one file) is a valid zip with another hash.
    let tampered = work.path().join("tampered.zip");
    let mut bad_go = HELLO_GO.to_vec();
    bad_go[10] ^= 0x01;
    write_zip(
        &tampered,
        "example.com/hello",
        "v1.0.0",
        &[("go.mod", HELLO_GO_MOD), ("hello.go", &bad_go)],
    );
    let bad = check_zip(&tampered, "example.com/hello", "v1.0.0").unwrap();
    let err = rec
        .check("example.com/hello", "v1.0.0", Some(&bad.h1), None)
        .unwrap_err();
    assert!(matches!(err, VerifyError::ChecksumMismatch { .. }));
    let msg = err.to_string();
    assert_eq!(
        msg,
        format!(
            "checksum mismatch for example.com/hello@v1.0.0: downloaded {}, checksum database {}",
            bad.h1, rec.zip_hash
        )
    );

    // Unknown to the database: a distinct error.
    let err = direct
        .lookup("example.com/absent", "v1.0.0")
        .await
        .unwrap_err();
    assert!(matches!(err, VerifyError::NotInSumdb { .. }), "{err}");

    // A forged signature on the tree note is rejected.
    let body = http
        .get(format!("{}/lookup/example.com/hello@v1.0.0", server.url))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let body = String::from_utf8(body.to_vec()).unwrap();
    let key = &spec.verifier_key;
    parse_lookup(
        body.as_bytes(),
        "sumdb.test",
        "example.com/hello",
        "v1.0.0",
        Some(key),
    )
    .unwrap();
    let (head, sig_line) = body.trim_end().rsplit_once('\n').unwrap();
    let (prefix, sig_b64) = sig_line.rsplit_once(' ').unwrap();
    let mut sig = base64::engine::general_purpose::STANDARD
        .decode(sig_b64)
        .unwrap();
    let last = sig.len() - 1;
    sig[last] ^= 0x80;
    let forged = format!(
        "{head}\n{prefix} {}\n",
        base64::engine::general_purpose::STANDARD.encode(&sig)
    );
    let err = parse_lookup(
        forged.as_bytes(),
        "sumdb.test",
        "example.com/hello",
        "v1.0.0",
        Some(key),
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature { .. }), "{err}");

    // A record that is not in the signed tree: a lying database that serves other hashes with a
    // genuine signed tree head. The signature checks out; the inclusion proof does not.
    let genuine = parse_lookup(
        body.as_bytes(),
        "sumdb.test",
        "example.com/hello",
        "v1.0.0",
        Some(key),
    )
    .unwrap();
    let lying_body = body.replacen(&genuine.zip_hash, &bad.h1, 1);
    let lying = parse_lookup(
        lying_body.as_bytes(),
        "sumdb.test",
        "example.com/hello",
        "v1.0.0",
        Some(key),
    )
    .unwrap();
    assert!(lying.signature_verified);
    assert_eq!(lying.zip_hash, bad.h1);
    direct
        .verify_inclusion(&genuine, "example.com/hello", "v1.0.0")
        .await
        .unwrap();
    let err = direct
        .verify_inclusion(&lying, "example.com/hello", "v1.0.0")
        .await
        .unwrap_err();
    assert!(matches!(err, VerifyError::NotInTree { .. }), "{err}");

    // A tree note signed by another key (another server, same name) is not signed by ours.
    let other = SumdbServer::start(&proxy_dir, "sumdb.test");
    let wrong_key = SumdbClient::new(
        SumdbSpec::parse(&format!("{} {}", server.key, other.url))
            .unwrap()
            .unwrap(),
        no_proxies(),
        http.clone(),
    );
    let err = wrong_key
        .lookup("example.com/hello", "v1.0.0")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Unsigned { .. } | VerifyError::BadSignature { .. }
        ),
        "{err}"
    );
}

/// A log that grows while the client uses it: every new signed tree must extend the previous
/// one (consistency over tiles), and a forged earlier tree is detected.
#[tokio::test]
async fn growing_log_is_checked_for_consistency() {
    let work = tempfile::tempdir().unwrap();
    let proxy_dir = work.path().join("proxy");
    let mut modules = Vec::new();
    for i in 0..300 {
        let module = format!("example.com/grow/m{i:03}");
        let gomod = format!("module {module}\n");
        write_module(
            &proxy_dir,
            &module,
            "v1.0.0",
            &[("go.mod", gomod.as_bytes()), ("g.go", b"package g\n")],
        );
        modules.push(module);
    }
    let server = SumdbServer::start_with(&proxy_dir, "sumdb.test", &["-lazy"]);
    let client = SumdbClient::new(
        SumdbSpec::parse(&format!("{} {}", server.key, server.url))
            .unwrap()
            .unwrap(),
        no_proxies(),
        reqwest::Client::new(),
    );
    let mut roots = Vec::new();
    // Looked up in an order unrelated to the record ids.
    for (n, i) in (0..300).map(|k| (k * 7) % 300).enumerate() {
        let rec = client.lookup(&modules[i], "v1.0.0").await.unwrap();
        assert!(rec.signature_verified && rec.inclusion_verified);
        assert_eq!(rec.id, n as u64);
        assert_eq!(rec.tree_size, n as u64 + 1);
        roots.push(decode_hash(&rec.tree_hash).unwrap());
    }
    // Any earlier tree is a prefix of the last one; a made-up one is not.
    for old in [1usize, 2, 7, 255, 256, 257, 299] {
        client
            .check_consistency((old as u64, roots[old - 1]), (300, roots[299]))
            .await
            .unwrap();
    }
    let mut forged = roots[99];
    forged[0] ^= 1;
    let err = client
        .check_consistency((100, forged), (300, roots[299]))
        .await
        .unwrap_err();
    assert!(matches!(err, VerifyError::TreeInconsistent { .. }), "{err}");
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Download {
    path: String,
    version: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    zip: String,
    #[serde(default)]
    go_mod: String,
    #[serde(default)]
    sum: String,
    #[serde(default)]
    go_mod_sum: String,
}

fn go_env(var: &str) -> String {
    let out = Command::new("go")
        .args(["env", var])
        .output()
        .expect("running `go env`");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Our hashes equal the `go` command's for real modules (one with a go.mod, one without), and,
/// when the machine's upstream proxy serves the default checksum database, equal the database's.
#[tokio::test]
async fn hashes_match_go_command_and_upstream_sumdb() {
    let work = tempfile::tempdir().unwrap();
    let modcache = work.path().join("modcache");
    let out = Command::new("go")
        .args([
            "mod",
            "download",
            "-json",
            "github.com/google/uuid@v1.6.0",
            "github.com/pkg/errors@v0.9.1",
        ])
        .current_dir(work.path())
        .env("GOMODCACHE", &modcache)
        .env("GOFLAGS", "-modcacherw")
        .env("GOWORK", "off")
        .env("GO111MODULE", "on")
        .output()
        .expect("running `go mod download`");
    assert!(
        out.status.success(),
        "go mod download failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let downloads: Vec<Download> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Download>()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(downloads.len(), 2);
    let mut uuid_h1 = None;
    for d in &downloads {
        assert!(d.error.is_none(), "{}: {:?}", d.path, d.error);
        let summary = check_zip(Path::new(&d.zip), &d.path, &d.version).unwrap();
        assert_eq!(summary.h1, d.sum, "{}@{} zip hash", d.path, d.version);
        // The pass a fill makes while the zip downloads follows the go command's own zips to
        // the end: the check then reads no file's content again.
        let bytes = std::fs::read(&d.zip).unwrap();
        let pass = prehash(
            &bytes[..],
            format!("{}@{}/go.mod", d.path, d.version).as_bytes(),
        );
        let with = check_zip_with(Path::new(&d.zip), &d.path, &d.version, Some(&pass)).unwrap();
        assert_eq!(
            with.h1, d.sum,
            "{}@{} zip hash from the pass",
            d.path, d.version
        );
        assert_eq!(with.go_mod, summary.go_mod);
        assert_eq!(with.streamed, summary.files, "{}@{}", d.path, d.version);
        let go_mod = std::fs::read(&d.go_mod).unwrap();
        assert_eq!(
            hash_go_mod(&go_mod),
            d.go_mod_sum,
            "{}@{} go.mod hash",
            d.path,
            d.version
        );
        assert_eq!(expected_go_mod(&d.path, summary.go_mod.as_deref()), go_mod);
        if d.path == "github.com/pkg/errors" {
            assert!(summary.go_mod.is_none(), "pkg/errors v0.9.1 has no go.mod");
        } else {
            uuid_h1 = Some((summary.h1.clone(), d.go_mod_sum.clone()));
        }
    }
    let (uuid_h1, uuid_mod_h1) = uuid_h1.unwrap();

    // The machine's upstream, through our client, authenticated: a bare database name gets the
    // key the go command has built in, and the answer is proven against the signed tree.
    let gosumdb = go_env("GOSUMDB");
    // This test needs what the go command on this machine uses: a checksum database reached
    // through the machine's GOPROXY. A machine without one fails here, loudly, not silently.
    let mut spec = SumdbSpec::parse(&gosumdb)
        .unwrap()
        .expect("this test needs the machine's checksum database, but GOSUMDB is off");
    spec.url = None;
    let entries = parse_goproxy(&go_env("GOPROXY")).unwrap();
    let proxies: Vec<String> = entries
        .iter()
        .filter_map(|e| match &e.source {
            Source::Url(u) => Some(u.clone()),
            _ => None,
        })
        .collect();
    let client = SumdbClient::new(spec, entries, reqwest::Client::new());
    let base = client
        .base_url()
        .await
        .expect("the machine's checksum database is not reachable through its GOPROXY")
        .to_string();
    assert!(
        proxies.iter().any(|p| base.starts_with(p.as_str())),
        "no proxy of the machine's GOPROXY serves /sumdb/ for {gosumdb} (base {base})"
    );
    let rec = client
        .lookup("github.com/google/uuid", "v1.6.0")
        .await
        .unwrap();
    assert!(rec.signature_verified);
    assert!(rec.inclusion_verified);
    assert_eq!(rec.zip_hash, uuid_h1);
    assert_eq!(rec.go_mod_hash, uuid_mod_h1);
    // Proven again explicitly: our tile arithmetic against a large real log (multi-level,
    // x-grouped tile paths).
    client
        .verify_inclusion(&rec, "github.com/google/uuid", "v1.6.0")
        .await
        .unwrap();
    eprintln!(
        "upstream record {} proven in tree of size {}",
        rec.id, rec.tree_size
    );
}
