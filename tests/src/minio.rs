//! A real MinIO server for the S3 storage tests (tier 2 in the design).
//!
//! The binary comes from `$ATHENS_MINIO_BIN` (set by `tests/run`) or else from
//! `tests/peers/minio-install`, which builds it from its Go module into the test cache.
//! Each [`MinioServer`] is its own process on a free loopback port with a temporary data folder,
//! fixed test credentials and one empty bucket; dropping it stops the process and removes the data.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// The credentials every test server uses (MinIO wants a secret of at least 8 characters).
pub const ACCESS_KEY: &str = "athens-test";
pub const SECRET_KEY: &str = "athens-test-secret";
pub const BUCKET: &str = "athens-test";
/// MinIO's default region, which S3 signatures must name.
pub const REGION: &str = "us-east-1";

pub struct MinioServer {
    /// `http://127.0.0.1:<port>`
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub bucket: String,
    pub region: String,
    /// Trusts the server's certificate when it serves HTTPS.
    client: reqwest::Client,
    child: Child,
    bin: PathBuf,
    /// Address, API and console ports, kept for restarts.
    ip: IpAddr,
    ports: (u16, u16),
    _data: tempfile::TempDir,
}

impl MinioServer {
    /// Starts a server with an empty bucket and waits until it serves. Panics (failing the test)
    /// when MinIO cannot run: these tests never skip.
    pub async fn start() -> MinioServer {
        Self::try_start()
            .await
            .unwrap_or_else(|e| panic!("cannot start MinIO: {e:#}"))
    }

    pub async fn try_start() -> Result<MinioServer> {
        Self::try_start_on(Ipv4Addr::LOCALHOST.into(), None).await
    }

