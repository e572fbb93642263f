//! A [`Store`] opened on first need, reopened when its file was replaced, and after a failure retried at
//! most once per [`RETRY_AFTER`].
//!
//! A database that cannot be opened at start (a missing volume, a server not up yet) therefore does not
//! stop the process: requests answer 503 and `/health/ready` says why until it can be opened. Only the
//! first open creates the file; once one was opened, a file that vanished is waited for, not recreated
//! empty in its place.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::{Store, StoreError, DEADLINE, STARTUP_DEADLINE};
use crate::config::Database;

/// How long a failed open is remembered before the next request tries again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

pub struct LazyStore {
    database: Database,
    current: RwLock<Option<Arc<Store>>>,
    /// Held while opening.
    opening: tokio::sync::Mutex<Opening>,
}

#[derive(Default)]
struct Opening {
    last_failure: Option<(Instant, String)>,
    opened_before: bool,
}

impl LazyStore {
    pub fn new(database: Database) -> LazyStore {
        LazyStore { database, current: RwLock::new(None), opening: tokio::sync::Mutex::new(Opening::default()) }
    }

    /// The store, opening it if needed within [`DEADLINE`].
    pub async fn get(&self) -> Result<Arc<Store>, StoreError> {
        self.get_within(DEADLINE).await
    }

    /// Opens the store before the process serves, allowing it [`STARTUP_DEADLINE`].
    pub async fn open_at_start(&self) -> Result<Arc<Store>, StoreError> {
        self.get_within(STARTUP_DEADLINE).await
    }

    async fn get_within(&self, deadline: Duration) -> Result<Arc<Store>, StoreError> {
        if let Some(store) = self.serving() {
            return Ok(store);
        }
        let mut opening = self.opening.lock().await;
        // Another request may have opened it while this one waited.
        if let Some(store) = self.serving() {
            return Ok(store);
        }
        if let Some((at, reason)) = &opening.last_failure {
            if at.elapsed() < RETRY_AFTER {
                return Err(StoreError::Open(reason.clone()));
            }
        }
        let result = self.reopen(!opening.opened_before, deadline).await;
        match &result {
            Ok(_) => *opening = Opening { last_failure: None, opened_before: true },
            Err(e) => {
                tracing::error!(error = %e, "database unavailable");
                opening.last_failure = Some((Instant::now(), e.to_string()));
            }
        }
        result
    }

    fn serving(&self) -> Option<Arc<Store>> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).as_ref().filter(|s| s.is_serving()).cloned()
    }

    async fn reopen(&self, create: bool, deadline: Duration) -> Result<Arc<Store>, StoreError> {
        // Boxed: opening is rare, and its future (every back end's open inline) is large enough to strain the
        // stack of a runtime worker in an unoptimised build.
        let store = Arc::new(Box::pin(Store::open_with(&self.database, create, deadline)).await?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&store));
        Ok(store)
    }
}
