use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = producer::cli::Cli::parse();
    producer::cli::init_tracing();
    producer::cli::run(cli, producer::shutdown::on_signal()).await
}
