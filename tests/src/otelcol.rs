//! A real OpenTelemetry Collector for the trace tests: the upstream OTLP/HTTP receiver and file
//! exporter, built by `tests/peers/otel-collector-install` (or taken from `$ATHENS_OTELCOL_BIN`).
//! Each [`Collector`] is its own process on a free loopback port, writing what it receives as
//! OTLP JSON lines into its temporary folder.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::peer::{Peer, free_port, installed};

pub struct Collector {
    /// `http://127.0.0.1:<port>`: an OTLP/HTTP base URL (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub url: String,
    peer: Peer,
}

/// One span as the collector received it.
#[derive(Debug, Clone)]
pub struct SpanRecord {
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    /// String, integer and boolean attributes, as text.
    pub attributes: BTreeMap<String, String>,
    /// The resource's `service.name`.
    pub service: String,
}

impl Collector {
    /// Starts a collector and waits until it serves; panics (failing the test) when it cannot.
    pub async fn start() -> Collector {
        Self::try_start()
            .await
            .unwrap_or_else(|e| panic!("cannot start the OpenTelemetry Collector: {e:#}"))
    }

    pub async fn try_start() -> Result<Collector> {
        let bin = installed("ATHENS_OTELCOL_BIN", "otel-collector-install")?;
        let port = free_port()?;
        let mut peer = Peer::spawn("otel-collector", |dir| {
            let config = dir.join("config.yaml");
            let text = format!(
                "receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:{port}\n\
                 exporters:\n  file:\n    path: {}\n    flush_interval: 100ms\n\
                 service:\n  telemetry:\n    metrics:\n      level: none\n  pipelines:\n    traces:\n      \
                 receivers: [otlp]\n      exporters: [file]\n",
                dir.join("traces.jsonl").display()
            );
            // A failed write shows up as the collector refusing to start, with its log.
            let _ = std::fs::write(&config, text);
            let mut c = Command::new(&bin);
            c.arg("--config").arg(config);
            c
        })?;
        peer.wait_for_log("Everything is ready", Duration::from_secs(60))
            .await
            .context("waiting for the collector")?;
        Ok(Collector {
            url: format!("http://127.0.0.1:{port}"),
            peer,
        })
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<SpanRecord> {
        let text =
            std::fs::read_to_string(self.peer.dir().join("traces.jsonl")).unwrap_or_default();
        let mut out = Vec::new();
        // The last line may be half-written: skip what does not parse.
        for doc in text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        {
            for rs in doc["resourceSpans"].as_array().into_iter().flatten() {
                let resource = attributes(&rs["resource"]["attributes"]);
                let service = resource.get("service.name").cloned().unwrap_or_default();
                for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                    for s in ss["spans"].as_array().into_iter().flatten() {
                        let text = |k: &str| s[k].as_str().unwrap_or_default().to_string();
                        out.push(SpanRecord {
                            trace_id: text("traceId"),
                            span_id: text("spanId"),
                            parent_span_id: text("parentSpanId"),
                            name: text("name"),
                            attributes: attributes(&s["attributes"]),
                            service: service.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    /// Polls [`Collector::spans`] until `done` accepts them (the proxy exports in batches).
    pub async fn wait_for_spans(
        &self,
        timeout: Duration,
        done: impl Fn(&[SpanRecord]) -> bool,
    ) -> Vec<SpanRecord> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if done(&spans) || tokio::time::Instant::now() > deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// OTLP JSON `attributes` (`[{key, value: {stringValue|intValue|boolValue}}]`) as text.
fn attributes(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| {
            let key = a["key"].as_str()?.to_string();
            let value = &a["value"];
            let text = value["stringValue"]
                .as_str()
                .map(String::from)
                .or_else(|| value["intValue"].as_str().map(String::from))
                .or_else(|| value["intValue"].as_i64().map(|i| i.to_string()))
                .or_else(|| value["boolValue"].as_bool().map(|b| b.to_string()))?;
            Some((key, text))
        })
        .collect()
}
