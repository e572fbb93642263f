//! The port a process listens on, read from /proc: a process started on port 0 gets one from the operating
//! system, and this finds it without the race of choosing a free port first (another process may take it
//! between the choice and the bind). Shared by the tests and the bench, which includes this file.

/// The TCP port process `pid` listens on (its first, if it has several), if it listens yet.
pub fn listening_port(pid: u32) -> Option<u16> {
    // The process's sockets, by inode...
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|link| link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_owned))
        .collect();
    // ...among the listening sockets of its network namespace (state 0A), with their local port in hex.
    ["tcp", "tcp6"].iter().find_map(|table| {
        let sockets = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).ok()?;
        sockets.lines().skip(1).find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
            if *state != "0A" || !inodes.iter().any(|i| i == inode) {
                return None;
            }
            u16::from_str_radix(local.rsplit_once(':')?.1, 16).ok()
        })
    })
}
