//! A certificate authority made by the test (with the openssl command) and one server
//! certificate it signs, so a server the test runs can speak HTTPS that a container trusts.

use anyhow::{Context, Result, ensure};
use std::path::Path;
use std::process::Command;

pub struct TestCa {
    pub ca_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl TestCa {
    /// A CA and a server certificate valid for `names` (DNS names, or IP addresses).
    pub fn new(names: &[&str]) -> Result<TestCa> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let san: Vec<String> = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(_) => format!("IP:{n}"),
                Err(_) => format!("DNS:{n}"),
            })
            .collect();
        // The first name is the subject's too: Mercurial matches an IP address host against
        // the common name only (it reads DNS entries of subjectAltName, not IP ones).
        let subject = format!(
            "/CN={}",
            names.first().copied().unwrap_or("athens test server")
        );
        std::fs::write(
            d.join("ext"),
            format!(
                "subjectAltName={}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
                san.join(",")
            ),
        )?;
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            d,
            &[
                &["req", "-x509"],
                &ec[..],
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=athens test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign",
                ],
            ]
            .concat(),
        )?;
        openssl(
            d,
            &[
                &["req"],
                &ec[..],
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    &subject,
                ],
            ]
            .concat(),
        )?;
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "ext",
            ],
        )?;
        Ok(TestCa {
            ca_pem: std::fs::read(d.join("ca.crt"))?,
            cert_pem: std::fs::read(d.join("server.crt"))?,
            key_pem: std::fs::read(d.join("server.key"))?,
        })
    }
}

fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .context("running openssl")?;
    ensure!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
