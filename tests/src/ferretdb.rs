//! FerretDB, a MongoDB wire-protocol server (v1, SQLite backend), for the MongoDB storage tests
//! (built by `tests/peers/ferretdb-install`, or `$ATHENS_FERRETDB_BIN`). Each [`FerretDb`] is its
//! own process on a port it picks, with its databases in a temporary folder.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::peer::{Peer, installed};

pub struct FerretDb {
    /// `mongodb://127.0.0.1:<port>/`
    pub url: String,
    _peer: Peer,
}

impl FerretDb {
    /// Starts the server and waits until it serves; panics (failing the test) when it cannot.
    pub async fn start() -> FerretDb {
        Self::try_start()
            .await
            .unwrap_or_else(|e| panic!("cannot start FerretDB: {e:#}"))
    }

    pub async fn try_start() -> Result<FerretDb> {
        let bin = installed("ATHENS_FERRETDB_BIN", "ferretdb-install")?;
        let mut peer = Peer::spawn("FerretDB", |dir| {
            let mut c = Command::new(&bin);
            c.arg("-dir").arg(dir).args(["-addr", "127.0.0.1:0"]);
            c
        })?;
        let url = peer
            .wait_for_log("listening on ", Duration::from_secs(30))
            .await
            .context("waiting for FerretDB")?;
        Ok(FerretDb { url, _peer: peer })
    }

    /// The URL of database `db` on this server.
    pub fn database_url(&self, db: &str) -> String {
        format!("{}{db}", self.url)
    }
}
