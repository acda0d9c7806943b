//! Shared state for handlers, built once from the configuration.

use super::policy::Policy;
use crate::config::{Config, NetworkMode};
use crate::fetch::budget::DiskBudget;
use crate::fetch::list_file::ListChecks;
use crate::fetch::negative_cache::{NegativeCache, TtlCache};
use crate::fetch::singleflight::{Group, Role};
use crate::fetch::{FillError, Filler};
use crate::metrics::Metrics;
use crate::module::{ModulePath, Version};
use crate::policy::PrefixPatterns;
use crate::policy::download::Mode;
use crate::storage::{Layout, Store, ZipCache};
use crate::upstream::{NetrcLine, Upstream, VcsSettings, parse_goproxy, parse_netrc};
use crate::verify::sumdb::{SumdbClient, SumdbSpec};
use bytes::Bytes;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// What every handler shares.
pub struct App {
    pub store: Store,
    pub upstream: Upstream,
    pub filler: Arc<Filler>,
    pub fills: Group<(String, String), Result<Bytes, FillError>>,
    pub mode: NetworkMode,
    pub negative: NegativeCache,
    /// Upstream's `list` answers, reused briefly (see `upstream_list.rs`).
    pub upstream_lists: super::upstream_list::UpstreamLists,
    /// Recently failed fills (rejected by verification, upstream errors) by version.
    pub failed: TtlCache<FillError>,
    pub metrics: Arc<Metrics>,
    /// The checksum database modules are verified against (its name), or `None` when
    /// verification was turned off explicitly: shown by `/version`.
    pub sumdb_name: Option<String>,
    /// Rate limit for repairing derived list files from `list` requests.
    pub list_checks: ListChecks,
    /// Client credentials; `None` when every client is served.
    pub access: Option<Arc<super::access::Gate>>,
    /// The filter file and download modes in force (reloaded when their files change).
    pub policy: Arc<Policy>,
    /// Fetch a version's zip in the background after its `.mod` was answered on its own.
    pub prefetch_zips: bool,
}

/// What storage holds of a version a `.info` or `.mod` request asked for.
#[derive(Debug)]
pub enum Found {
    /// The version is committed (`.info`, `.mod` and `.zip` stored): its `.info`.
    Committed(Bytes),
    /// Its `.info` and `.mod` were verified against the checksum database and stored; its zip
    /// may not be yet.
    ModOnly { info: Bytes, go_mod: Bytes },
}

impl Found {
    pub fn info(&self) -> &Bytes {
        match self {
            Self::Committed(info) | Self::ModOnly { info, .. } => info,
        }
    }
}

/// Why a module file is not answered from storage, beyond a failed fill: what the download
/// mode said to do on a miss.
#[derive(Debug)]
pub enum MissAnswer {
    Fill(FillError),
    /// `redirect`/`async_redirect`: 301 to this URL.
    Redirect(String),
    /// `async`/`none`: 404 with this reason.
    NotNow(String),
}

