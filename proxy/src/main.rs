use athens_proxy::config::{Cli, LogFormat, resolve_from_go_env};
use clap::Parser;
use tracing_subscriber::EnvFilter;

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
        let mut store = athens_proxy::storage::Store::new(athens_proxy::storage::open(
            &cfg.storage.url,
            &cfg.storage.options,
        )?);
        if let Some(root) = cfg.storage.url.strip_prefix("file://") {
            store = store.with_local_root(root.into());
        }
        let written = store.reindex().await?;
        println!("reindex: wrote {written} missing /index rows");
        return Ok(());
    }
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr: stdout carries only the GOPROXY= line.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cfg.log.format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.init(),
    }
    athens_proxy::server::serve(&cfg).await
}
