//! Crash points for the crash-consistency tests: with `KASSA_CRASH_AT=POINT:N` in its
//! environment, the process aborts (as a power cut or `kill -9` would stop it, with no clean-up)
//! the `N`-th time it passes `POINT`. Without the variable a point costs one relaxed load.
//!
//! The points, in the order a finalized block passes them:
//! - `finalized`: consensus has finalized the block (it is in consensus storage); nothing of it is
//!   in the state database yet;
//! - `applied`: the block is applied and committed to the state database (durably, or deferred
//!   to the group's last block);
//! - `acknowledged`: the group is durable and about to be acknowledged to consensus, which
//!   otherwise delivers it again after a restart.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The crash point names, as `KASSA_CRASH_AT` spells them.
pub const POINTS: [&str; 3] = ["finalized", "applied", "acknowledged"];

fn plan() -> Option<&'static (String, u64)> {
    static PLAN: OnceLock<Option<(String, u64)>> = OnceLock::new();
    PLAN.get_or_init(|| {
        let v = std::env::var("KASSA_CRASH_AT").ok()?;
        let (point, n) = v.split_once(':')?;
        Some((point.to_owned(), n.parse().ok()?))
    })
    .as_ref()
}

/// Passes crash point `name`: aborts the process if this is the pass `KASSA_CRASH_AT` names.
pub fn point(name: &'static str) {
    static PASSES: AtomicU64 = AtomicU64::new(0);
    if let Some((point, n)) = plan()
        && point == name
        && PASSES.fetch_add(1, Ordering::Relaxed) + 1 == *n
    {
        eprintln!("KASSA_CRASH_AT: aborting at {name}, pass {n}");
        std::process::abort();
    }
}