impl App {
    /// Builds the state: opens storage, parses the upstream list and checksum database.
    pub fn new(cfg: &Config) -> anyhow::Result<Self> {
        let metrics = Arc::new(Metrics::new());
        let mut store = Store::open(&cfg.storage.url, &cfg.storage.options)?;
        if !cfg.storage.zip_cache_dir.trim().is_empty() {
            let dir = std::path::Path::new(cfg.storage.zip_cache_dir.trim());
            let cache = ZipCache::open(
                dir,
                cfg.storage.zip_cache_max_bytes,
                metrics.zip_cache_counters(),
            )
            .map_err(|e| anyhow::anyhow!("storage.zip_cache_dir {}: {e}", dir.display()))?;
            store = store.with_zip_cache(cache);
        }
        if cfg.storage.zip_redirect_seconds > 0 {
            let signer = crate::storage::open_signer(&cfg.storage.url, &cfg.storage.options)?
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "storage.zip_redirect_seconds needs an s3://, gs:// or az:// bucket \
                         (pre-signed URLs); {} has none",
                        cfg.storage.url
                    )
                })?;
            store = store.with_zip_redirect(
                signer,
                Duration::from_secs(cfg.storage.zip_redirect_seconds),
            );
        }
        let entries = parse_goproxy(&cfg.upstream.goproxy).map_err(anyhow::Error::msg)?;
        let upstream = Upstream::new(
            entries.clone(),
            Duration::from_secs(cfg.upstream.timeout_seconds.max(1)),
            cfg.upstream.retries,
        )
        .map_err(anyhow::Error::msg)?
        .with_netrc(
            read_tokens(&cfg.upstream.vcs_tokens)?
                .into_iter()
                .chain(read_netrc(&cfg.upstream.netrc_file)?)
                .collect(),
        )
        .with_direct(
            VcsSettings {
                cache_dir: vcs_cache_dir(&cfg.upstream.vcs_cache_dir),
                private: cfg.upstream.private.clone(),
                ssh: ssh_config(&cfg.upstream),
                git_config: (!cfg.upstream.vcs_git_config.is_empty())
                    .then(|| cfg.upstream.vcs_git_config.clone().into()),
                cache_max: cfg.upstream.vcs_cache_max_bytes,
                go_binary: go_binary(&cfg.upstream.vcs_go_binary)?,
            },
            metrics.clone(),
        );
        let sumdb = SumdbSpec::parse(&cfg.upstream.sumdb)?
            .map(|spec| SumdbClient::new(spec, entries, upstream.http().clone()));
        let sumdb_name = sumdb.as_ref().map(|s| s.spec().name.clone());
        if sumdb_name.is_none() {
            tracing::warn!(
                "checksum database verification is OFF (upstream.sumdb = \"off\"): modules are \
                 stored and served without checking them against a checksum database"
            );
        }
        let policy = Arc::new(Policy::load(&cfg.policy, metrics.clone())?);
        let tmp_dir = std::env::temp_dir();
        let filler = Arc::new(Filler {
            store: store.clone(),
            upstream: upstream.clone(),
            sumdb,
            // Private modules are never looked up in the checksum database either.
            nosum: PrefixPatterns::new(
                cfg.upstream
                    .nosum_patterns
                    .iter()
                    .chain(&cfg.upstream.private),
            ),
            tmp_dir,
            holder: format!(
                "{}-{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "athens-proxy".into()),
                std::process::id()
            ),
            lease_ttl: Duration::from_secs(cfg.upstream.fill_lease_seconds.max(1)),
            metrics: metrics.clone(),
            slots: Arc::new(tokio::sync::Semaphore::new(
                cfg.upstream.max_concurrent_fills.max(1),
            )),
            temp_budget: DiskBudget::new(cfg.upstream.max_temp_bytes),
            mod_fills: Group::default(),
            records: Default::default(),
        });
        Ok(Self {
            store,
            upstream,
            filler,
            fills: Group::default(),
            mode: cfg.upstream.network_mode,
            negative: NegativeCache::new(Duration::from_secs(cfg.upstream.negative_cache_seconds)),
            upstream_lists: Default::default(),
            failed: TtlCache::new(Duration::from_secs(cfg.upstream.failed_fill_seconds)),
            metrics,
            sumdb_name,
            list_checks: ListChecks::new(Duration::from_secs(300)),
            policy,
            access: super::access::Gate::new(&cfg.access)?,
            prefetch_zips: cfg.upstream.prefetch_zips,
        })
    }

    /// The `.info` of a version, filling storage from upstream when it lacks it (once, however
    /// many requests ask at the same time).
    pub async fn ensure(
        self: &Arc<Self>,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Bytes, FillError> {
        if let Some(info) = self.lookup(module, version).await? {
            return Ok(info);
        }
        self.fill_missing(module, version).await
    }

    /// [`App::ensure`] for a client's request of `request_path`, with the download mode deciding
    /// what a miss does.
    pub async fn ensure_for(
        self: &Arc<Self>,
        module: &ModulePath,
        version: &Version,
        request_path: &str,
    ) -> Result<Bytes, MissAnswer> {
        if let Some(info) = self
            .lookup(module, version)
            .await
            .map_err(MissAnswer::Fill)?
        {
            return Ok(info);
        }
        self.decide_miss(module, version, request_path)?;
        self.fill_missing(module, version)
            .await
            .map_err(MissAnswer::Fill)
    }

    /// Like [`App::ensure_for`], for `.info` and `.mod` requests: when the checksum database
    /// vouches for the module's `.mod`, a miss is filled with the `.info`/`.mod` stage alone
    /// (see `fetch::mod_first`) and answered without waiting for the zip, which follows in the
    /// background (`upstream.prefetch_zips`) or on its own request.
    pub async fn ensure_mod_for(
        self: &Arc<Self>,
        module: &ModulePath,
        version: &Version,
        request_path: &str,
    ) -> Result<Found, MissAnswer> {
        let (m, v) = (module.escaped(), version.escaped());
        let layout = Layout {
            module: &m,
            version: &v,
        };
        if let Some(info) = self.store.info_cached(layout) {
            self.metrics.storage_hit();
            return Ok(Found::Committed(info));
        }
        if self.filler.vouching_sumdb(module).is_none() {
            return self
                .ensure_for(module, version, request_path)
                .await
                .map(Found::Committed);
        }
        let stage = self
            .store
            .mod_only(layout)
            .await
            .map_err(|e| MissAnswer::Fill(e.into()))?;
        if let Some((info, go_mod)) = stage {
            self.metrics.storage_hit();
            return Ok(Found::ModOnly { info, go_mod });
        }
        // Versions committed without a mod marker (by an older proxy, or with the checksum
        // database configured later).
        if let Some(info) = self
            .lookup(module, version)
            .await
            .map_err(MissAnswer::Fill)?
        {
            return Ok(Found::Committed(info));
        }
        self.decide_miss(module, version, request_path)?;
        let stage = self
            .fill_mod_missing(module, version)
            .await
            .map_err(MissAnswer::Fill)?;
        if self.prefetch_zips {
            self.fill_in_background(module, version);
        }
        Ok(Found::ModOnly {
            info: stage.info,
            go_mod: stage.go_mod,
        })
    }

    /// What the download mode says about a miss: `Ok` to fill it now (sync, and offline, where
    /// the fill answers not-found), else the answer to give instead (starting a background fill
    /// for the async modes).
    fn decide_miss(
        self: &Arc<Self>,
        module: &ModulePath,
        version: &Version,
        request_path: &str,
    ) -> Result<(), MissAnswer> {
        if self.mode == NetworkMode::Offline {
            return Ok(());
        }
        let d = self.policy.download(module.as_str());
        let shown = format!("{}@{}", module.as_str(), version.as_str());
        let redirect =
            || MissAnswer::Redirect(format!("{}{request_path}", d.url.trim_end_matches('/')));
        match d.mode {
            Mode::Sync => Ok(()),
            Mode::None => Err(MissAnswer::NotNow(format!(
                "{shown}: not in storage, and this proxy's download mode for it is none"
            ))),
            Mode::Redirect => Err(redirect()),
            Mode::Async => {
                self.fill_in_background(module, version);
                Err(MissAnswer::NotNow(format!(
                    "{shown}: not in storage yet; fetching it in the background (download mode \
                     async), retry shortly"
                )))
            }
            Mode::AsyncRedirect => {
                self.fill_in_background(module, version);
                Err(redirect())
            }
        }
    }

    /// The stored `.info`, counting the lookup.
    async fn lookup(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Option<Bytes>, FillError> {
        let (m, v) = (module.escaped(), version.escaped());
        let layout = Layout {
            module: &m,
            version: &v,
        };
        let found = self.store.info(layout).await?;
        let result = if found.is_some() { "hit" } else { "miss" };
        self.metrics.cache.with_label_values(&[result]).inc();
        Ok(found)
    }

    /// Fills a version storage lacks, in the background; the single-flight slot is shared, so a
    /// client asking meanwhile waits for the same fill.
    fn fill_in_background(self: &Arc<Self>, module: &ModulePath, version: &Version) {
        let (app, module, version) = (self.clone(), module.clone(), version.clone());
        // Still under the request that asked (its trace and its log fields), though it ends first.
        tokio::spawn(
            async move {
                if let Err(e) = app.fill_missing(&module, &version).await {
                    tracing::warn!(module = module.as_str(), version = version.as_str(), error = %e,
                        "background fill failed");
                }
            }
            .instrument(tracing::Span::current()),
        );
    }

    /// Fills a version storage lacks: offline? remembered failure? else one fill, shared.
    fn fill_missing<'a>(
        self: &'a Arc<Self>,
        module: &'a ModulePath,
        version: &'a Version,
    ) -> BoxFuture<'a, Result<Bytes, FillError>> {
        // Boxed: a fill's state is tens of KiB, and a request future holding it inline is
        // moved on every warm request too.
        Box::pin(async move {
            let (m, v) = (
                module.escaped().into_owned(),
                version.escaped().into_owned(),
            );
            if self.mode == NetworkMode::Offline {
                return Err(FillError::NotFound(format!(
                    "{}@{}: not in storage (offline mode)",
                    module.as_str(),
                    version.as_str()
                )));
            }
            let neg_key = format!("{m}/@v/{v}");
            if let Some(e) = self.remembered(&neg_key) {
                return Err(e);
            }
            let (filler, module, version) = (self.filler.clone(), module.clone(), version.clone());
            // The fill runs in its own task (the single-flight); its span is made here, so it is a
            // child of the request that started it.
            let span =
                tracing::info_span!("fill", module = module.as_str(), version = version.as_str());
            let work = async move { filler.fill(&module, &version).await }.instrument(span);
            let failed = Err(FillError::Storage("the fill task failed".into()));
            let (result, role) = self.fills.run((m, v), work, failed).await;
            if role == Role::Waiter {
                self.metrics.singleflight_waits.inc();
            }
            self.remember(&neg_key, &result);
            result
        })
    }

    /// The `.info`/`.mod` stage of a version storage lacks (see `fetch::mod_first`), with the
    /// same offline rule and memory of failures as [`App::fill_missing`].
    fn fill_mod_missing<'a>(
        self: &'a Arc<Self>,
        module: &'a ModulePath,
        version: &'a Version,
    ) -> BoxFuture<'a, Result<crate::fetch::ModFill, FillError>> {
        // Boxed: a fill's state is tens of KiB, and a request future holding it inline is
        // moved on every warm request too.
        Box::pin(async move {
            if self.mode == NetworkMode::Offline {
                return Err(FillError::NotFound(format!(
                    "{}@{}: not in storage (offline mode)",
                    module.as_str(),
                    version.as_str()
                )));
            }
            let neg_key = format!("{}/@v/{}", module.escaped(), version.escaped());
            if let Some(e) = self.remembered(&neg_key) {
                return Err(e);
            }
            let result = self.filler.fill_mod(module, version).await;
            self.remember(&neg_key, &result);
            result
        })
    }

    /// A recent not-found or failed fill of this version, counted.
    fn remembered(&self, neg_key: &str) -> Option<FillError> {
        if let Some(msg) = self.negative.get(neg_key) {
            self.metrics.negative_cache_hits.inc();
            return Some(FillError::NotFound(msg));
        }
        let e = self.failed.get(neg_key)?;
        self.metrics.failed_fill_hits.inc();
        Some(e)
    }

    fn remember<T>(&self, neg_key: &str, result: &Result<T, FillError>) {
        match result {
            Err(FillError::NotFound(msg)) => self.negative.put(neg_key, msg.clone()),
            Err(e) if e.is_remembered() => self.failed.put(neg_key, e.clone()),
            _ => {}
        }
    }

    /// Fills a committed version again whose `.zip` or `.mod` was lost from the bucket (see
    /// [`Filler::repair`]); shares the single-flight slot of the version's fills.
    pub fn repair<'a>(
        self: &'a Arc<Self>,
        module: &'a ModulePath,
        version: &'a Version,
    ) -> BoxFuture<'a, Result<Bytes, FillError>> {
        // Boxed: a fill's state is tens of KiB, and a request future holding it inline is
        // moved on every warm request too.
        Box::pin(async move {
            let key = (
                module.escaped().into_owned(),
                version.escaped().into_owned(),
            );
            let (filler, module, version) = (self.filler.clone(), module.clone(), version.clone());
            let span = tracing::info_span!(
                "repair",
                module = module.as_str(),
                version = version.as_str()
            );
            let work = async move { filler.repair(&module, &version).await }.instrument(span);
            let failed = Err(FillError::Storage("the repair task failed".into()));
            self.fills.run(key, work, failed).await.0
        })
    }
}

