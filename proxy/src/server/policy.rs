//! The filter file and download modes in force, re-read when their files change.
//!
//! Requests read a snapshot (`Arc`) under a short read lock; a watcher task re-reads the files
//! every `policy.reload_seconds` and swaps in the new rules only when they parse, so a bad edit
//! is logged and the last good rules keep answering.

use crate::config::PolicyConfig;
use crate::metrics::Metrics;
use crate::policy::download::{Decision, DownloadModes, Source};
use crate::policy::filter::{Filter, Rule};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The rules in force.
#[derive(Debug, Default)]
pub struct Rules {
    pub filter: Filter,
    pub download: DownloadModes,
}

/// The live policy: current rules plus what is needed to reload them.
pub struct Policy {
    cfg: PolicyConfig,
    current: RwLock<Arc<Rules>>,
    /// Texts the current rules came from (filter, download file), to notice changes.
    seen: RwLock<(String, String)>,
    metrics: Arc<Metrics>,
}

impl Policy {
    /// Loads both settings; any error here stops startup.
    pub fn load(cfg: &PolicyConfig, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        let (texts, rules) = read(cfg)?;
        Ok(Self {
            cfg: cfg.clone(),
            current: RwLock::new(Arc::new(rules)),
            seen: RwLock::new(texts),
            metrics,
        })
    }

    /// A snapshot of the rules in force.
    pub fn rules(&self) -> Arc<Rules> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The filter's rule for a request, counted.
    pub fn filter(&self, module: &str, version: Option<&str>) -> Rule {
        let rule = self.rules().filter.rule(module, version);
        self.metrics.filter_decision(rule);
        rule
    }

    /// The download mode for a miss, counted.
    pub fn download(&self, module: &str) -> Decision {
        let d = self.rules().download.decide(module);
        self.count("download", d.mode.name());
        d
    }

    /// Where `D` rules send clients.
    pub fn global_endpoint(&self) -> &str {
        self.cfg.global_endpoint.trim_end_matches('/')
    }

    fn count(&self, kind: &str, decision: &str) {
        self.metrics
            .policy_decisions
            .with_label_values(&[kind, decision])
            .inc();
    }

    /// Whether any file is watched.
    fn watches(&self) -> bool {
        !self.cfg.filter_file.trim().is_empty()
            || matches!(Source::parse(&self.cfg.download_mode), Ok(Source::File(_)))
    }

    /// Re-reads the files; swaps the rules in when they changed and parse. Returns whether the
    /// rules were replaced.
    pub fn reload(&self) -> bool {
        let texts = match read_texts(&self.cfg) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "policy files unreadable; keeping the rules in force");
                return false;
            }
        };
        let unchanged = self.seen.read().map(|s| *s == texts).unwrap_or(false);
        if unchanged {
            return false;
        }
        let result = parse(&self.cfg, &texts);
        // Remember the text either way: a bad file is reported once, not every poll.
        if let Ok(mut s) = self.seen.write() {
            *s = texts;
        }
        match result {
            Ok(rules) => {
                if let Ok(mut c) = self.current.write() {
                    *c = Arc::new(rules);
                }
                self.metrics.policy_reloads.with_label_values(&["ok"]).inc();
                tracing::info!("policy files changed: new rules in force");
                true
            }
            Err(e) => {
                self.metrics
                    .policy_reloads
                    .with_label_values(&["refused"])
                    .inc();
                tracing::error!(error = %e, "new policy files refused; keeping the rules in force");
                false
            }
        }
    }

    /// Polls the files for changes for the life of the process.
    pub fn watch(self: &Arc<Self>) {
        if !self.watches() {
            return;
        }
        let me = self.clone();
        let every = Duration::from_secs(self.cfg.reload_seconds.max(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let p = me.clone();
                // File reads are blocking; they are small.
                let _ = tokio::task::spawn_blocking(move || p.reload()).await;
            }
        });
    }
}

fn read(cfg: &PolicyConfig) -> anyhow::Result<((String, String), Rules)> {
    let texts = read_texts(cfg)?;
    let rules = parse(cfg, &texts)?;
    Ok((texts, rules))
}

/// The filter file's text and the download setting's text (file contents, or the inline value).
fn read_texts(cfg: &PolicyConfig) -> anyhow::Result<(String, String)> {
    let filter = match cfg.filter_file.trim() {
        "" => String::new(),
        path => std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading filter file {path}: {e}"))?,
    };
    let download = match Source::parse(&cfg.download_mode)? {
        Source::Inline(text) => text,
        Source::File(path) => std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("reading download mode file {path}: {e}"))?,
    };
    Ok((filter, download))
}

fn parse(cfg: &PolicyConfig, (filter, download): &(String, String)) -> anyhow::Result<Rules> {
    let filter = Filter::parse(filter)?;
    if filter.has_direct() && cfg.global_endpoint.trim().is_empty() {
        anyhow::bail!("the filter file has D rules but no global endpoint is set");
    }
    let download = DownloadModes::parse(download, cfg.download_url.trim())?;
    Ok(Rules { filter, download })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_new_file_keeps_the_last_good_rules() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("filter");
        std::fs::write(&path, "- bad.example\n").unwrap();
        let cfg = PolicyConfig {
            filter_file: path.display().to_string(),
            ..PolicyConfig::default()
        };
        let p = Policy::load(&cfg, Arc::new(Metrics::new())).unwrap();
        assert_eq!(p.filter("bad.example/m", None), Rule::Exclude);
        assert!(!p.reload(), "unchanged file is not reloaded");

        std::fs::write(&path, "- other.example\n").unwrap();
        assert!(p.reload());
        assert_eq!(p.filter("bad.example/m", None), Rule::Include);
        assert_eq!(p.filter("other.example/m", None), Rule::Exclude);

        std::fs::write(&path, "? nonsense\n").unwrap();
        assert!(!p.reload());
        assert_eq!(p.filter("other.example/m", None), Rule::Exclude);
        let m = p.metrics.render();
        assert!(
            m.contains("athens_policy_reloads_total{result=\"refused\"} 1"),
            "{m}"
        );
        assert!(
            m.contains("athens_policy_decisions_total{decision=\"exclude\",kind=\"filter\"} 3"),
            "{m}"
        );
    }

    #[test]
    fn direct_rules_need_a_global_endpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("filter");
        std::fs::write(&path, "D corp.example\n").unwrap();
        let mut cfg = PolicyConfig {
            filter_file: path.display().to_string(),
            ..PolicyConfig::default()
        };
        assert!(Policy::load(&cfg, Arc::new(Metrics::new())).is_err());
        cfg.global_endpoint = "http://global.example/".into();
        let p = Policy::load(&cfg, Arc::new(Metrics::new())).unwrap();
        assert_eq!(p.global_endpoint(), "http://global.example");
    }
}
