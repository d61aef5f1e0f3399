//! Interim logging set-up until the telemetry module lands.

/// Human-readable logs on stderr, level from RUST_LOG (default info).
pub fn init_from_env() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