/// Upstream credentials: the `.netrc` file configured (else `$NETRC`), plus netrc text in
/// `ATHENS_UPSTREAM_NETRC` (for a Secret mounted as an environment variable).
fn read_netrc(configured: &str) -> anyhow::Result<Vec<NetrcLine>> {
    let path = match configured.trim() {
        "" => std::env::var("NETRC").unwrap_or_default(),
        p => p.to_string(),
    };
    let mut lines = Vec::new();
    if !path.is_empty() {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("reading netrc file {path}: {e}"))?;
        lines.extend(parse_netrc(&text));
    }
    if let Ok(text) = std::env::var("ATHENS_UPSTREAM_NETRC") {
        lines.extend(parse_netrc(&text));
    }
    Ok(lines)
}

/// Per-host tokens as `.netrc` lines (listed first, so they win over a `.netrc` entry).
fn read_tokens(tokens: &[athens_config::VcsToken]) -> anyhow::Result<Vec<NetrcLine>> {
    tokens
        .iter()
        .map(|t| {
            // The error names the file, never its contents.
            let text = std::fs::read_to_string(&t.file).map_err(|e| {
                anyhow::anyhow!("reading the token file {} of {}: {e}", t.file, t.host)
            })?;
            Ok(NetrcLine {
                machine: t.host.clone(),
                login: t.username.clone(),
                password: text.trim().to_string(),
            })
        })
        .collect()
}

