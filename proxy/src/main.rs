use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = athens_proxy::config::Cli::parse();
    let mut cfg = cli.resolve()?;
    athens_proxy::config::resolve_from_go_env(&mut cfg.upstream)?;
    cfg.validate()?;
    if cli.print_config {
        print!("{}", cfg.to_toml());
        return Ok(());
    }
    anyhow::bail!("serving is not implemented yet")
}
