//! Azurite, Microsoft's Azure Storage emulator, for the Azure Blob tests (installed from npm by
//! `tests/peers/azurite-install`, or `$ATHENS_AZURITE_BLOB_JS`). Each [`Azurite`] is its own blob
//! service on a port it picks, with a temporary data folder and one empty container.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::minio::hmac_sha256;
use crate::peer::{Peer, installed};

/// Azurite's built-in development account and its published key.
pub const ACCOUNT: &str = "devstoreaccount1";
pub const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
pub const CONTAINER: &str = "athens-test";
/// The REST API version our own request (creating the container) speaks.
const API_VERSION: &str = "2021-08-06";

pub struct Azurite {
    /// `http://127.0.0.1:<port>`; the account's endpoint is `<url>/devstoreaccount1`.
    pub url: String,
    pub container: String,
    _peer: Peer,
}

impl Azurite {
    /// Starts the blob service with an empty container; panics (failing the test) when it cannot.
    pub async fn start() -> Azurite {
        Self::try_start()
            .await
            .unwrap_or_else(|e| panic!("cannot start Azurite: {e:#}"))
    }

    pub async fn try_start() -> Result<Azurite> {
        let script = installed("ATHENS_AZURITE_BLOB_JS", "azurite-install")?;
        let mut peer = Peer::spawn("Azurite", |dir| {
            let mut c = Command::new("node");
            c.arg(&script)
                .args(["--blobHost", "127.0.0.1", "--blobPort", "0", "--location"])
                .arg(dir)
                .args(["--silent", "--disableTelemetry", "--skipApiVersionCheck"]);
            c
        })?;
        let url = peer
            // Node starts slowly on a busy machine.
            .wait_for_log("successfully listens on ", Duration::from_secs(180))
            .await
            .context("waiting for Azurite")?;
        let azurite = Azurite {
            url,
            container: CONTAINER.into(),
            _peer: peer,
        };
        azurite.create_container().await?;
        Ok(azurite)
    }

    /// The account endpoint, as a user would configure it for Azurite.
    pub fn endpoint(&self) -> String {
        format!("{}/{ACCOUNT}", self.url)
    }

    /// `PUT <container>?restype=container`, signed with the account key (Shared Key).
    async fn create_container(&self) -> Result<()> {
        let date = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        // Verb, eleven empty standard headers, the x-ms- headers, then the resource.
        let string_to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{API_VERSION}\n/{ACCOUNT}/{ACCOUNT}/{CONTAINER}\nrestype:container"
        );
        let key = B64.decode(ACCOUNT_KEY)?;
        let signature = B64.encode(hmac_sha256(&key, string_to_sign.as_bytes()));
        let resp = reqwest::Client::new()
            .put(format!("{}/{CONTAINER}?restype=container", self.endpoint()))
            .header("x-ms-date", date)
            .header("x-ms-version", API_VERSION)
            .header("authorization", format!("SharedKey {ACCOUNT}:{signature}"))
            .header("content-length", "0")
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!(
                "creating container {CONTAINER}: HTTP {}: {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }
}
