//! Tier 4, images: the OCI layouts tests/image/layout assembles without a Docker engine hold
//! what the Dockerfile's final stages copy, are reproducible, and the proxy image serves the
//! download API from the configured bucket when run under runc exactly as the operator renders
//! its pod: command and args, env from the Secret, user 65532, read-only root, no capabilities,
//! the ConfigMap at /etc/athens and the emptyDir at /tmp, in a network namespace of its own.

use anyhow::{Context, Result, bail, ensure};
use athens_e2e::gocmd::GoEnv;
use athens_e2e::image::layout::{Image, is_static_elf};
use athens_e2e::image::netns::NetNs;
use athens_e2e::image::runc::{self, Container, leftover_cgroups, pod_files};
use athens_e2e::image::runtime_config::probe_url;
use athens_e2e::image::tls::TestCa;
use athens_e2e::image::{dockerfile, layouts_dir};
use athens_e2e::minio::MinioServer;
use athens_e2e::modzip::FakeModule;
use athens_e2e::sumdb::SumdbServer;
use athens_e2e::upstream::LocalUpstream;
use athens_e2e::wait::{poll, repo};
use athens_operator::crd::AthensProxy;
use athens_operator::render;
use k8s_openapi::api::core::v1::{Container as PodContainer, PodSpec};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Secret name → key → value: what the kubelet would read to fill env from Secrets.
type SecretData = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

fn image(name: &str) -> Result<Image> {
    Image::open(&layouts_dir()?.join(name))
}

/// Build arguments the layouts were made with (tests/image/layout reads the same variable).
fn build_args() -> BTreeMap<String, String> {
    BTreeMap::from([(
        "SOURCE".to_string(),
        std::env::var("ATHENS_IMAGE_SOURCE").unwrap_or_default(),
    )])
}

#[test]
fn layouts_hold_what_the_dockerfile_copies() -> Result<()> {
    let text = std::fs::read_to_string(repo().join("Dockerfile"))?;
    let version = env!("CARGO_PKG_VERSION");
    for name in ["proxy", "operator"] {
        let img = image(name)?;
        let stage = dockerfile::stage(&text, name, &build_args())?;
        assert_eq!(img.files()?, stage.files, "{name}: files");
        assert_eq!(img.config.user, stage.user, "{name}: user");
        assert_eq!(img.config.env, stage.env, "{name}: env");
        assert_eq!(
            img.config.entrypoint, stage.entrypoint,
            "{name}: entrypoint"
        );
        assert_eq!(img.config.cmd, stage.cmd, "{name}: cmd");
        assert_eq!(img.exposed_ports, stage.expose, "{name}: ports");
        assert_eq!(img.labels, stage.labels, "{name}: labels");
        // Labels and tag say what was built.
        assert_eq!(img.labels["org.opencontainers.image.version"], version);
        assert_eq!(
            img.labels["org.opencontainers.image.licenses"],
            "Apache-2.0"
        );
        assert_eq!(img.tag, version);
        // One static binary, and nothing else that runs.
        let bin = tempfile::NamedTempFile::new()?;
        img.extract(&img.config.entrypoint[0], bin.path())?;
        assert!(
            is_static_elf(&std::fs::read(bin.path())?)?,
            "{name}: the binary is dynamically linked"
        );
        eprintln!(
            "image athens-{name}:{} {}: {} files, {:.1} MiB compressed",
            img.tag,
            img.digest,
            stage.files.len(),
            img.layer_bytes as f64 / (1 << 20) as f64
        );
    }
    // The references the operator and the chart use by default name these images.
    let proxy = image("proxy")?;
    assert_eq!(render::DEFAULT_IMAGE, format!("athens-proxy:{}", proxy.tag));
    let chart: serde_json::Value = serde_yaml::from_str(&std::fs::read_to_string(
        repo().join("charts/athens-operator/Chart.yaml"),
    )?)?;
    let values: serde_json::Value = serde_yaml::from_str(&std::fs::read_to_string(
        repo().join("charts/athens-operator/values.yaml"),
    )?)?;
    assert_eq!(
        format!(
            "{}:{}",
            values["image"]["repository"].as_str().unwrap_or_default(),
            chart["appVersion"].as_str().unwrap_or_default()
        ),
        format!("athens-operator:{}", image("operator")?.tag)
    );
    Ok(())
}

