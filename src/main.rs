//! `rps-cds`: a thin entry point; everything lives in the library.

use std::process::ExitCode;

use clap::Parser;
use rps_cds::cli::{Cli, run};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    run(cli).await
}
