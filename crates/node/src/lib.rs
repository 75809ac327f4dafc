//! The Kassa node: what turns the state machine into a running chain.
//!
//! Start at [`app::App`]: the three calls consensus makes (propose, verify, finalize) and the
//! mempool they draw from. The consensus adapter (Commonware `simplex` + `marshal`) and the
//! runtime wiring sit on top of it.

pub mod app;
pub mod consensus;
pub mod crash;
pub mod follow;
pub mod handle;
pub mod host;
pub mod mempool;
pub mod ports;
pub mod state_sync;
pub mod telemetry;
pub mod validator;

pub use app::{App, AppError, Base, BlockLimits, Commit, Executing, Finalized, Leftovers, Verify};
pub use handle::{Certificates, FINALITY_SEARCH, Faucet, Finality, Node, Observer};
pub use kassa_db::Durability;
pub use mempool::{AdmitError, Mempool, MempoolConfig};
pub use telemetry::Telemetry;
