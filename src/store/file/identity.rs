//! Recovery from a file moved or replaced under a running store.
//!
//! SQLite keeps writing through its open handle to a file that was deleted or moved away, and every
//! acknowledged message written after that would be lost with it. So the writer asks, before each batch,
//! where the path leads now ([`FileIdentity::check`]):
//! - to the file it opened: write;
//! - to nothing (deleted, or moved with its directory): refuse the batch and wait for the file to come
//!   back, never creating an empty one in its place;
//! - to another file (a backup restored over it): refuse the batch, remove the old file's WAL, and stop, so
//!   the store is reopened on the new file ([`crate::store::LazyStore`]).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::store::types::StoreError;

/// The database file as opened: its path, and the device and inode of it and of its WAL.
pub struct FileIdentity {
    path: PathBuf,
    file: (u64, u64),
    wal: Option<(u64, u64)>,
}

/// Why a batch may not be written to the file the store opened.
pub struct Displaced {
    pub reason: String,
    /// The path leads to another file now: the writer stops, and the store reopens on that file.
    pub replaced: bool,
}

impl FileIdentity {
    /// Taken once the connections are open, so the WAL exists and stays while they do.
    pub fn of(path: &Path) -> Result<FileIdentity, StoreError> {
        let file = inode(path).map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
        Ok(FileIdentity { path: path.to_owned(), file, wal: inode(&sidecar(path, "-wal")).ok() })
    }

    /// Whether the path still leads to the file opened. One `stat` per batch, far below the cost of its
    /// commit. A replaced file's journal is discarded here, before the writer stops.
    pub fn check(&self) -> Result<(), Displaced> {
        match inode(&self.path) {
            Ok(found) if found == self.file => Ok(()),
            Ok(_) => {
                let reason = format!("database file {} was replaced; reopening", self.path.display());
                tracing::error!(reason, "database file replaced");
                self.discard_journal();
                Err(Displaced { reason, replaced: true })
            }
            Err(_) => {
                Err(Displaced { reason: format!("database file {} is missing", self.path.display()), replaced: false })
            }
        }
    }

    /// Removes the old file's WAL and shared-memory index if they are still beside the new file. SQLite does
    /// not checkpoint a WAL whose database was moved, and would otherwise replay it into the replacement.
    fn discard_journal(&self) {
        let wal = sidecar(&self.path, "-wal");
        if self.wal.is_some() && inode(&wal).ok() == self.wal {
            let _ = std::fs::remove_file(&wal);
            let _ = std::fs::remove_file(sidecar(&self.path, "-shm"));
        }
    }
}

fn inode(path: &Path) -> std::io::Result<(u64, u64)> {
    std::fs::metadata(path).map(|meta| (meta.dev(), meta.ino()))
}

/// `app.db` → `app.db-wal`, `app.db-shm`.
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
