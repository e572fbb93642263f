//! Database faults while the service runs: a write lock held by another process, the file moved away and
//! back, the file replaced, the disk full. Each time `/webhook` answers 5xx JSON (never a false 200),
//! `/health/ready` turns 503, and both recover on their own once the fault is cleared.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{assert_not_ready, body, integrity_check, message, Setup, StoredRow, Target, TempDb, TestApp};
use serde_json::{json, Value};

const INTERNAL_ERROR: &str = r#"{"detail":"internal error"}"#;

async fn connect(path: &Path) -> libsql::Connection {
    common::connect(&Target::File(path.to_owned())).await
}

fn ids(rows: &[StoredRow]) -> Vec<&str> {
    rows.iter().map(|row| row.message_id.as_str()).collect()
}

/// Waits for `/health/ready` to answer 200 again.
async fn wait_ready(app: &TestApp) {
    app.wait_ready(Duration::from_secs(15)).await;
}

/// Delivers `id` until it is acknowledged (the first attempts may still meet the fault's aftermath).
async fn deliver_until_ok(app: &TestApp, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, answer) = app.deliver(&body(id)).await;
        if status == 200 {
            return;
        }
        assert_eq!(answer.to_string(), INTERNAL_ERROR);
        assert!(Instant::now() < deadline, "{id} was never accepted: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_write_lock_held_by_another_process_fails_writes_until_released() {
    let app = TestApp::start(Setup::new().local_file()).await;
    assert_eq!(app.deliver(&body("before")).await.0, 200);

    let holder = connect(app.db_path()).await;
    // The service's writer may be busy indexing; wait for it like any polite second process would.
    holder.busy_timeout(Duration::from_secs(5)).unwrap();
    holder.execute("BEGIN IMMEDIATE", ()).await.unwrap();
    let (status, answer) = app.deliver(&body("blocked")).await;
    assert_eq!((status, answer.to_string().as_str()), (500, INTERNAL_ERROR));
    assert_not_ready(&app, &["database did not answer in time"]).await;
    let failed = app.wait_for_log(|l| l["status"] == 500 && l["path"] == "/webhook").await;
    assert!(failed["error"].as_str().unwrap().contains("locked"), "{failed}");

    holder.execute("ROLLBACK", ()).await.unwrap();
    drop(holder);
    wait_ready(&app).await;
    deliver_until_ok(&app, "blocked").await;
    assert_eq!(ids(&app.stored_rows().await), ["before", "blocked"]);
}

#[tokio::test]
async fn a_database_moved_away_is_not_written_until_it_is_back() {
    let db = TempDb::at("data/app.db");
    let data = db.dir().join("data");
    let app = TestApp::start(Setup::new().db(&db.path)).await;
    assert_eq!(app.deliver(&body("before")).await.0, 200);

    // As if the volume were unmounted: the open file lives on, but not where the service stores messages.
    let away = db.dir().join("away");
    std::fs::rename(&data, &away).unwrap();
    assert_eq!(app.deliver(&body("while-away")).await, (503, json!({"detail": "internal error"})));
    assert_not_ready(&app, &["database file missing or replaced"]).await;
    assert!(!data.exists(), "the service recreated the database in place of the missing one");

    std::fs::rename(&away, &data).unwrap();
    wait_ready(&app).await;
    deliver_until_ok(&app, "after").await;
    assert_eq!(ids(&app.stored_rows().await), ["after", "before"]);
    assert_eq!(integrity_check(app.db_path()).await, "ok");
}

#[tokio::test]
async fn a_replaced_database_file_is_reopened() {
    let app = TestApp::start(Setup::new().local_file()).await;
    assert_eq!(app.deliver(&body("in-backup")).await.0, 200);
    let backup = app.db_path().with_file_name("backup.db");
    connect(app.db_path()).await.execute(&format!("VACUUM INTO '{}'", backup.display()), ()).await.unwrap();
    assert_eq!(app.deliver(&body("after-backup")).await.0, 200);

    // An operator restores the backup over the live file.
    std::fs::rename(&backup, app.db_path()).unwrap();
    deliver_until_ok(&app, "after-restore").await;
    wait_ready(&app).await;
    assert_eq!(ids(&app.stored_rows().await), ["after-restore", "in-backup"]);
    let (_, listing) = app.get("/messages").await;
    assert_eq!(listing["total"], 2, "reads come from the restored file too: {listing}");
    assert_eq!(integrity_check(app.db_path()).await, "ok");
    app.wait_for_log(|l| l["msg"] == "database file replaced" && l["level"] == "ERROR").await;
}

/// A tmpfs of a few MiB, unmounted on drop. Needs the privilege to mount (root here and in CI).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount() -> Result<SmallDisk, String> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(SmallDisk { dir })
    }

    /// Writes a filler file until the disk refuses more.
    fn fill(&self) {
        use std::io::Write;
        let mut filler = std::fs::File::create(self.dir.path().join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while filler.write_all(&block).and_then(|_| filler.sync_all()).is_ok() {}
    }

    fn free(&self) {
        std::fs::remove_file(self.dir.path().join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

#[tokio::test]
#[ignore = "mounts a tmpfs, which needs root: make test runs it when it runs as root"]
async fn a_full_disk_fails_writes_without_a_false_200_and_recovers() {
    let disk = SmallDisk::mount().unwrap_or_else(|why| panic!("cannot mount a tmpfs ({why}): run this test as root"));
    let app = TestApp::start(Setup::new().db(&disk.dir.path().join("app.db"))).await;
    assert_eq!(app.deliver(&body("before")).await.0, 200);

    disk.fill();
    let mut acknowledged = vec!["before".to_owned()];
    let mut refused = Vec::new();
    for i in 0..200 {
        let id = format!("full-{i:03}");
        let big = message(&id, "+1", "2025-01-15T10:00:00Z", Some(&"x".repeat(4000)));
        match app.deliver(&big).await {
            (200, _) => acknowledged.push(id),
            (status, answer) => {
                assert_eq!((status, answer.to_string().as_str()), (500, INTERNAL_ERROR));
                refused.push(id);
                if refused.len() == 3 {
                    break;
                }
            }
        }
    }
    assert_eq!(refused.len(), 3, "a full disk never refused a write");
    assert_not_ready(&app, &["database write failed"]).await;
    let failed: Value = app.wait_for_log(|l| l["status"] == 500).await;
    assert!(failed["error"].as_str().unwrap().contains("full"), "{failed}");

    disk.free();
    wait_ready(&app).await;
    for id in &refused {
        deliver_until_ok(&app, id).await;
    }
    let stored = app.stored_rows().await;
    let mut expected: Vec<&str> = acknowledged.iter().chain(&refused).map(String::as_str).collect();
    expected.sort();
    assert_eq!(ids(&stored), expected);
    drop(app);
    assert_eq!(integrity_check(&disk.dir.path().join("app.db")).await, "ok");
}
