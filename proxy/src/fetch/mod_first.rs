//! The first stage of a fill: a version's `.info` and `.mod`, verified against the checksum
//! database's `go.mod` hash (the go.sum `<module> <version>/go.mod h1:` line) and stored on
//! their own, so a `.mod` request never waits for the module's zip.
//!
//! A build graph asks for the `.mod` of many modules whose zips it never needs. When a checksum
//! database vouches for the `.mod` alone, the `.mod` and a mod marker (`<version>.modinfo`,
//! holding the `.info` bytes) are committed before the zip is fetched; the zip follows in the
//! background or on its own request, under the usual lease, and the full commit then writes
//! the marker's `.info` as the version's commit marker. Without a checksum database for the
//! module (private, no-sum, verification off) nothing can vouch for the `.mod` but the zip's
//! own `go.mod`: this stage then stores nothing and the caller fills the whole version.

use super::fill::{FillError, Filler, MAX_INFO};
use crate::module::{Info, ModulePath, Version};
use crate::storage::Layout;
use crate::upstream::read_limited;
use crate::verify::sumdb::SumdbClient;
use crate::verify::{MAX_GO_MOD, SumdbRecord, hash_go_mod};
use bytes::Bytes;
use std::sync::Arc;
use tracing::Instrument;

/// A version's `.info` and `.mod`, and the checksum database record they were checked
/// against (when this stage looked it up; `None` when they came from storage or no database
/// applies).
#[derive(Debug, Clone)]
pub struct ModFill {
    pub info: Bytes,
    pub go_mod: Bytes,
    pub record: Option<SumdbRecord>,
}

impl Filler {
    /// The checksum database that vouches for `module`'s `.mod` files, if any.
    pub fn vouching_sumdb(&self, module: &ModulePath) -> Option<&SumdbClient> {
        self.sumdb
            .as_ref()
            .filter(|_| !self.nosum.matches(module.as_str()))
    }

    /// The version's `.info` and `.mod`: from storage when their stage was committed before,
    /// else fetched, verified and (when a checksum database vouches) committed. Once per
    /// version at a time in this process, shared by `.mod` requests and the zip fill. No lease:
    /// every writer stores the same verified `.mod`, and the marker is create-only.
    pub async fn fill_mod(
        self: &Arc<Self>,
        module: &ModulePath,
        version: &Version,
    ) -> Result<ModFill, FillError> {
        let key = (
            module.escaped().into_owned(),
            version.escaped().into_owned(),
        );
        let (me, module, version) = (self.clone(), module.clone(), version.clone());
        // Its own span: the steps of this stage are traced whether a `.mod` request or the
        // zip fill started it.
        let span = tracing::info_span!(
            "fill_mod",
            module = module.as_str(),
            version = version.as_str()
        );
        let work = async move { me.mod_stage(&module, &version).await }.instrument(span);
        let failed = Err(FillError::Storage("the .mod fill task failed".into()));
        self.mod_fills.run(key, work, failed).await.0
    }

    async fn mod_stage(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<ModFill, FillError> {
        let (m, v) = (module.escaped(), version.escaped());
        let layout = Layout {
            module: &m,
            version: &v,
        };
        let sumdb = self.vouching_sumdb(module);
        if sumdb.is_some()
            && let Some((info, go_mod)) = self.store.mod_only(layout).await?
        {
            return Ok(ModFill {
                info,
                go_mod,
                record: None,
            });
        }
        let id = format!("{}@{}", module.as_str(), version.as_str());
        let base = format!("{}/@v/{}", layout.module, layout.version);
        // Independent requests, at once; errors taken in the order a sequential fill would meet
        // them (a missing version is a not-found from `.info`, not a checksum database error).
        let fetch_info = async {
            let resp = self.upstream.get(&format!("{base}.info")).await?;
            let info = read_limited(resp, MAX_INFO)
                .await
                .map_err(|e| FillError::Rejected(format!("{id}: .info: {e}")))?;
            Info::parse_for(&info, version)
                .map_err(|e| FillError::Rejected(format!("{id}: {e}")))?;
            Ok::<_, FillError>(info)
        }
        .instrument(tracing::info_span!("upstream_fetch", file = ".info"));
        let fetch_mod = async {
            let resp = self.upstream.get(&format!("{base}.mod")).await?;
            read_limited(resp, MAX_GO_MOD as usize)
                .await
                .map_err(|e| FillError::Rejected(format!("{id}: .mod: {e}")))
        }
        .instrument(tracing::info_span!("upstream_fetch", file = ".mod"));
        let lookup = async {
            match sumdb {
                Some(s) => s
                    .lookup(layout.module, layout.version)
                    .await
                    .map(Some)
                    .map_err(|e| FillError::Rejected(e.to_string())),
                None => Ok(None),
            }
        }
        .instrument(tracing::info_span!("sumdb_lookup"));
        let (info, go_mod, record) = tokio::join!(fetch_info, fetch_mod, lookup);
        let (info, go_mod, record) = (info?, go_mod?, record?);
        let Some(record) = record else {
            return Ok(ModFill {
                info,
                go_mod,
                record: None,
            });
        };
        record
            .check(
                module.as_str(),
                version.as_str(),
                None,
                Some(&hash_go_mod(&go_mod)),
            )
            .map_err(|e| FillError::Rejected(e.to_string()))?;
        let info = self
            .store
            .commit_mod(layout, go_mod.clone(), info)
            .instrument(tracing::info_span!("commit"))
            .await?;
        tracing::debug!(%id, "go.mod verified against the checksum database; stored");
        self.metrics.mod_first_fills.inc();
        self.records
            .put(layout.module, layout.version, record.clone());
        Ok(ModFill {
            info,
            go_mod,
            record: Some(record),
        })
    }
}