/// The same binary gives the same digests: twice here, and as tests/image/build made them.
#[test]
fn layouts_are_reproducible() -> Result<()> {
    let img = image("proxy")?;
    let tmp = tempfile::tempdir()?;
    let bin = tmp.path().join("athens-proxy");
    img.extract(&img.config.entrypoint[0], &bin)?;
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let mut digests = Vec::new();
    for i in 0..2 {
        let out = tmp.path().join(format!("oci{i}"));
        let status = std::process::Command::new(repo().join("tests/image/layout"))
            .arg("proxy")
            .arg(&bin)
            .arg(&out)
            .status()?;
        ensure!(status.success(), "tests/image/layout failed");
        digests.push(Image::open(&out)?.digest);
    }
    assert_eq!(digests[0], digests[1]);
    assert_eq!(digests[0], img.digest);
    Ok(())
}

/// Whether runc can run here; if not, says so loudly and the caller returns.
fn runc_or_skip(test: &str) -> bool {
    match runc::unavailable() {
        None => true,
        Some(why) => {
            eprintln!("\n\n!!!!!!!! SKIPPED {test}: runc cannot run here: {why} !!!!!!!!\n\n");
            false
        }
    }
}

/// examples/s3.yaml's AthensProxy, pointed at this test's MinIO, upstream and checksum database.
fn example_proxy(endpoint: &str, bucket: &str, goproxy: &str, sumdb: &str) -> Result<AthensProxy> {
    let text = std::fs::read_to_string(repo().join("examples/s3.yaml"))?;
    let mut doc = None;
    for d in serde_yaml::Deserializer::from_str(&text) {
        let v: serde_json::Value = serde::Deserialize::deserialize(d)?;
        if v["kind"] == "AthensProxy" {
            doc = Some(v);
        }
    }
    let mut v = doc.context("examples/s3.yaml has no AthensProxy")?;
    let s3 = &mut v["spec"]["storage"]["s3"];
    s3["endpoint"] = endpoint.into();
    s3["bucket"] = bucket.into();
    v["spec"]["upstream"]["goproxy"] = goproxy.into();
    v["spec"]["upstream"]["sumdb"] = sumdb.into();
    v["metadata"]["namespace"] = "build".into();
    v["metadata"]["uid"] = "0000-1111".into();
    Ok(serde_json::from_value(v)?)
}

/// The uid and whether `/` is mounted read-only, as the kernel sees the container's process.
fn process_facts(pid: u32) -> Result<(String, bool)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .context("no Uid line")?
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))?;
    let root_ro = mountinfo
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .rfind(|f| f.get(4) == Some(&"/"))
        .is_some_and(|f| f[5].split(',').any(|o| o == "ro"));
    Ok((uid, root_ro))
}

