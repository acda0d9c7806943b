//! Fetching one module version from upstream, verifying it, and committing it to storage.

use super::budget::DiskBudget;
use super::lease::{Acquired, try_acquire};
use super::mod_first::ModFill;
use super::records::RecentRecords;
use super::singleflight::Group;
use crate::metrics::{FILL_STAGES, Metrics};
use crate::module::{ModulePath, Version};
use crate::policy::PrefixPatterns;
use crate::storage::{Layout, StorageError, Store};
use crate::upstream::{Upstream, UpstreamError, download_to};
use crate::verify::sumdb::SumdbClient;
use crate::verify::{MAX_ZIP_FILE, check_zip_with, expected_go_mod, hash_go_mod, spawn_prehash};
use bytes::Bytes;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// Largest `.info` we accept from upstream.
pub(super) const MAX_INFO: usize = 64 << 10;
/// How long a request waits for another replica's fill before giving up.
const MAX_WAIT_FOR_OTHER: Duration = Duration::from_secs(600);

/// Why a version could not be filled. Cloneable: single-flight hands it to every waiter.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FillError {
    /// Upstream does not have it (404/410 everywhere): the client may try its next proxy.
    #[error("{0}")]
    NotFound(String),
    /// Upstream failed (5xx, timeout, transport).
    #[error(transparent)]
    Upstream(UpstreamError),
    /// What upstream sent failed verification; nothing was stored.
    #[error("{0}")]
    Rejected(String),
    /// The bucket failed.
    #[error("{0}")]
    Storage(String),
    /// This process has no room for the fill now (temporary disk); a retry may succeed.
    #[error("{0}")]
    Busy(String),
}

impl super::negative_cache::Weigh for FillError {
    fn weight(&self) -> usize {
        self.to_string().len()
    }
}

impl FillError {
    /// Failures worth remembering for a short while: asking again soon would only repeat them
    /// (and the download). Not-found has its own memory; storage and busy are about us.
    pub fn is_remembered(&self) -> bool {
        matches!(self, Self::Rejected(_) | Self::Upstream(_))
    }
}

impl From<UpstreamError> for FillError {
    fn from(e: UpstreamError) -> Self {
        match e {
            UpstreamError::NotFound(m) => Self::NotFound(m),
            UpstreamError::Off => Self::NotFound(e.to_string()),
            other => Self::Upstream(other),
        }
    }
}

