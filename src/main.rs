//! Thin entry point: parse the command line, set up logging, run, map
//! errors to an exit code.

use clap::Parser;

/// mimalloc: faster than musl's and glibc's malloc for this allocation
/// pattern (see Cargo.toml). Safe code: the crate implements `GlobalAlloc`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = postbackd::cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("POSTBACKD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // POSTBACKD_LOG_FORMAT=json: one JSON object per line, for log shippers.
    if std::env::var("POSTBACKD_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().init();
    } else {
        logs.init();
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(postbackd::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
