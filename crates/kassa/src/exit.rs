//! What `kassa` exits with, for scripts (docs/operations.md, "Exit codes"): 0 when it did what
//! was asked; 1 when it could not (bad input, an unreachable node, a refused transaction); 2 for a
//! command line it does not understand; 3 when a transaction was included but failed (its fee
//! was burned and its nonce used, nothing else applied); 4 when an audit finds a divergence or a
//! broken invariant; 70 when a node stops because a finalized block did not execute to the state
//! root its header carries.

use std::fmt;
use std::process::ExitCode;

/// A failure with an exit code of its own.
#[derive(Debug)]
pub enum Failure {
    /// A transaction was included in a block and failed.
    TxFailed(String),
    /// The chain or the stored state is not what replaying it from genesis gives.
    Divergence(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::TxFailed(m) | Failure::Divergence(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Failure {}

/// A node's exit when a finalized block does not execute to its header's state root.
pub const WRONG_STATE: i32 = 70;

/// The exit code of an error.
pub fn code(e: &anyhow::Error) -> ExitCode {
    match e.downcast_ref::<Failure>() {
        Some(Failure::TxFailed(_)) => ExitCode::from(3),
        Some(Failure::Divergence(_)) => ExitCode::from(4),
        None => ExitCode::FAILURE,
    }
}
