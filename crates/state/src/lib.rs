//! Kassa's state machine: the rules of docs/protocol.md §1–§7 as a deterministic function of
//! (state, block context, transaction).
//!
//! Where to start reading: [`exec::apply_tx`] (the phases of checking and applying one
//! transaction), then the dispatcher and the handlers in [`exec`]'s component files (accounts,
//! society, standing, membership, requests, sharing, amendments). The arithmetic that makes
//! sharing and karma O(1) in the number of members lives in [`pool`] and [`fixed`]; where each
//! record is stored is in [`keys`]; what is stored is in [`records`]; what a reader sees (typed
//! queries) is in [`view`]; the invariants of §9 are checked by [`audit`].
//!
//! Architecture invariants:
//! - Pure and synchronous: no I/O, no clock (block time arrives in [`exec::BlockContext`]), no
//!   randomness, no floats, no `HashMap`. Every division rounds in the society's favour.
//! - Generic over [`store::Store`]: the node's database and the in-memory [`store::MemStore`] run
//!   the same code.
//! - Nothing loops over members or societies: every transaction's cost is bounded independently
//!   of how many there are (the payout queue advances at most [`exec::QUEUE_STEPS_MAX`] steps).
//! - There is no transaction that moves money out of a gift account other than a gift to an
//!   approved request, a pro-rata draw for an approved request, an exit refund, or a forfeited
//!   bond; no transaction mints KAS; none pays returns or referral rewards (see ARCHITECTURE.md).

pub mod audit;
pub mod exec;
pub mod fixed;
pub mod keys;
pub mod pool;
pub mod records;
pub mod store;
pub mod testkit;
pub mod view;

pub use exec::{
    BlockContext, BlockError, Genesis, Outcome, Receipt, apply_block, apply_tx, apply_tx_with,
    begin_block, check_stateless, decode_tx, end_block, init_genesis,
};
pub use store::{MemStore, Order, Overlay, ScanStore, Store, StoreMut};
