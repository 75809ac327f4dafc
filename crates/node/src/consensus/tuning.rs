//! Every timing and size the engine is given, in one place, each with why. Timeouts that scale
//! with the block pacing are functions of it. Changing any of these changes no rule of the chain
//! (blocks, state and certificates are the same), only how fast a network recovers and what it
//! holds in memory.

use commonware_consensus::types::ViewDelta;
use commonware_utils::{NZU64, NZUsize};
use std::num::{NonZeroU64, NonZeroUsize};
use std::time::Duration;

/// Buffered I/O of the engine's journals and archives: large enough that a block's worth of
/// writes is a handful of system calls.
pub const IO_BUFFER: NonZeroUsize = NZUsize!(64 * 1024);
/// Size of a page of the engine's page cache (the storage's natural page).
pub const PAGE_SIZE: u32 = 4_096;
/// Pages in the shared page cache: 8 MiB, enough for the recent blocks and certificates that
/// peers backfilling and the API ask for.
pub const PAGE_CACHE_PAGES: NonZeroUsize = NZUsize!(2_048);
/// Messages queued for an actor (marshal, simplex, broadcast, p2p) before senders wait: a burst
/// of a few hundred votes and blocks from many peers fits without blocking consensus.
pub const MAILBOX: NonZeroUsize = NZUsize!(1_024);

/// A block or certificate asked of a peer is asked again elsewhere after this long: a few block
/// times on a healthy network, so one slow peer does not stall a catching-up validator.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// Marshal's pause between fetch attempts: short, because backfilling blocks is on the path to
/// finalizing them.
pub const BACKFILL_RETRY: Duration = Duration::from_millis(100);
/// Simplex's pause between fetch attempts of missing notarizations: longer, since missing ones
/// usually arrive with the next view anyway.
pub const VOTE_FETCH_RETRY: Duration = Duration::from_millis(500);
/// Recent broadcast blocks kept per peer, for a leader's block arriving before its proposal.
pub const BROADCAST_DEQUE: usize = 10;
/// Views kept behind the last finalized one (votes, blocks of undecided views): more than the
/// few views a lagging peer is typically behind.
pub const VIEW_RETENTION: ViewDelta = ViewDelta::new(10);
/// Marshal's prunable caches (blocks and certificates of recent views) are grouped in sections of
/// this many items; a section is dropped whole once finalized past.
pub const PRUNABLE_ITEMS_PER_SECTION: NonZeroU64 = NZU64!(4_096);
/// How many missing blocks marshal repairs at once on start, before serving new ones.
pub const MAX_REPAIR: NonZeroUsize = NZUsize!(10);

/// How far in the future a peer's block time may be before a validator waits for its own clock
/// to catch up rather than refusing: NTP keeps honest clocks well within it.
pub const MAX_CLOCK_DRIFT: Duration = Duration::from_millis(500);

/// How long a validator waits for the leader's proposal: the pacing delay, plus time to build
/// and broadcast a full block. Shorter, and a leader's own proposal is nullified.
pub fn leader_timeout(block_time: Duration) -> Duration {
    block_time + Duration::from_secs(2)
}
/// How long a validator waits for a proposal to be certified (notarized by a quorum) after seeing
/// it: one second more than the leader timeout, for verification by re-execution.
pub fn certification_timeout(block_time: Duration) -> Duration {
    block_time + Duration::from_secs(3)
}
/// A validator that timed out repeats its nullify vote this often until the view moves on.
pub const TIMEOUT_RETRY: Duration = Duration::from_secs(2);
/// A leader that has not been active for this long is skipped: long enough that a restarted
/// validator is not skipped while it replays its journal.
pub fn skip_timeout(block_time: Duration) -> Duration {
    block_time + Duration::from_secs(10)
}

/// The p2p handshake: two peers' clocks may differ by this much.
pub const HANDSHAKE_SYNCHRONY: Duration = Duration::from_secs(5);
/// The p2p handshake: a handshake older than this is refused (replays).
pub const HANDSHAKE_MAX_AGE: Duration = Duration::from_secs(10);

/// Finalized-block and certificate archives ("freezer" tables). The table starts at this many
/// slots (about 50 KiB) and doubles as it fills (every `FREEZER_RESIZE_FREQUENCY` fills),
/// moving `FREEZER_RESIZE_CHUNK` slots a sync, so a growing chain never stops to rehash it
/// whole. Small at first because every sync of the table writes it: on a disk only the changed
/// pages, but on the deterministic runtime's in-memory storage a copy of the whole table (at
/// 65,536 slots, 3 MiB twice a block per validator: a quarter of a simulation's CPU).
pub const FREEZER_TABLE_INITIAL: u32 = 1_024;
pub const FREEZER_RESIZE_FREQUENCY: u8 = 4;
pub const FREEZER_RESIZE_CHUNK: u32 = 16_384;
/// Archived values are appended to files of about this size (1 GiB).
pub const FREEZER_VALUE_TARGET: u64 = 1024 * 1024 * 1024;
/// The archives' height index is kept in sections of this many heights.
pub const ARCHIVE_ITEMS_PER_SECTION: NonZeroU64 = NZU64!(262_144);
/// A pruning node's archives (`--prune-keep`) are pruned a section of this many blocks at a
/// time: each section is a file of its own, so a smaller one keeps the disk closer to the
/// newest blocks at the cost of more files.
pub const PRUNED_ARCHIVE_ITEMS_PER_SECTION: NonZeroU64 = NZU64!(128);

/// Messages a peer may send per second on each channel before it is rate-limited: far above what
/// an honest validator sends (a few votes and a block per view, relay batches), so only a
/// flooding peer meets it.
pub const P2P_MESSAGES_PER_SECOND: std::num::NonZeroU32 = commonware_utils::NZU32!(10_000);
