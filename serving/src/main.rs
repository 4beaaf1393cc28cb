use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = serving::cli::Cli::parse();
    serving::cli::init_tracing();
    serving::cli::run(cli).await
}