impl From<StorageError> for FillError {
    fn from(e: StorageError) -> Self {
        Self::Storage(e.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Fill,
    Repair,
}

/// Everything a fill needs.
pub struct Filler {
    pub store: Store,
    pub upstream: Upstream,
    pub sumdb: Option<SumdbClient>,
    pub nosum: PrefixPatterns,
    pub tmp_dir: PathBuf,
    /// This process's identity in fill leases.
    pub holder: String,
    pub lease_ttl: Duration,
    pub metrics: Arc<Metrics>,
    /// Fills running at once in this process (`upstream.max_concurrent_fills`).
    pub slots: Arc<tokio::sync::Semaphore>,
    /// Temporary disk for zips being fetched and verified (`upstream.max_temp_bytes`).
    pub temp_budget: Arc<DiskBudget>,
    /// `.info`/`.mod` stages running now, shared by `.mod` requests and zip fills.
    pub mod_fills: Group<(String, String), Result<ModFill, FillError>>,
    /// Records the `.mod` stage verified, for the zip fill that follows it.
    pub records: RecentRecords,
}

impl Filler {
    /// Makes the version exist in storage (fetching it unless it is there or another replica is
    /// fetching it) and returns its `.info`.
    pub async fn fill(
        self: &Arc<Self>,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Bytes, FillError> {
        self.with_lease(module, version, Purpose::Fill).await
    }

    /// Restores a committed version whose `.zip` or `.mod` is gone from the bucket (a lifecycle
    /// rule, a clean-up, a partial restore): under the lease, if still broken, the version is
    /// made invisible and filled again, and the new zip must have the `h1:` it was first
    /// committed with (`.ziphash`), on top of the usual checks.
    pub async fn repair(
        self: &Arc<Self>,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Bytes, FillError> {
        self.with_lease(module, version, Purpose::Repair).await
    }

    async fn with_lease(
        self: &Arc<Self>,
        module: &ModulePath,
        version: &Version,
        purpose: Purpose,
    ) -> Result<Bytes, FillError> {
        let (m, v) = (module.escaped(), version.escaped());
        let layout = Layout {
            module: &m,
            version: &v,
        };
        let started = Instant::now();
        loop {
            if purpose == Purpose::Fill
                && let Some(info) = self.store.info(layout).await?
            {
                return Ok(info);
            }
            // A slot first, then the lease: waiting for a slot while holding the lease would
            // stall other replicas too.
            let _slot = self
                .slots
                .acquire()
                .await
                .map_err(|_| FillError::Storage("fill slots closed".into()))?;
            let acquired = try_acquire(&self.store, &layout.lease(), &self.holder, self.lease_ttl)
                .instrument(tracing::info_span!("lease"))
                .await?;
            match acquired {
                Acquired::Held(guard) => {
                    let result = match purpose {
                        Purpose::Fill => {
                            self.fetch_verify_store(module, version, layout, None).await
                        }
                        Purpose::Repair => self.repair_held(module, version, layout).await,
                    };
                    guard
                        .release()
                        .instrument(tracing::info_span!("lease_release"))
                        .await;
                    let outcome = match &result {
                        Ok(_) => "stored",
                        Err(FillError::NotFound(_)) => "not_found",
                        Err(FillError::Rejected(_)) => "rejected",
                        Err(_) => "failed",
                    };
                    self.metrics
                        .upstream_fetches
                        .with_label_values(&[outcome])
                        .inc();
                    self.metrics
                        .upstream_seconds
                        .with_label_values(&[outcome])
                        .observe(started.elapsed().as_secs_f64());
                    return result;
                }
                Acquired::Busy if started.elapsed() > MAX_WAIT_FOR_OTHER => {
                    return Err(FillError::Storage(format!(
                        "{}@{}: another replica has been fetching it for too long",
                        module.as_str(),
                        version.as_str()
                    )));
                }
                // Another replica holds the lease: for a repair, its fill is the repair, so
                // waiting for it and then reading what it committed is enough.
                Acquired::Busy => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    /// The repair itself, under the lease: another replica may have repaired it already.
    async fn repair_held(
        self: &Arc<Self>,
        module: &ModulePath,
        version: &Version,
        layout: Layout<'_>,
    ) -> Result<Bytes, FillError> {
        self.store.forget(layout);
        if let Some(info) = self.store.info(layout).await?
            && self.store.has_files(layout).await?
        {
            return Ok(info);
        }
        let expect_h1 = self.store.ziphash(layout).await?;
        tracing::warn!(module = %module.as_str(), version = %version.as_str(),
            "stored version lost its .zip or .mod; filling it again");
        self.metrics.storage_repairs.inc();
        self.store.uncommit(layout).await?;
        self.fetch_verify_store(module, version, layout, expect_h1)
            .await
    }

    async fn fetch_verify_store(
        self: &Arc<Self>,
        module: &ModulePath,
        version: &Version,
        layout: Layout<'_>,
        expect_h1: Option<String>,
    ) -> Result<Bytes, FillError> {
        let id = format!("{}@{}", module.as_str(), version.as_str());
        let base = format!("{}/@v/{}", layout.module, layout.version);

        // The zip downloads while the `.info`/`.mod` stage runs (shared with `.mod` requests,
        // see mod_first.rs), so a fill costs about one round trip plus the zip transfer. The
        // stage's errors come first: a missing version is a not-found from `.info`.
        let sumdb = self.vouching_sumdb(module);
        let tmp = tempfile::NamedTempFile::new_in(&self.tmp_dir)
            .map_err(|e| FillError::Storage(format!("temp file: {e}")))?;
        let mod_stage = async {
            let stage = self.fill_mod(module, version).await?;
            // A stage committed earlier comes without its record: the one it verified if this
            // process still has it, else the zip's hash looked up again (while the zip is still
            // downloading).
            let remembered = self.records.take(layout.module, layout.version);
            let record = match (stage.record.clone().or(remembered), sumdb) {
                (Some(r), _) => Some(r),
                (None, Some(s)) => Some(
                    s.lookup(layout.module, layout.version)
                        .instrument(tracing::info_span!("sumdb_lookup"))
                        .await
                        .map_err(|e| FillError::Rejected(e.to_string()))?,
                ),
                (None, None) => None,
            };
            Ok::<_, FillError>((stage, record))
        };
        let fetch_zip = async {
            let resp = self.upstream.get(&format!("{base}.zip")).await?;
            // Reserve the zip's size on temp disk: what upstream declares, else the limit.
            let size = resp
                .content_length()
                .unwrap_or(MAX_ZIP_FILE)
                .min(MAX_ZIP_FILE);
            let reservation = self.temp_budget.try_reserve(size).ok_or_else(|| {
                FillError::Busy(format!(
                    "{id}: temporary disk for downloads is in use by other fills; try again"
                ))
            })?;
            // Files are hashed as they arrive, so the check after the download reads the
            // central directory and little else (verify/zipstream.rs).
            let (tap, pass) =
                spawn_prehash(format!("{}@{}/go.mod", module.as_str(), version.as_str()));
            download_to(resp, tmp.path(), size, Some(tap))
                .await
                .map_err(|e| FillError::Rejected(format!("{id}: .zip: {e}")))?;
            Ok::<_, FillError>((reservation, pass))
        }
        .instrument(tracing::info_span!("upstream_fetch", file = ".zip"));
        let stage_started = Instant::now();
        // When each ended: how long a downloaded zip waited for the checksum database.
        let ((staged, staged_at), (zipped, zipped_at)) =
            tokio::join!(ended(mod_stage), ended(fetch_zip));
        let fetched = stage_started.elapsed();
        let waited = staged_at.saturating_duration_since(zipped_at);
        let (stage, record) = staged?;
        let (_reservation, pass) = zipped?;
        let (info, go_mod) = (stage.info, stage.go_mod);

        tracing::debug!(%id, "zip downloaded");
        let verify = async {
            let path = tmp.path().to_path_buf();
            let (mp, vs) = (module.as_str().to_string(), version.as_str().to_string());
            let task_err =
                |e: tokio::task::JoinError| FillError::Storage(format!("zip check task: {e}"));
            let pass = pass.await.map_err(task_err)?;
            let summary =
                tokio::task::spawn_blocking(move || check_zip_with(&path, &mp, &vs, Some(&pass)))
                    .await
                    .map_err(task_err)?
                    .map_err(|e| FillError::Rejected(e.to_string()))?;

            tracing::debug!(%id, h1 = %summary.h1, files = summary.files,
                streamed = summary.streamed, "zip checked");
            let want_mod = expected_go_mod(module.as_str(), summary.go_mod.as_deref());
            if want_mod != go_mod.as_ref() {
                return Err(FillError::Rejected(format!(
                    "{id}: upstream .mod differs from the go.mod in the zip"
                )));
            }

            if let Some(want) = expect_h1
                && want != summary.h1
            {
                return Err(FillError::Rejected(format!(
                    "{id}: upstream zip has {}, but it was stored with {want}",
                    summary.h1
                )));
            }

            if let Some(record) = record {
                record
                    .check(
                        module.as_str(),
                        version.as_str(),
                        Some(&summary.h1),
                        Some(&hash_go_mod(&go_mod)),
                    )
                    .map_err(|e| FillError::Rejected(e.to_string()))?;
            }
            Ok::<_, FillError>(summary)
        };
        let checking = Instant::now();
        let summary = verify.instrument(tracing::info_span!("verify")).await?;
        let checked = checking.elapsed();
        let committing = Instant::now();

        tracing::debug!(%id, "verified; committing");
        self.store
            .commit(layout, tmp.path(), go_mod, info.clone(), &summary.h1)
            .instrument(tracing::info_span!("commit"))
            .await?;
        tracing::debug!(%id, "committed");
        if let Err(e) = self.refresh_list(layout.module).await {
            // The list file is derived and rewritten on the next commit; serving does not use it.
            tracing::warn!(module = %module.as_str(), error = %e, "could not rewrite list file");
        }
        self.metrics
            .fill_sumdb_wait_seconds
            .observe(waited.as_secs_f64());
        let stages = [fetched, checked, committing.elapsed()];
        for (stage, took) in FILL_STAGES.iter().zip(stages) {
            self.metrics
                .fill_stage_seconds
                .with_label_values(&[stage])
                .observe(took.as_secs_f64());
        }
        Ok(info)
    }

    /// Rewrites `<module>/@v/list` (tagged versions in storage) so the bucket stays a valid
    /// `file://` GOPROXY. Concurrent writers may race; the next commit repairs it.
    async fn refresh_list(&self, module_escaped: &str) -> Result<(), StorageError> {
        let stored = self.store.stored_versions(module_escaped).await?;
        super::list_file::rewrite(&self.store, module_escaped, &stored.all).await
    }
}

/// A future's output and the instant it was ready.
async fn ended<T>(f: impl std::future::Future<Output = T>) -> (T, Instant) {
    let out = f.await;
    (out, Instant::now())
}
