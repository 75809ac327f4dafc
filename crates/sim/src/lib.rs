//! The society simulator: a society's rules run through Kassa's real state machine on a
//! synthetic membership, period after period, to see before real money is at stake whether the
//! fund pays the help it approves, what that costs each member, whether it runs dry, and whether
//! members who play the attacks of docs/protocol.md §10 take more than honest members.
//!
//! Where to start reading: [`scenario`] (what a run is made of), then [`run::simulate`] (the
//! periods; what members do in them is in `run/members.rs`), then [`report`].
//! docs/simulator.md explains the model.

pub mod chart;
pub mod report;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod store;

pub use report::{Report, Row, Summary};
pub use run::{SimError, simulate};
pub use scenario::{Scenario, ScenarioError, Strategy};

/// The most member-periods a command-line run accepts (a million members for a century).
pub const CLI_MEMBER_PERIODS_MAX: u64 = 1_200_000_000;
/// The most member-periods a node simulates for the web preview (1,000 members × 60 periods).
pub const PREVIEW_MEMBER_PERIODS_MAX: u64 = 60_000;
