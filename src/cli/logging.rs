//! tracing setup: readable text by default, JSON on request; `RUST_LOG` filters.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sled=warn"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a terminal: a log file or journal gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        // If whoever reads our log goes away, keep serving: tracing-subscriber would otherwise
        // report the failed write with eprintln!, which panics on a closed stderr.
        .log_internal_errors(false);
    // A second init (tests) is harmless.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}