    /// Like [`MinioServer::try_start`], listening on `ip` (the image tests' veth address), and
    /// serving HTTPS with `tls` (PEM certificate chain, PEM key, PEM CA) when given.
    pub async fn try_start_on(
        ip: IpAddr,
        tls: Option<(&[u8], &[u8], &[u8])>,
    ) -> Result<MinioServer> {
        let bin = minio_bin()?;
        let data = tempfile::tempdir()?;
        let mut client = reqwest::Client::builder();
        if let Some((cert, key, ca)) = tls {
            // MinIO serves HTTPS when its certs folder holds these two files.
            std::fs::create_dir_all(data.path().join("certs"))?;
            std::fs::write(data.path().join("certs/public.crt"), cert)?;
            std::fs::write(data.path().join("certs/private.key"), key)?;
            client = client.add_root_certificate(reqwest::Certificate::from_pem(ca)?);
        }
        let scheme = if tls.is_some() { "https" } else { "http" };
        let port = free_port(ip)?;
        let console_port = free_port(ip)?;
        let child = spawn(&bin, data.path(), ip, (port, console_port))?;
        let mut server = MinioServer {
            endpoint: format!("{scheme}://{}", SocketAddr::new(ip, port)),
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
            bucket: BUCKET.into(),
            region: REGION.into(),
            client: client.build()?,
            child,
            bin,
            ip,
            ports: (port, console_port),
            _data: data,
        };
        server.wait_ready().await?;
        // A busy machine's MinIO can answer 503 (still initializing) for many seconds after
        // its health check says ready.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let status = server
                .s3_request(reqwest::Method::PUT, &format!("/{BUCKET}"))
                .await?;
            if status.is_success() {
                return Ok(server);
            }
            if status != reqwest::StatusCode::SERVICE_UNAVAILABLE
                || tokio::time::Instant::now() > deadline
            {
                bail!("creating bucket {BUCKET}: HTTP {status}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `kill -9` the server, as a crash or a lost node would; its data stays for [`Self::restart`].
    /// `spec.storage` naming this server's bucket under `prefix`, credentials from the Secret
    /// `s3` (see [`MinioServer::secrets`]); other fields at their defaults.
    pub fn storage_spec(&self, prefix: &str) -> athens_operator::crd::StorageSpec {
        use athens_operator::crd::{S3Credentials, S3Storage, StorageSpec};
        StorageSpec {
            s3: Some(S3Storage {
                bucket: self.bucket.clone(),
                prefix: Some(prefix.into()),
                region: Some(self.region.clone()),
                endpoint: Some(self.endpoint.clone()),
                path_style: Some(true),
                credentials: Some(S3Credentials {
                    secret_name: "s3".into(),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }
    }

    /// The Secret `s3` that [`MinioServer::storage_spec`] refers to.
    pub fn secrets(&self) -> crate::rendered::SecretData {
        crate::rendered::secret(
            "s3",
            &[
                ("AWS_ACCESS_KEY_ID", &self.access_key),
                ("AWS_SECRET_ACCESS_KEY", &self.secret_key),
            ],
        )
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port and data (the bucket and objects survive).
    pub async fn restart(&mut self) -> Result<()> {
        self.kill();
        self.child = spawn(&self.bin, self._data.path(), self.ip, self.ports)?;
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let http = self.client.clone();
        let url = format!("{}/minio/health/ready", self.endpoint);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("MinIO exited ({status}): {}", self.log_tail());
            }
            if let Ok(r) = http.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("MinIO not ready after 60s: {}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self._data.path().join("minio.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Sends an S3 request with an empty body, signed with the test credentials (AWS Signature
    /// Version 4), and returns the status: e.g. `HEAD /<bucket>` is 200 when the bucket exists.
    pub async fn s3_request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> Result<reqwest::StatusCode> {
        let host = self.endpoint.split_once("://").map_or("", |(_, h)| h);
        let now = chrono::Utc::now();
        let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let auth = sigv4_authorization(
            &SigV4 {
                method: method.as_str(),
                path,
                host,
                amz_date: &amz_date,
                region: &self.region,
                access_key: &self.access_key,
                secret_key: &self.secret_key,
            },
            &hex(&Sha256::digest(b"")),
        );
        let resp = self
            .client
            .request(method, format!("{}{path}", self.endpoint))
            .header("x-amz-date", &amz_date)
            .header("x-amz-content-sha256", hex(&Sha256::digest(b"")))
            .header("authorization", auth)
            .send()
            .await?;
        Ok(resp.status())
    }
}

impl Drop for MinioServer {
    fn drop(&mut self) {
        // Our own child, by handle; the temp folder goes with `_data`.
        self.kill();
    }
}

/// Runs `minio server` on `data` with the test credentials, logging to `data/minio.log`.
fn spawn(bin: &Path, data: &Path, ip: IpAddr, (port, console_port): (u16, u16)) -> Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data.join("minio.log"))?;
    Command::new(bin)
        .arg("server")
        .arg(data.join("data"))
        .args(["--address", &SocketAddr::new(ip, port).to_string()])
        .args([
            "--console-address",
            &SocketAddr::new(ip, console_port).to_string(),
        ])
        // Keeps MinIO from creating ~/.minio/certs.
        .arg("--certs-dir")
        .arg(data.join("certs"))
        .arg("--quiet")
        .env("MINIO_ROOT_USER", ACCESS_KEY)
        .env("MINIO_ROOT_PASSWORD", SECRET_KEY)
        .env("MINIO_BROWSER", "off")
        .env("MINIO_UPDATE", "off")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("running {}", bin.display()))
}

/// `$ATHENS_MINIO_BIN`, or whatever `tests/peers/minio-install` installs (cached after the first time).
fn minio_bin() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("ATHENS_MINIO_BIN") {
        return Ok(bin.into());
    }
    crate::wait::script_output(&Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/minio-install"))
}

/// A port nobody listens on right now on `ip` (the kernel picks it).
fn free_port(ip: IpAddr) -> Result<u16> {
    Ok(TcpListener::bind((ip, 0))?.local_addr()?.port())
}

struct SigV4<'a> {
    method: &'a str,
    /// Already URI-encoded, no query string.
    path: &'a str,
    host: &'a str,
    amz_date: &'a str,
    region: &'a str,
    access_key: &'a str,
    secret_key: &'a str,
}

/// The `Authorization` header of AWS Signature Version 4 for a request without query string,
/// signing the headers host, x-amz-content-sha256 and x-amz-date.
fn sigv4_authorization(r: &SigV4, payload_sha256: &str) -> String {
    let signed_headers = "host;x-amz-content-sha256;x-amz-date";
    let canonical_request = format!(
        "{}\n{}\n\nhost:{}\nx-amz-content-sha256:{}\nx-amz-date:{}\n\n{}\n{}",
        r.method, r.path, r.host, payload_sha256, r.amz_date, signed_headers, payload_sha256
    );
    let day = &r.amz_date[..8];
    let scope = format!("{day}/{}/s3/aws4_request", r.region);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        r.amz_date,
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let mut key = hmac_sha256(format!("AWS4{}", r.secret_key).as_bytes(), day.as_bytes());
    for part in [r.region, "s3", "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex(&hmac_sha256(&key, string_to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        r.access_key
    )
}

/// HMAC (RFC 2104) over SHA-256, whose block size is 64 bytes.
pub(crate) fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| block.iter().map(|k| k ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4231, test case 2.
    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
