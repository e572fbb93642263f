//! The state built once per process (a Lambda cold start or the listener's start) and shared by all
//! requests.

use std::sync::Arc;

use lambda_http::http::header;
use lambda_http::Request;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::{ReadToken, Token};
use crate::config::Config;
use crate::cursor::Cursors;
use crate::signature::Verifier;
use crate::store::{LazyStore, Store, StoreError};
use crate::telemetry;

pub struct App {
    pub verifier: Verifier,
    pub max_body_bytes: usize,
    pub metrics: PrometheusHandle,
    pub metrics_emf: bool,
    pub read_token: Option<ReadToken>,
    pub max_connections: usize,
    /// Verifies `POST /webhook/whatsapp` deliveries (`WHATSAPP_APP_SECRET`).
    pub whatsapp: Verifier,
    /// What `GET /webhook/whatsapp`'s handshake must present (`WHATSAPP_VERIFY_TOKEN`).
    pub whatsapp_verify_token: Option<Token>,
    /// Seals and opens `/messages` cursors, under keys every instance sharing the secrets derives alike.
    pub cursors: Cursors,
    store: LazyStore,
}

impl App {
    /// Builds the state and tries to open the database; a database that cannot be opened yet is retried
    /// by later requests rather than stopping the process. Must run inside a Tokio runtime.
    pub async fn new(config: &Config) -> App {
        let app = App {
            verifier: Verifier::new(config.secrets.iter().map(String::as_str)),
            max_body_bytes: config.max_body_bytes,
            metrics: telemetry::install_metrics(),
            metrics_emf: config.metrics_emf,
            read_token: config.read_api_token.as_deref().map(ReadToken::new),
            max_connections: config.max_connections,
            whatsapp: Verifier::new(config.whatsapp_secrets.iter().map(String::as_str)),
            whatsapp_verify_token: config.whatsapp_verify_token.as_deref().map(Token::new),
            cursors: Cursors::new(config.secrets.iter().chain(&config.whatsapp_secrets).map(String::as_str)),
            store: LazyStore::new(config.database.clone()),
        };
        let _ = app.store.open_at_start().await;
        app
    }

    pub async fn store(&self) -> Result<Arc<Store>, StoreError> {
        self.store.get().await
    }

    /// Whether a request may use the read endpoints: always, unless `READ_API_TOKEN` is set.
    pub fn admits_reader(&self, req: &Request) -> bool {
        self.read_token.as_ref().is_none_or(|token| token.admits(req.headers().get(header::AUTHORIZATION)))
    }
}