/// SSH keys and known_hosts: as configured, else the ones `ssh` would use from `~/.ssh`.
fn ssh_config(cfg: &athens_config::UpstreamConfig) -> crate::vcs::SshConfig {
    let dot_ssh = std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".ssh"));
    let keys = if cfg.vcs_ssh_keys.is_empty() {
        dot_ssh
            .iter()
            .flat_map(|d| ["id_ed25519", "id_ecdsa", "id_rsa"].map(|n| d.join(n)))
            .filter(|p| p.is_file())
            .collect()
    } else {
        cfg.vcs_ssh_keys.iter().map(Into::into).collect()
    };
    let known_hosts = match cfg.vcs_known_hosts.as_str() {
        "" => dot_ssh.map(|d| d.join("known_hosts")),
        p => Some(p.into()),
    };
    crate::vcs::SshConfig { keys, known_hosts }
}

/// The mirror cache: the configured directory, else `athens-vcs` in the temporary directory.
/// `upstream.vcs_go_binary`, refused at startup when a path names no file (a name without
/// a `/` is looked up in `PATH` when run, as a shell would).
fn go_binary(configured: &str) -> anyhow::Result<Option<std::path::PathBuf>> {
    let go = configured.trim();
    if go.is_empty() {
        return Ok(None);
    }
    if go.contains('/') && !std::path::Path::new(go).is_file() {
        anyhow::bail!("upstream.vcs_go_binary: {go} is not a file");
    }
    Ok(Some(go.into()))
}

fn vcs_cache_dir(configured: &str) -> std::path::PathBuf {
    if configured.trim().is_empty() {
        std::env::temp_dir().join("athens-vcs")
    } else {
        std::path::PathBuf::from(configured)
    }
}
