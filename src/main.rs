//! Chooses the runtime: AWS Lambda by default, a local HTTP listener with `--features local`.

use std::process::ExitCode;
use std::sync::Arc;

use webhook_ingest::app::App;
use webhook_ingest::config::Config;
use webhook_ingest::telemetry;

fn main() -> ExitCode {
    // One worker more than there are cores: local reads take at most one fewer turn at once than there are
    // workers (so one is always free for everything else, see `store::pool::Turns`), and can still use
    // every core.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match tokio::runtime::Builder::new_multi_thread().worker_threads(cores + 1).enable_all().build() {
        Ok(runtime) => runtime.block_on(start()),
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn start() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            telemetry::init_logging(webhook_ingest::config::LogLevel::Error);
            tracing::error!(variable = e.var, error = %e, "invalid configuration");
            return ExitCode::from(2);
        }
    };
    #[cfg(feature = "local")]
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        return if webhook_ingest::local::healthcheck(config.listen_addr) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    telemetry::init_logging(config.log_level);
    let app = Arc::new(App::new(&config).await);
    tracing::info!(
        database = ?config.database,
        secret_configured = !app.verifier.is_empty(),
        max_body_bytes = config.max_body_bytes,
        "starting"
    );
    run(app, &config).await
}

#[cfg(feature = "local")]
async fn run(app: Arc<App>, config: &Config) -> ExitCode {
    match webhook_ingest::local::serve(app, config.listen_addr).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "listener failed");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "local"))]
async fn run(app: Arc<App>, _: &Config) -> ExitCode {
    match webhook_ingest::lambda::run(app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "lambda runtime failed");
            ExitCode::FAILURE
        }
    }
}
