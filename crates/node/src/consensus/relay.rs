//! The transaction relay between validators: what a validator admits from clients goes to every
//! other validator in batches on its own p2p channel; what arrives is admitted as one signature
//! batch.

use super::*;
use crate::handle::Node;
use commonware_p2p::{Receiver as P2pReceiver, Recipients, Sender as P2pSender};
use commonware_runtime::Clock;
use kassa_types::codec::{self as kcodec, BoundedVec};
use kassa_types::{SignedTransaction, TX_SIZE_MAX};
use std::sync::Arc;
use std::time::Duration;

/// At most this many transactions travel in one relay message.
pub(super) const RELAY_BATCH_MAX: usize = 256;
/// Transactions relayed between validators, as one p2p message.
pub(super) type RelayBatch = BoundedVec<SignedTransaction, RELAY_BATCH_MAX>;
/// The largest relay message accepted.
pub(super) const RELAY_MSG_MAX: usize = 8 + RELAY_BATCH_MAX * TX_SIZE_MAX;
/// Batches waiting to be relayed; beyond this, new transactions stay local (see `Node::relay`).
pub const RELAY_QUEUE: usize = 1_024;
/// Relayed transactions wait at most this long to be admitted, if no block is built or checked
/// here first (see `Node::queue_relayed`).
pub(super) const RELAYED_ADMIT_EVERY: Duration = Duration::from_millis(100);

/// Sends the transactions this node admits from clients to every other validator, in batches
/// (whatever queued while the previous batch was sent goes together).
pub(super) async fn relay_out<S: P2pSender<PublicKey = PublicKey>>(
    mut sender: S,
    mut queue: tokio::sync::mpsc::Receiver<Vec<SignedTransaction>>,
) {
    while let Some(mut txs) = queue.recv().await {
        while txs.len() < RELAY_BATCH_MAX
            && let Ok(more) = queue.try_recv()
        {
            txs.extend(more);
        }
        for chunk in txs.chunks(RELAY_BATCH_MAX) {
            let message = relay_message(chunk.to_vec()).expect("chunks are bounded");
            let _ = sender.send(Recipients::All, message, false);
        }
    }
}

/// The relay message carrying `txs` (`None` above [`RELAY_BATCH_MAX`] of them).
pub fn relay_message(txs: Vec<SignedTransaction>) -> Option<Vec<u8>> {
    RelayBatch::new(txs).map(|batch| kcodec::encode(&batch))
}

/// Takes in the transactions other validators relay, for admission as one signature batch
/// (`Node::queue_relayed`). A malformed message is dropped (the mempool checks each
/// transaction as it would a client's, signature included).
pub(super) async fn relay_in<R: P2pReceiver<PublicKey = PublicKey>>(
    node: Arc<Node>,
    mut receiver: R,
) {
    while let Ok((peer, message)) = receiver.recv().await {
        match kcodec::decode::<RelayBatch>(message.as_ref(), RELAY_MSG_MAX) {
            Ok(batch) => {
                if node.queue_relayed(peer, batch.into_inner()) {
                    admit_queue(&node);
                }
            }
            Err(e) => tracing::warn!(%peer, error = %e, "malformed transaction relay message"),
        }
    }
}

/// Admits what was relayed every [`RELAYED_ADMIT_EVERY`], so that a quiet chain's mempools
/// show it soon (building or checking a block admits it before that).
pub(super) async fn relay_admit<E: Clock>(context: E, node: Arc<Node>) {
    loop {
        context.sleep(RELAYED_ADMIT_EVERY).await;
        admit_queue(&node);
    }
}

pub(super) fn admit_queue(node: &Node) {
    if let Err(e) = node.admit_queued_relayed() {
        tracing::warn!(error = %e, "cannot admit relayed transactions");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kassa_types::tx::{Body, ChainId};
    use kassa_types::{AssetId, SecretKey, Transaction};

    fn tx(nonce: u64) -> SignedTransaction {
        let key = SecretKey::from_label("relay");
        Transaction {
            chain_id: ChainId::new("kassa-test".to_string()).unwrap(),
            genesis: kassa_types::Hash::default(),
            signer: key.address(),
            nonce,
            fee: 1_000,
            expiry_height: 10,
            body: Body::Transfer {
                to: key.address(),
                asset: AssetId::NATIVE,
                amount: 1,
            },
        }
        .sign(&key)
    }

    #[test]
    fn a_relay_message_decodes_to_the_batch_it_encodes() {
        let batch = RelayBatch::new((0..3).map(tx).collect()).unwrap();
        let bytes = kcodec::encode(&batch);
        let back: RelayBatch = kcodec::decode(&bytes, RELAY_MSG_MAX).unwrap();
        assert_eq!(back.into_inner(), batch.into_inner());
    }

    #[test]
    fn a_relay_message_with_too_many_transactions_or_trailing_bytes_is_refused() {
        // 257 transactions: refused from the length prefix, before anything is read.
        let too_many: Vec<SignedTransaction> = (0..=RELAY_BATCH_MAX as u64).map(tx).collect();
        let bytes = borsh::to_vec(&too_many).unwrap();
        assert!(kcodec::decode::<RelayBatch>(&bytes, usize::MAX).is_err());
        let mut bytes = kcodec::encode(&RelayBatch::new(vec![tx(0)]).unwrap());
        bytes.push(0);
        assert!(kcodec::decode::<RelayBatch>(&bytes, RELAY_MSG_MAX).is_err());
        assert!(kcodec::decode::<RelayBatch>(&[0xff; 16], RELAY_MSG_MAX).is_err());
    }
}
