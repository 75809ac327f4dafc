//! A follower and the sources it syncs from: what it makes of a source that has nothing to show.
//! (Following a live chain, switching sources and state sync run in the simulations and in
//! `crates/kassa/tests/hosts.rs`.)

use commonware_runtime::Runner as _;
use commonware_runtime::deterministic;
use futures::future::BoxFuture;
use kassa_node::follow::{FollowError, Follower, Source, SourceError, Trust};
use kassa_node::{FINALITY_SEARCH, Finality};
use kassa_testkit::DevGenesis;
use kassa_types::SignedTransaction;
use std::sync::Arc;

/// A source at `height` that holds no finalization certificate at all (a pruning node asked
/// below what it keeps, or a follower that keeps only its newest certificates).
struct Certless {
    height: u64,
}

impl Source for Certless {
    fn name(&self) -> &str {
        "certless"
    }

    fn height(&self) -> BoxFuture<'_, Result<u64, SourceError>> {
        Box::pin(async move { Ok(self.height) })
    }

    fn finality(&self, _from: u64) -> BoxFuture<'_, Result<Option<Finality>, SourceError>> {
        Box::pin(async move { Ok(None) })
    }

    fn block(&self, height: u64) -> BoxFuture<'_, Result<Vec<u8>, SourceError>> {
        Box::pin(async move {
            Err(SourceError::Unreachable(format!(
                "asked for block {height} without a certificate"
            )))
        })
    }

    fn chunk(
        &self,
        _height: u64,
        _after: Option<[u8; 32]>,
    ) -> BoxFuture<'_, Result<Vec<u8>, SourceError>> {
        Box::pin(async move { Err(SourceError::Unreachable("no chunks here".into())) })
    }

    fn forward(&self, _txs: Vec<SignedTransaction>) -> BoxFuture<'_, Result<(), SourceError>> {
        Box::pin(async move { Ok(()) })
    }
}

/// One step of a follower at genesis from a [`Certless`] source at `height`.
fn step_from(height: u64) -> Result<usize, FollowError> {
    let dir = tempfile::tempdir().unwrap();
    let genesis = DevGenesis {
        chain_id: "kassa-test",
        accounts: 2,
        each: 1_000,
        min_fee: 10,
        time_ms: 1_000,
    }
    .genesis();
    let node = kassa_testkit::node_in(dir.path(), &genesis, false);
    let trust = Trust {
        validators: Vec::new(),
        namespace: Vec::new(),
    };
    let source: Arc<dyn Source> = Arc::new(Certless { height });
    let follower = Follower::new(node, trust, vec![source]);
    deterministic::Runner::default()
        .start(|mut context| async move { follower.step(&mut context).await })
}

#[test]
fn a_source_ahead_of_the_whole_certificate_window_with_nothing_in_it_is_a_failed_source_to_move_on_from()
 {
    let beyond = 1 + FINALITY_SEARCH + 1;
    match step_from(beyond) {
        Err(FollowError::Source(SourceError::Pruned(why))) => {
            assert!(
                why.contains("no finalization certificate from height 1"),
                "{why}"
            );
        }
        other => panic!("expected the source to count as failed, got {other:?}"),
    }
}

#[test]
fn a_source_whose_next_certificate_may_still_come_is_waited_for() {
    // At the window's end: its head's certificate may not be stored yet.
    let within = 1 + FINALITY_SEARCH;
    assert_eq!(step_from(within).unwrap(), 0, "nothing new yet, no failure");
}
