//! Durability beyond a killed process. A SIGKILL (tests/crash.rs) keeps the operating system's page cache,
//! so those tests would pass with `synchronous=OFF`. Here the service runs with a file layer of the tests'
//! (`tests/power-cut/power_cut.c`, loaded with LD_PRELOAD) that records every write to its database files
//! until an `fsync` or `fdatasync` makes it durable, and on a simulated power cut undoes every write that was
//! not: what the disk would hold. Every delivery answered 200 before the cut must be there after it; and,
//! as the control that shows the cut can lose anything, with syncs that make nothing durable acknowledged
//! messages are lost.

mod common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{message, Setup, TempDb, TestApp};

/// The power-cut layer, compiled once per test binary with the C compiler the build already needs.
fn power_cut_library() -> PathBuf {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap();
    if let Some(path) = built.as_ref() {
        return path.clone();
    }
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/power-cut/power_cut.c");
    let out = std::env::temp_dir().join(format!("power_cut-{}.so", std::process::id()));
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".to_owned()))
        .args(["-O2", "-shared", "-fPIC", "-Wall", "-Werror", "-o"])
        .arg(&out)
        .arg(&source)
        .args(["-ldl", "-lpthread"])
        .status()
        .expect("a C compiler (cc) to build the power-cut layer");
    assert!(status.success(), "the power-cut layer did not compile");
    *built = Some(out.clone());
    out
}

/// Delivers from 16 clients for a moment under the power-cut layer, cuts the power, and returns the ids
/// answered 200 before the cut and those stored after it (the service restarted on what the disk holds).
async fn deliveries_around_a_power_cut(syncs_count: bool) -> (HashSet<String>, Vec<String>) {
    let db = TempDb::new();
    let mut setup = Setup::new()
        .db(&db.path)
        .env("LD_PRELOAD", power_cut_library().to_str().unwrap())
        .env("POWER_CUT_DIR", db.dir().to_str().unwrap());
    if !syncs_count {
        setup = setup.env("POWER_CUT_IGNORE_SYNC", "1");
    }
    let app = TestApp::start(setup).await;
    let until = Instant::now() + Duration::from_millis(1500);
    let clients = (0..16).map(|client| {
        let app = &app;
        async move {
            let mut acknowledged = Vec::new();
            for n in 0.. {
                if Instant::now() >= until {
                    break;
                }
                let id = format!("c{client}-{n}");
                let body = message(&id, "+15550001", "2025-01-15T10:00:00Z", Some("before the cut"));
                if app.deliver(&body).await.0 == 200 {
                    acknowledged.push(id);
                }
            }
            acknowledged
        }
    });
    let acknowledged: HashSet<String> = futures::future::join_all(clients).await.into_iter().flatten().collect();
    app.signal("USR1");
    let status = app.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(137), "the power cut did not end the process: {:?}", app.stderr());
    drop(app);
    let after = TestApp::start(Setup::new().db(&db.path)).await;
    (acknowledged, after.stored_ids().await)
}

#[tokio::test]
async fn every_acknowledged_message_survives_a_power_cut() {
    let (acknowledged, stored) = deliveries_around_a_power_cut(true).await;
    assert!(acknowledged.len() > 100, "only {} deliveries were acknowledged", acknowledged.len());
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "a message was stored twice");
    let lost: Vec<&String> = acknowledged.iter().filter(|id| !unique.contains(id)).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged messages lost: {lost:?}", lost.len(), acknowledged.len());
}

#[tokio::test]
async fn a_power_cut_loses_what_no_sync_made_durable() {
    let (acknowledged, stored) = deliveries_around_a_power_cut(false).await;
    assert!(!acknowledged.is_empty());
    let stored: HashSet<String> = stored.into_iter().collect();
    assert!(
        acknowledged.iter().any(|id| !stored.contains(id)),
        "with no write made durable, all {} acknowledged messages survived: the cut undoes nothing",
        acknowledged.len()
    );
}