async fn get(url: &str) -> Result<u16> {
    Ok(reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await?
        .status()
        .as_u16())
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_image_serves_modules_from_minio_as_the_operator_runs_it() -> Result<()> {
    if !runc_or_skip("proxy_image_serves_modules_from_minio_as_the_operator_runs_it") {
        return Ok(());
    }
    let img = image("proxy")?;
    let net = NetNs::create()?;
    let (netns_name, host_if) = (net.name.clone(), net.host_if.clone());
    let host_ip = net.host_ip.to_string();

    // Peers on the host end of the veth: upstream proxy, checksum database, MinIO.
    let mods = [
        FakeModule::new("example.com/hello", "v1.0.0"),
        FakeModule::new("example.com/Upper/Case", "v0.2.0"),
    ];
    let dir = tempfile::tempdir()?;
    for m in &mods {
        m.write_to(dir.path());
    }
    let sumdb = SumdbServer::start_with(
        dir.path(),
        "sumdb.test",
        &["-listen", &format!("{host_ip}:0")],
    );
    let upstream = LocalUpstream::start_on(dir.path().to_path_buf(), &format!("{host_ip}:0")).await;
    // MinIO over HTTPS, by name, as the pod would reach a Service: the name resolves from
    // /etc/hosts (glibc's files source, in a static binary), which stands in for cluster DNS.
    let minio_name = "minio.minio.svc.cluster.local";
    let ca = TestCa::new(&[minio_name, &host_ip])?;
    let minio = MinioServer::try_start_on(
        net.host_ip.into(),
        Some((&ca.cert_pem, &ca.key_pem, &ca.ca_pem)),
    )
    .await?;
    let minio_port = minio.endpoint.rsplit(':').next().unwrap_or_default();
    let endpoint = format!("https://{minio_name}:{minio_port}");
    let hosts = format!("{}\tgomods-s3-pod\n{host_ip}\t{minio_name}\n", net.ns_ip);

    let proxy = example_proxy(&endpoint, &minio.bucket, &upstream.url, &sumdb.gosumdb())?;
    let secrets: SecretData = BTreeMap::from([(
        "gomods-s3".to_string(),
        BTreeMap::from([
            (
                "AWS_ACCESS_KEY_ID".to_string(),
                minio.access_key.clone().into_bytes(),
            ),
            (
                "AWS_SECRET_ACCESS_KEY".to_string(),
                minio.secret_key.clone().into_bytes(),
            ),
        ]),
    )]);
    // The Secrets' versions only feed the pod-template hash.
    let desired = render::desired(
        &proxy,
        &render::Secrets::new(),
        &render::Settings::default(),
    )?;
    let pod: PodSpec = desired
        .deployment
        .spec
        .and_then(|s| s.template.spec)
        .context("no pod template")?;
    let files = pod_files(
        &pod,
        &[desired.config_map],
        &secrets,
        "gomods-s3-pod",
        &hosts,
    )?;
    let mut host = files.host.clone();
    host.netns = Some(net.path().into());
    // The test CA in place of the image's bundle, as a cluster with a private CA mounts its own:
    // the proxy finds CAs where the image puts them (the layout test shows the bundle is there).
    let bundle = files.dir.path().join("ca-certificates.crt");
    std::fs::write(&bundle, &ca.ca_pem)?;
    host.etc_files
        .push(("/etc/ssl/certs/ca-certificates.crt".into(), bundle));

    let started = Instant::now();
    let mut ctr = Container::create(&img, &pod, host)?;
    let cgroups = ctr.cgroups_path.clone();
    let unpacked = started.elapsed();
    ctr.start()?;
    let c = &pod.containers[0];
    let pod_ip = net.ns_ip.to_string();
    let ready = probe_url(
        c,
        c.readiness_probe.as_ref().context("no readiness probe")?,
        &pod_ip,
    )?;
    let live = probe_url(
        c,
        c.liveness_probe.as_ref().context("no liveness probe")?,
        &pod_ip,
    )?;
    let t_run = Instant::now();
    let waited = poll(Duration::from_secs(30), "readiness", || async {
        if let Some(status) = ctr.exited() {
            bail!("container exited: {status}");
        }
        Ok(get(&ready).await.ok() == Some(200))
    })
    .await;
    if let Err(e) = waited {
        bail!("{e:#}\ncontainer log:\n{}", ctr.log());
    }
    let start_time = t_run.elapsed();
    assert_eq!(get(&live).await?, 200, "liveness {live}");

    let (uid, root_ro) = process_facts(ctr.pid()?)?;
    assert_eq!(uid, "65532");
    assert!(root_ro, "root filesystem is writable");

    // The go command on the host downloads through the containerized proxy, with signed sums
    // fetched through the proxy's /sumdb/ endpoint.
    let proxy_url = format!("http://{pod_ip}:{}", render::CONTAINER_PORT);
    let wanted: Vec<(&str, &str)> = mods
        .iter()
        .map(|m| (m.path.as_str(), m.version.as_str()))
        .collect();
    let work = tempfile::tempdir()?;
    let out = GoEnv::new(&proxy_url, &sumdb.key).download(work.path(), &wanted);
    for m in &mods {
        assert!(out.contains(&format!("\"Path\": \"{}\"", m.path)), "{out}");
    }
    // With the upstream gone, a fresh module cache fills from the bucket alone.
    let upstream_hits = upstream.total_hits();
    assert!(upstream_hits > 0);
    drop(upstream);
    let again = GoEnv::new(&proxy_url, &sumdb.key).download(work.path(), &wanted);
    for m in &mods {
        assert!(
            again.contains(&format!("\"Path\": \"{}\"", m.path)),
            "{again}"
        );
    }
    let zip = reqwest::get(format!(
        "{proxy_url}/{}/@v/{}.zip",
        mods[0].escaped_path(),
        mods[0].version
    ))
    .await?;
    assert_eq!(zip.status().as_u16(), 200);
    assert_eq!(zip.bytes().await?.to_vec(), mods[0].zip());

    eprintln!(
        "proxy image under runc: unpack + config {:.2}s, ready {:.2}s after runc run",
        unpacked.as_secs_f64(),
        start_time.as_secs_f64()
    );
    let log = ctr.log();
    ctr.stop();
    drop(ctr);
    drop(net);
    assert!(
        leftover_cgroups(&cgroups).is_empty(),
        "cgroups left: {:?}",
        leftover_cgroups(&cgroups)
    );
    assert!(
        !NetNs::exists(&netns_name, &host_if),
        "network namespace or veth left"
    );
    assert!(!log.contains("panicked"), "{log}");
    Ok(())
}

/// The operator image prints its version, and `run` starts and fails cleanly without an API server,
/// as the proxy pod's container would run:
/// user 65532, read-only root, no capabilities, an empty network namespace.
#[tokio::test]
async fn operator_image_prints_its_version_under_the_same_restrictions() -> Result<()> {
    if !runc_or_skip("operator_image_prints_its_version_under_the_same_restrictions") {
        return Ok(());
    }
    let img = image("operator")?;
    // The proxy's rendered pod with the operator's container: same security settings and /tmp.
    let proxy = example_proxy("http://minio:9000", "b", "off", "off")?;
    let desired = render::desired(
        &proxy,
        &render::Secrets::new(),
        &render::Settings::default(),
    )?;
    let mut pod = desired
        .deployment
        .spec
        .and_then(|s| s.template.spec)
        .context("no pod template")?;
    let proxy_container = pod.containers[0].clone();
    pod.containers = vec![PodContainer {
        name: "athens-operator".into(),
        args: Some(vec!["--version".into()]),
        security_context: proxy_container.security_context,
        volume_mounts: proxy_container
            .volume_mounts
            .map(|m| m.into_iter().filter(|m| m.name == "tmp").collect()),
        ..Default::default()
    }];
    let files = pod_files(
        &pod,
        &[desired.config_map],
        &SecretData::new(),
        "operator",
        "",
    )?;
    let t = Instant::now();
    let mut ctr = Container::create(&img, &pod, files.host.clone())?;
    let cgroups = ctr.cgroups_path.clone();
    let out = ctr.run_to_end()?;
    let took = t.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim(),
        format!("athens-operator {}", env!("CARGO_PKG_VERSION"))
    );
    eprintln!(
        "operator image under runc: unpack + run --version {:.2}s",
        took.as_secs_f64()
    );
    drop(ctr);
    assert!(leftover_cgroups(&cgroups).is_empty());

    // `run` gets as far as its first request to the API server (none listens in the
    // container's empty network namespace) and fails with an error, not a panic: the TLS client
    // can be made (one rustls provider in the binary) and the kubeconfig is read.
    let kubeconfig = "apiVersion: v1\nkind: Config\ncurrent-context: x\n\
        clusters: [{name: c, cluster: {server: \"https://127.0.0.1:6443\"}}]\n\
        users: [{name: u, user: {token: t}}]\n\
        contexts: [{name: x, context: {cluster: c, user: u}}]\n";
    std::fs::write(files.host.volumes["tmp"].join("kubeconfig"), kubeconfig)?;
    let c = &mut pod.containers[0];
    c.args = Some(vec!["run".into()]);
    c.env = Some(vec![k8s_openapi::api::core::v1::EnvVar {
        name: "KUBECONFIG".into(),
        value: Some("/tmp/kubeconfig".into()),
        ..Default::default()
    }]);
    let mut ctr = Container::create(&img, &pod, files.host.clone())?;
    ctr.start()?;
    poll(Duration::from_secs(60), "operator exit", || async {
        Ok(ctr.exited().is_some())
    })
    .await
    .with_context(|| ctr.log())?;
    let log = ctr.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        log.contains("127.0.0.1:6443") || log.to_lowercase().contains("connect"),
        "{log}"
    );
    Ok(())
}
