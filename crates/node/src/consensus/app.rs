//! [`KassaApp`], the engine's `Application`: `propose` paces blocks and asks the node to build
//! one; `verify` re-executes a peer's block, after executing any ancestor the node has not seen.

use super::*;
use crate::handle::Node;
use commonware_codec::Encode as _;
use commonware_consensus::Application;
use commonware_consensus::marshal::ancestry::Ancestry;
use commonware_cryptography::{Digested, Digestible};
use commonware_runtime::Clock;
use futures::StreamExt as _;
use kassa_types::Address;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(super) fn now_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The `Application` the engine drives.
#[derive(Clone, Debug)]
pub struct KassaApp {
    pub(super) node: Arc<Node>,
    /// Minimum spacing between a block and its parent (the leader's pacing).
    pub(super) block_time: Duration,
    /// How far in the future a peer's timestamp may be before we wait for our clock to catch up.
    pub(super) max_clock_drift: Duration,
    /// Added to the runtime's clock (see [`EngineConfig::clock_skew_ms`]).
    pub(super) clock_skew_ms: i64,
}

impl KassaApp {
    /// This validator's clock, in milliseconds since the epoch.
    fn now(&self, runtime: &impl Clock) -> u64 {
        now_ms(runtime.current()).saturating_add_signed(self.clock_skew_ms)
    }

    /// Makes sure every ancestor of the block `ancestry` will yield next is executed: pulls
    /// ancestors until one the node knows, then verifies the unknown ones oldest first.
    async fn catch_up(
        &self,
        first: &Digested<CBlock>,
        ancestry: &mut impl Ancestry<CBlock>,
    ) -> bool {
        let mut unknown = Vec::new();
        let mut at = first.inner().block.clone();
        while !self.node.knows(&at.header.parent, at.header.height - 1) {
            let Some(parent) = ancestry.next().await else {
                return false;
            };
            at = parent.inner().block.clone();
            unknown.push(at.clone());
        }
        for b in unknown.iter().rev() {
            match self.node.verify(b, u64::MAX / 2, 0) {
                Ok(true) => {}
                Ok(false) | Err(_) => return false,
            }
        }
        true
    }
}

impl<E: Clock> Application<E> for KassaApp {
    type SigningScheme = Scheme;
    type Context = Context;
    type Block = CBlock;
    type Input = ();

    async fn propose(
        &mut self,
        (runtime, context): (E, Context),
        mut ancestry: impl Ancestry<CBlock>,
        _: (),
    ) -> Option<Digested<CBlock>> {
        let parent = ancestry.next().await?;
        let p = &parent.inner().block.header;
        if !self.node.knows(&p.hash(), p.height) {
            // The parent itself is not executed yet (e.g. after a restart).
            let mut chain = vec![parent.inner().block.clone()];
            while !self.node.knows(
                &chain.last().expect("non-empty").header.parent,
                chain.last().expect("non-empty").header.height - 1,
            ) {
                chain.push(ancestry.next().await?.inner().block.clone());
            }
            for b in chain.iter().rev() {
                if !self.node.verify(b, u64::MAX / 2, 0).ok()? {
                    return None;
                }
            }
        }
        // Pacing: simplex proposes as soon as the parent is certified; the leader waits.
        let block_ms = u64::try_from(self.block_time.as_millis()).unwrap_or(u64::MAX);
        let earliest = p.timestamp_ms.saturating_add(block_ms);
        let now = self.now(&runtime);
        if now < earliest {
            runtime.sleep(Duration::from_millis(earliest - now)).await;
        }
        let time_ms = self.now(&runtime).max(earliest);
        let proposer = Address(context.leader.encode().as_ref().try_into().ok()?);
        let started = std::time::Instant::now();
        let built = self
            .node
            .propose(&p.hash(), time_ms, proposer, &context.encode());
        tracing::debug!(took_us = started.elapsed().as_micros(), "proposal built");
        let block = match built {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "could not build a block");
                return None;
            }
        };
        let cblock = CBlock::new(block).ok()?;
        let digest = cblock.digest();
        Some(Digested::precomputed(cblock, digest))
    }

    async fn verify(
        &mut self,
        (runtime, context): (E, Context),
        mut ancestry: impl Ancestry<CBlock>,
    ) -> bool {
        let Some(block) = ancestry.next().await else {
            return false;
        };
        if !self.catch_up(&block, &mut ancestry).await {
            return false;
        }
        let b = &block.inner().block;
        // The header names its proposer: it must be this round's leader.
        if context.leader.encode().as_ref() != b.header.proposer.0.as_slice() {
            return false;
        }
        // A timestamp ahead of our clock is a temporary condition: wait rather than refuse.
        let drift = u64::try_from(self.max_clock_drift.as_millis()).unwrap_or(u64::MAX);
        let now = self.now(&runtime);
        if b.header.timestamp_ms > now + drift {
            runtime
                .sleep(Duration::from_millis(b.header.timestamp_ms - now - drift))
                .await;
        }
        match self.node.verify(b, self.now(&runtime), drift) {
            Ok(ok) => ok,
            Err(e) => {
                tracing::warn!(error = %e, "could not verify a block");
                false
            }
        }
    }
}
