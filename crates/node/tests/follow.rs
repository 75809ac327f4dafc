//! A follower and the sources it syncs from: what it makes of a source that has nothing to show,
//! and how state sync waits when no source answers. (Following a live chain, switching sources
//! and state sync run in the simulations and in `crates/kassa/tests/hosts.rs`.)

use commonware_runtime::Runner as _;
use commonware_runtime::deterministic;
use futures::future::BoxFuture;
use kassa_node::follow::{FollowError, Follower, Source, SourceError, Trust};
use kassa_node::state_sync::{retry_pause, sync_state};
use kassa_node::{FINALITY_SEARCH, Finality};
use kassa_state::Genesis;
use kassa_testkit::DevGenesis;
use kassa_testkit::certify::Signers;
use kassa_types::{BlockHeader, SignedTransaction};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CHAIN: &str = "kassa-test";

fn genesis() -> Genesis {
    DevGenesis {
        chain_id: CHAIN,
        accounts: 2,
        each: 1_000,
        min_fee: 10,
        time_ms: 1_000,
    }
    .genesis()
}

/// A source at `height` that answers its height and at most one certificate, of its head
/// (`certified`: the header and the certificate), and nothing else: with none, a pruning node
/// asked below what it keeps or a follower keeping only its newest certificates; with one, a
/// node whose connection drops after the first requests.
struct Fake {
    height: u64,
    certified: Option<(BlockHeader, Vec<u8>)>,
    /// The state it offers to sync from (it answers no request of state sync).
    offer: Option<(u64, kassa_db::Committed)>,
}

impl Source for Fake {
    fn name(&self) -> &str {
        "fake"
    }

    fn height(&self) -> BoxFuture<'_, Result<u64, SourceError>> {
        Box::pin(async move { Ok(self.height) })
    }

    fn finality(&self, from: u64) -> BoxFuture<'_, Result<Option<Finality>, SourceError>> {
        Box::pin(async move {
            Ok(self
                .certified
                .as_ref()
                .filter(|(header, _)| from <= header.height)
                .map(|(header, certificate)| Finality {
                    height: header.height,
                    block: header.hash(),
                    header: kassa_types::codec::encode(header),
                    certificate: certificate.clone(),
                }))
        })
    }

    fn block(&self, height: u64) -> BoxFuture<'_, Result<Vec<u8>, SourceError>> {
        Box::pin(async move {
            Err(SourceError::Unreachable(format!(
                "block {height}: timed out"
            )))
        })
    }

    fn offers(&self) -> BoxFuture<'_, Result<Vec<(u64, kassa_db::Committed)>, SourceError>> {
        Box::pin(async move { Ok(self.offer.clone().into_iter().collect()) })
    }

    fn sync(&self, _request: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, SourceError>> {
        Box::pin(async move { Err(SourceError::Unreachable("sync: timed out".into())) })
    }

    fn forward(&self, _txs: Vec<SignedTransaction>) -> BoxFuture<'_, Result<(), SourceError>> {
        Box::pin(async move { Ok(()) })
    }
}

/// One step of a follower at genesis from a [`Fake`] source at `height` without certificates.
fn step_from(height: u64) -> Result<usize, FollowError> {
    let dir = tempfile::tempdir().unwrap();
    let node = kassa_testkit::node_in(dir.path(), &genesis(), false);
    let trust = Trust {
        validators: Vec::new(),
        namespace: Vec::new(),
    };
    let source: Arc<dyn Source> = Arc::new(Fake {
        height,
        certified: None,
        offer: None,
    });
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

#[test]
fn state_sync_waits_longer_after_each_round_no_source_answered_and_then_gives_up() {
    let dir = tempfile::tempdir().unwrap();
    let node = kassa_testkit::node_in(dir.path(), &genesis(), false);
    let genesis_block = node.db().block(0).unwrap().unwrap();
    // What the genesis state's commitment is, offered as the state of height 5 (whose header
    // carries the genesis state root).
    node.db().offer_head().unwrap();
    let (_, mut offer) = node.db().offers().unwrap().pop().unwrap();
    offer.height = Some(5);
    let signers = Signers::new(CHAIN);
    let trust = signers.trust.clone();
    let mut header = genesis_block.header.clone();
    header.height = 5;
    header.parent = genesis_block.header.hash();
    let certificate = signers.certify(&header.hash(), 5);
    let source: Arc<dyn Source> = Arc::new(Fake {
        height: header.height,
        certified: Some((header, certificate)),
        offer: Some((5, offer)),
    });
    let empty = tempfile::tempdir().unwrap();
    let db = kassa_db::Db::open(&empty.path().join("state.redb")).unwrap();
    let paused = Arc::new(Mutex::new(Vec::new()));
    let log = paused.clone();
    let pause = move |d| -> BoxFuture<'static, ()> {
        log.lock().unwrap().push(d);
        Box::pin(async {})
    };
    let result = deterministic::Runner::default().start(|mut context| async move {
        let mut progress = |_: u64, _: u64| {};
        sync_state(
            &db,
            &[source],
            &trust,
            &genesis_block,
            &mut context,
            &mut progress,
            &pause,
        )
        .await
    });
    assert!(
        matches!(
            result,
            Err(FollowError::Source(SourceError::Unreachable(_)))
        ),
        "no source answered: {result:?}"
    );
    // One source: five attempts, a pause between each two, none after the last.
    let secs: Vec<u64> = paused
        .lock()
        .unwrap()
        .iter()
        .map(Duration::as_secs)
        .collect();
    assert_eq!(secs, [1, 2, 4, 8]);
}

#[test]
fn the_pause_between_unanswered_rounds_doubles_up_to_half_a_minute() {
    let secs: Vec<u64> = (0..8).map(|n| retry_pause(n).as_secs()).collect();
    assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
}
