//! Helpers shared by the process-level tests.

/// The first of `n` consecutive loopback ports that are free now, below the ephemeral range
/// (see `kassa_node::ports`).
pub fn free_ports(n: u16) -> u16 {
    kassa_node::ports::free_loopback_ports(n)
        .unwrap_or_else(|| panic!("no {n} consecutive free loopback ports below 32768"))
}

/// The last `lines` lines of a process's log, for a failure message.
pub fn log_tail(path: &std::path::Path, lines: usize) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = log.lines().collect();
    format!(
        "--- {} (last {lines} lines) ---\n{}",
        path.display(),
        all[all.len().saturating_sub(lines)..].join("\n")
    )
}
