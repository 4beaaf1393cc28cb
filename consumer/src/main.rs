use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = consumer::cli::Cli::parse();
    runtime::init_tracing("info");
    consumer::cli::run(cli.settings, runtime::shutdown::on_signal()).await
}
