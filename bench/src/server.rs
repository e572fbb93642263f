//! The server under test: the release binary, pinned to its own core, on a fresh port.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::SECRET;

/// The server process; stopped and reaped when dropped, also when the bench panics.
pub struct Server {
    process: Child,
    pub addr: String,
    /// From spawning the process to its first 200 from `/health/ready`.
    pub ready_after: Duration,
}

impl Server {
    /// Starts `binary` on `cpu` with its database at `database_url`, and waits until it is ready: it listens
    /// (on a port the operating system picks) and the database is migrated.
    pub fn start(binary: &Path, cpu: &str, database_url: &str) -> Server {
        let started = Instant::now();
        let process = Command::new("taskset")
            .args(["-c", cpu])
            .arg(binary)
            .env("WEBHOOK_SECRET", SECRET)
            .env("DATABASE_URL", database_url)
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the server (build it: cargo build --release --features local)");
        let mut server = Server { process, addr: String::new(), ready_after: Duration::ZERO };
        // taskset runs the binary in its own place, so the process is the server's.
        server.addr = format!("127.0.0.1:{}", wait_for_port(server.process.id(), started));
        while !server.is_ready() {
            assert!(started.elapsed() < Duration::from_secs(30), "the server did not become ready");
            std::thread::sleep(Duration::from_micros(200));
        }
        server.ready_after = started.elapsed();
        server
    }

    fn is_ready(&self) -> bool {
        let answer = std::net::TcpStream::connect(&self.addr).ok().and_then(|mut s| {
            s.write_all(b"GET /health/ready HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n").ok()?;
            let mut head = [0u8; 12];
            s.read_exact(&mut head).ok()?;
            Some(head)
        });
        answer.is_some_and(|head| head.starts_with(b"HTTP/1.1 200"))
    }

    /// The CPU time it has used so far.
    pub fn cpu(&self) -> Duration {
        cpu_time(self.process.id())
    }

    /// Waits until it has used no CPU for half a second (at most a minute), so that what it does after
    /// answering (the text index's chunks behind a preload) is done before anything is timed; returns how
    /// long that took.
    pub fn settle(&self) -> Duration {
        let started = Instant::now();
        let mut used = self.cpu();
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let now = self.cpu();
            if now == used || started.elapsed() > Duration::from_secs(60) {
                return started.elapsed();
            }
            used = now;
        }
    }

    /// Its peak resident memory, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.memory_kib("VmHWM:")
    }

    /// Its resident memory now that is its own (heap, stacks), in KiB: the rest is pages of files it maps,
    /// the database among them, which the kernel shares with its page cache and may drop.
    pub fn anonymous_rss_kib(&self) -> u64 {
        self.memory_kib("RssAnon:")
    }

    fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The CPU time (user and system) process `pid` has used so far.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command, which may hold spaces and ends with ')', utime and stime are the 12th and 13th fields.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let field = |n: usize| fields.get(n).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    let ticks = field(11) + field(12);
    // The kernel counts in USER_HZ, 100 a second on Linux.
    Duration::from_millis(ticks * 10)
}

/// The port process `pid` listens on, once it does (at most 30 s after `started`).
pub fn wait_for_port(pid: u32, started: Instant) -> u16 {
    loop {
        if let Some(port) = crate::listening::listening_port(pid) {
            return port;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "process {pid} never listened");
        std::thread::sleep(Duration::from_millis(5));
    }
}
