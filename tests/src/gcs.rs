//! The GCS emulator for the Google Cloud Storage tests: fake-gcs-server behind the XML-API front
//! in `tests/peers/gcs-emulator` (built by `tests/peers/gcs-emulator-install`, or taken from
//! `$ATHENS_GCS_EMULATOR_BIN`). Each [`GcsEmulator`] is its own process on a port it picks, in
//! memory, with one empty bucket.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::peer::{Peer, installed};

pub const BUCKET: &str = "athens-test";

pub struct GcsEmulator {
    /// `http://127.0.0.1:<port>`: the base URL object_store calls `google_base_url`.
    pub url: String,
    pub bucket: String,
    _peer: Peer,
}

impl GcsEmulator {
    /// Starts the emulator and waits until it serves; panics (failing the test) when it cannot.
    pub async fn start() -> GcsEmulator {
        Self::try_start()
            .await
            .unwrap_or_else(|e| panic!("cannot start the GCS emulator: {e:#}"))
    }

    pub async fn try_start() -> Result<GcsEmulator> {
        let bin = installed("ATHENS_GCS_EMULATOR_BIN", "gcs-emulator-install")?;
        let mut peer = Peer::spawn("gcs-emulator", |_| {
            let mut c = Command::new(&bin);
            c.args(["-addr", "127.0.0.1:0", "-bucket", BUCKET]);
            c
        })?;
        let url = peer
            .wait_for_log("listening on ", Duration::from_secs(30))
            .await
            .context("waiting for the GCS emulator")?;
        Ok(GcsEmulator {
            url,
            bucket: BUCKET.into(),
            _peer: peer,
        })
    }

    /// A service account key that points object_store at this emulator without OAuth (fields
    /// object_store reads besides Google's own: `gcs_base_url`, `disable_oauth`).
    pub fn service_account_json(&self) -> String {
        serde_json::json!({
            "private_key": "",
            "private_key_id": "",
            "client_email": "",
            "gcs_base_url": self.url,
            "disable_oauth": true,
        })
        .to_string()
    }
}
