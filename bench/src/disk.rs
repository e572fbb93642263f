//! Bytes on disk per message: the service's database, and the assignment's plain table holding the same
//! rows, each rewritten compactly (`VACUUM`) so that neither counts free pages.

use std::path::Path;
use std::time::{Duration, Instant};

use libsql::{Builder, Connection};

/// The assignment's table, bare.
const PLAIN_TABLE: &str = "CREATE TABLE messages (message_id TEXT PRIMARY KEY, from_msisdn TEXT NOT NULL, \
     to_msisdn TEXT NOT NULL, ts TEXT NOT NULL, text TEXT, created_at TEXT NOT NULL)";

/// Bytes per message of the database at `db` (once its text index caught up) and of the plain table.
pub struct Footprint {
    pub messages: u64,
    pub ours: f64,
    pub plain: f64,
}

/// Measures the database at `db`, which a running server may be writing, in `scratch`.
pub async fn measure(db: &Path, scratch: &Path) -> Footprint {
    let conn = Builder::new_local(db).build().await.unwrap().connect().unwrap();
    wait_for_the_text_index(&conn).await;
    let messages = number(&conn, "SELECT count(*) FROM messages").await as u64;
    let packed = scratch.join("packed.db");
    let plain = scratch.join("plain.db");
    for file in [&packed, &plain] {
        let _ = std::fs::remove_file(file);
    }
    conn.execute(&format!("VACUUM INTO '{}'", packed.display()), ()).await.unwrap();

    let plain_conn = Builder::new_local(&plain).build().await.unwrap().connect().unwrap();
    plain_conn.execute(PLAIN_TABLE, ()).await.unwrap();
    plain_conn.execute(&format!("ATTACH '{}' AS source", packed.display()), ()).await.unwrap();
    plain_conn
        .execute(
            "INSERT INTO messages SELECT message_id, from_msisdn, to_msisdn, ts, text, created_at \
             FROM source.messages ORDER BY rowid",
            (),
        )
        .await
        .unwrap();
    plain_conn.execute("DETACH source", ()).await.unwrap();
    plain_conn.execute("VACUUM", ()).await.unwrap();

    let per_message = |path: &Path| std::fs::metadata(path).unwrap().len() as f64 / messages.max(1) as f64;
    let footprint = Footprint { messages, ours: per_message(&packed), plain: per_message(&plain) };
    for file in [&packed, &plain] {
        let _ = std::fs::remove_file(file);
    }
    footprint
}

/// Every row is in the text index (a server indexes after acknowledging), so the index is measured whole.
async fn wait_for_the_text_index(conn: &Connection) {
    let started = Instant::now();
    let behind = "SELECT (SELECT coalesce(max(rowid), 0) FROM messages) - \
         (SELECT indexed_through FROM text_index_state)";
    while number(conn, behind).await > 0 {
        assert!(started.elapsed() < Duration::from_secs(120), "the text index did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn number(conn: &Connection, sql: &str) -> i64 {
    let mut rows = conn.query(sql, ()).await.unwrap();
    rows.next().await.unwrap().unwrap().get::<i64>(0).unwrap()
}
