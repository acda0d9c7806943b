//! Prometheus metrics of the operator, served on `/metrics`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use std::time::Duration;

/// The operator's metrics and the registry that serves them.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    reconciles: IntCounterVec,
    failures: IntCounterVec,
    duration: Histogram,
    leader: IntGauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        // Names and labels are constants: creating and registering them cannot fail.
        let reconciles = IntCounterVec::new(
            Opts::new(
                "athens_operator_reconciles_total",
                "Reconciles of AthensProxy resources, by result (ok, error)",
            ),
            &["result"],
        )
        .expect("valid metric");
        let failures = IntCounterVec::new(
            Opts::new(
                "athens_operator_reconcile_failures_total",
                "Failed reconciles, by reason",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "athens_operator_reconcile_duration_seconds",
                "Time one reconcile takes",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )
        .expect("valid metric");
        let leader = IntGauge::new(
            "athens_operator_leader",
            "1 when this replica holds the leader Lease and reconciles",
        )
        .expect("valid metric");
        for c in [
            Box::new(reconciles.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(failures.clone()),
            Box::new(duration.clone()),
            Box::new(leader.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        Self {
            registry,
            reconciles,
            failures,
            duration,
            leader,
        }
    }

    /// Records one reconcile.
    pub fn reconciled(&self, took: Duration, failure: Option<&str>) {
        self.duration.observe(took.as_secs_f64());
        match failure {
            None => self.reconciles.with_label_values(&["ok"]).inc(),
            Some(reason) => {
                self.reconciles.with_label_values(&["error"]).inc();
                self.failures.with_label_values(&[reason]).inc();
            }
        }
    }

    /// Records whether this replica leads.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_renders() {
        let m = Metrics::new();
        m.reconciled(Duration::from_millis(3), None);
        m.reconciled(Duration::from_millis(3), Some("SecretNotFound"));
        m.set_leader(true);
        let text = m.render();
        assert!(
            text.contains("athens_operator_reconciles_total{result=\"ok\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("athens_operator_reconcile_failures_total{reason=\"SecretNotFound\"} 1")
        );
        assert!(text.contains("athens_operator_reconcile_duration_seconds_count 2"));
        assert!(text.contains("athens_operator_leader 1"));
    }
}
