//! [`Finalizer`]: finalized blocks from marshal, applied in order with group commit and
//! acknowledged once durable; and the finalization certificates marshal keeps, for the API.

use super::*;
use crate::app::AppError;
use crate::handle::{Certificates, Node};
use commonware_actor::Feedback;
use commonware_codec::Encode as _;
use commonware_consensus::Reporter;
use commonware_consensus::marshal::standard::Standard;
use commonware_consensus::marshal::{self, Update};
use commonware_consensus::types::Height;
use commonware_utils::{Acknowledgement as _, NZUsize};
use futures::StreamExt as _;
use futures::channel::mpsc;
use futures::future::BoxFuture;
use kassa_db::Durability;
use std::num::NonZeroUsize;
use std::sync::Arc;

/// Receives finalized blocks from marshal and hands them to [`run_finalizer`].
#[derive(Clone, Debug)]
pub struct Finalizer {
    pub(super) sender: mpsc::UnboundedSender<Update<CBlock>>,
}

impl Reporter for Finalizer {
    type Activity = Update<CBlock>;

    fn report(&mut self, update: Update<CBlock>) -> Feedback {
        match self.sender.unbounded_send(update) {
            Ok(()) => Feedback::Ok,
            Err(_) => Feedback::Closed,
        }
    }
}

/// The most finalized blocks committed as one group: deferred, then one immediate commit.
pub(super) const GROUP_COMMIT_MAX: NonZeroUsize = NZUsize!(16);

/// Applies finalized blocks in order and acknowledges each only once it is durable. Returns an
/// error if a finalized block cannot be applied: executing it gave a different state than its
/// header commits to, or the database failed. The node must not go on serving a wrong state.
///
/// Group commit: when the next finalized block is already waiting, this one is committed with
/// [`Durability::Deferred`] (applied and visible at once, on disk with the group's last block,
/// which is committed immediately), so a run of blocks costs one fsync and each page they all
/// touch is written once. Acknowledgements wait for the group's immediate commit, so marshal
/// re-delivers after a crash whatever was not yet on disk.
pub(super) async fn run_finalizer(
    node: Arc<Node>,
    mut updates: mpsc::UnboundedReceiver<Update<CBlock>>,
) -> Result<(), AppError> {
    let mut unacknowledged = Vec::new();
    let mut next = None;
    loop {
        let update = match next.take() {
            Some(u) => u,
            None => match updates.next().await {
                Some(u) => u,
                None => break,
            },
        };
        let Update::Block(block, ack) = update else {
            continue;
        };
        next = waiting_block(&mut updates);
        let durability = if next.is_some() && unacknowledged.len() + 1 < GROUP_COMMIT_MAX.get() {
            Durability::Deferred
        } else {
            Durability::Immediate
        };
        crate::crash::point("finalized");
        let started = std::time::Instant::now();
        let applied = node.finalize(&block.inner().block, durability);
        tracing::debug!(
            took_us = started.elapsed().as_micros(),
            ?durability,
            "finalize applied"
        );
        match applied {
            Ok(Some(f)) => {
                tracing::debug!(height = f.head.height, txs = f.block.txs.len(), root = %f.head.state_root, "finalized")
            }
            // Already applied (re-delivery after a restart, or genesis); the group's deferred
            // blocks before it still need their immediate commit.
            Ok(None) if durability == Durability::Immediate && !unacknowledged.is_empty() => {
                node.db().sync()?;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, height = block.inner().block.header.height, "cannot apply a finalized block; stopping");
                return Err(e);
            }
        }
        crate::crash::point("applied");
        unacknowledged.push(ack);
        if durability == Durability::Immediate {
            crate::crash::point("acknowledged");
            for ack in unacknowledged.drain(..) {
                ack.acknowledge();
            }
        }
    }
    Ok(())
}

/// The next finalized block, if marshal already delivered it (tips are skipped).
pub(super) fn waiting_block(
    updates: &mut mpsc::UnboundedReceiver<Update<CBlock>>,
) -> Option<Update<CBlock>> {
    loop {
        match updates.try_recv() {
            Ok(u @ Update::Block(..)) => return Some(u),
            Ok(Update::Tip(..)) => continue,
            Err(_) => return None,
        }
    }
}

/// Finalization certificates from marshal's archive.
pub(super) struct MarshalCertificates(pub(super) MarshalMailbox);

pub(super) type MarshalMailbox = marshal::core::Mailbox<Scheme, Standard<CBlock>>;

impl std::fmt::Debug for MarshalCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MarshalCertificates")
    }
}

impl Certificates for MarshalCertificates {
    fn finalization(&self, height: u64) -> BoxFuture<'_, Option<Vec<u8>>> {
        Box::pin(async move {
            self.0
                .get_finalization(Height::new(height))
                .await
                .map(|f| f.encode().to_vec())
        })
    }
}
