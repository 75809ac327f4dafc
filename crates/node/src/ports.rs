//! Free loopback ports for nodes started by the benchmark and the tests.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

/// Linux hands out outgoing connections' local ports from 32768–60999 (its default
/// `ip_local_port_range`). A node that listens on a port from that range, found free a moment
/// before, can find it taken by some other connection (a peer dialling before every node is up,
/// an HTTP poll) and fail to listen; so these are below it.
const FIRST: u32 = 20_000;
const SPAN: u32 = 12_000;

/// The first of `n` consecutive loopback ports that are free now, below the ephemeral range;
/// `None` if there are none. Each call in a process moves on to fresh ports; different
/// processes start at different offsets.
pub fn free_loopback_ports(n: u16) -> Option<u16> {
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
            return Some(first);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_below_the_ephemeral_range_and_fresh_on_every_call() {
        let a = free_loopback_ports(4).unwrap();
        let b = free_loopback_ports(1).unwrap();
        assert!(u32::from(a) >= FIRST && u32::from(a) + 4 <= FIRST + SPAN);
        assert!(
            b < a || b >= a + 4,
            "a later call does not hand out the same ports"
        );
        for p in a..a + 4 {
            TcpListener::bind(("127.0.0.1", p)).expect("still free");
        }
    }
}
