//! `rps-cds`: a thin entry point; everything lives in the library.

use std::process::ExitCode;

use clap::Parser;
use rps_cds::cli::{Cli, run};

/// mimalloc rather than glibc malloc: request handling allocates heavily on every worker
/// thread, and glibc's arenas cost ≈ 17 % of the CPU under load (see docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    run(cli).await
}
