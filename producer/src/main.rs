use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = producer::cli::Cli::parse();
    runtime::init_tracing("info");
    producer::cli::run(cli, runtime::shutdown::on_signal()).await
}
