use athens_proxy::config::{Cli, LogFormat, resolve_from_go_env};
use clap::Parser;
use tracing::Level;
use tracing_subscriber::filter::{FilterExt, LevelFilter, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.print_config_reference {
        print!("{}", athens_proxy::config::reference::markdown());
        return Ok(());
    }
    if let Some(path) = &cli.convert_athens_config {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        let env: Vec<(String, String)> = std::env::vars().collect();
        let conversion = athens_proxy::config::athens::convert(&text, &env)?;
        print!("{}", conversion.render(&path.display().to_string()));
        return Ok(());
    }
    let mut cfg = cli.resolve()?;
    resolve_from_go_env(&mut cfg.upstream)?;
    cfg.validate()?;
    if cli.print_config {
        print!("{}", cfg.redacted().to_toml());
        return Ok(());
    }
    if let Some(source) = &cli.import_from {
        let mut options = std::collections::BTreeMap::new();
        for kv in &cli.import_option {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--import-option {kv:?}: want key=value"))?;
            options.insert(k.to_string(), v.to_string());
        }
        let report = athens_proxy::import::import(&cfg, source, &options, 8).await?;
        for f in &report.failed {
            println!("FAILED {f}");
        }
        for s in &report.skipped {
            println!("SKIPPED {s}: not a valid module path or version");
        }
        println!(
            "import: {} imported, {} failed, {} skipped",
            report.imported,
            report.failed.len(),
            report.skipped.len()
        );
        if !report.failed.is_empty() {
            std::process::exit(1);
        }
        return Ok(());
    }
    if cli.reindex {
        let store = athens_proxy::storage::Store::open(&cfg.storage.url, &cfg.storage.options)?;
        let written = store.reindex().await?;
        println!("reindex: wrote {written} missing /index rows");
        return Ok(());
    }
    let traces = athens_proxy::telemetry::start(&cfg.observability)?;
    init_logs(&cfg, traces.as_ref());
    let served = athens_proxy::server::serve(&cfg).await;
    if let Some(t) = traces {
        // The batch exporter blocks while it sends what is left.
        let _ = tokio::task::spawn_blocking(move || t.shutdown()).await;
    }
    served
}

/// Log lines to stderr (stdout carries only the GOPROXY= line), and spans to the trace
/// exporter when there is one. The log level filters log lines only: the proxy's own spans
/// always reach the exporter and frame log lines (a request's span exists only when traces are
/// exported or `info` lines are logged; see server/observe.rs).
fn init_logs(cfg: &athens_proxy::config::Config, traces: Option<&athens_proxy::telemetry::Traces>) {
    let level = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // A request's span is made only when something records it: traces, or `info` lines (a
    // directive on field values may enable anything, and the hint says so).
    let info_logged = level
        .max_level_hint()
        .is_none_or(|l| l >= LevelFilter::INFO);
    athens_proxy::server::record_requests(traces.is_some() || info_logged);
    let own_spans = filter_fn(|m| m.is_span() && m.target().starts_with("athens_proxy"));
    // Colour only for a terminal: log collectors get plain text, and every request span's
    // fields are formatted without escape codes (a measurable share of a warm request's CPU).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let fmt = match cfg.log.format {
        LogFormat::Json => fmt.json().with_filter(level.or(own_spans)).boxed(),
        LogFormat::Text => fmt.with_filter(level.or(own_spans)).boxed(),
    };
    // To the exporter: the proxy's spans, and its warnings and errors as span events.
    let exported = filter_fn(|m| {
        m.target().starts_with("athens_proxy")
            && if m.is_span() {
                *m.level() <= Level::INFO
            } else {
                *m.level() <= Level::WARN
            }
    });
    let otel = traces.map(|t| t.layer().with_filter(exported));
    tracing_subscriber::registry().with(fmt).with(otel).init();
}
