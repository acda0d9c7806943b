use clap::{Parser, Subcommand};

/// Kubernetes operator that runs athens-proxy Go module proxies.
#[derive(Parser)]
#[command(name = "athens-operator", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the AthensProxy CustomResourceDefinition as YAML.
    Crd,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crd => print!("{}", athens_operator::crd::crd_yaml()),
    }
    Ok(())
}
