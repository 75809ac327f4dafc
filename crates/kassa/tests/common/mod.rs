//! Helpers shared by the process-level tests.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

/// Linux hands out outgoing connections' local ports from 32768–60999 (its default
/// `ip_local_port_range`). A node that restarts on a port from that range can find it taken by
/// some other connection (a peer redialling it, a test's HTTP poll) and fail to listen; so test
/// nodes listen below it.
const FIRST: u32 = 20_000;
const SPAN: u32 = 12_000;

/// The first of `n` consecutive loopback ports that are free now, below the ephemeral range.
/// Each call in a process moves on to fresh ports; different processes start at different
/// offsets.
pub fn free_ports(n: u16) -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7_919) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    let n32 = u32::from(n);
    for _ in 0..SPAN {
        let offset = NEXT.fetch_add(n32, Ordering::SeqCst) % (SPAN - n32);
        let first = u16::try_from(FIRST + offset).expect("ports are below 32768");
        if (0..n).all(|i| TcpListener::bind(("127.0.0.1", first + i)).is_ok()) {
            return first;
        }
    }
    panic!(
        "no {n} consecutive free loopback ports in {FIRST}..{}",
        FIRST + SPAN
    );
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
