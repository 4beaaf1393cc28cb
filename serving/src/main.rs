use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = serving::cli::Cli::parse();
    runtime::init_tracing("info,sqlx=warn");
    serving::cli::run(cli).await
}
