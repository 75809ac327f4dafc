//! `kassa bench scale`: approving a request in societies of 10 to 1,000,000 members, and the
//! memory a member takes.

use super::workload::*;
use super::*;
use anyhow::{Context as _, Result, bail};
use kassa_state::exec::{BlockContext, Receipt};
use kassa_state::{Genesis, MemStore, Overlay, apply_tx, begin_block, end_block, init_genesis};
use kassa_types::tx::{Body, ChainId, Memo, Purpose, SocietyName};
use kassa_types::{Address, AssetId, Hash, RequestId, Rules, SecretKey, SocietyId, Transaction};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A chain in memory, one transaction per block.
pub(super) struct MemChain {
    pub(super) st: MemStore,
    pub(super) height: u64,
    pub(super) time_ms: u64,
    pub(super) nonces: BTreeMap<Address, u64>,
    pub(super) chain_id: ChainId,
    pub(super) genesis_hash: Hash,
}

impl MemChain {
    fn new(accounts: usize) -> Result<MemChain> {
        let mut st = MemStore::new();
        let chain_id = ChainId::new(CHAIN_ID.to_string()).context("chain id")?;
        init_genesis(
            &mut st,
            &Genesis {
                chain_id: chain_id.clone(),
                min_fee: 1_000,
                allocations: (0..accounts)
                    .map(|i| (bench_key(i).address(), 1_000_000_000_000))
                    .collect(),
                time_ms: 0,
                validators: Vec::new(),
            },
        )
        .map_err(|e| anyhow::anyhow!("genesis: {e:?}"))?;
        let genesis_hash = kassa_state::exec::chain_params(&st)
            .context("genesis applied")?
            .genesis_hash;
        Ok(MemChain {
            genesis_hash,
            st,
            height: 0,
            time_ms: 0,
            nonces: BTreeMap::new(),
            chain_id,
        })
    }

    /// Executes one transaction in its own block; returns its receipt and how long it took.
    fn exec(&mut self, key: &SecretKey, body: Body) -> Result<(Receipt, Duration)> {
        let nonce = self.nonces.entry(key.address()).or_default();
        let tx = Transaction {
            chain_id: self.chain_id.clone(),
            genesis: self.genesis_hash,
            signer: key.address(),
            nonce: *nonce,
            fee: 1_000,
            expiry_height: u64::MAX,
            body,
        }
        .sign(key);
        *nonce += 1;
        self.height += 1;
        self.time_ms += 1;
        let ctx = BlockContext {
            height: self.height,
            time_ms: self.time_ms,
            proposer: key.address(),
        };
        begin_block(&mut self.st, &ctx).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let started = Instant::now();
        let mut overlay = Overlay::new(&self.st);
        let receipt = apply_tx(&mut overlay, &ctx, &tx, false)
            .map_err(|r| anyhow::anyhow!("refused: {r}"))?;
        let writes = overlay.into_writes();
        kassa_state::store::apply_writes(&mut self.st, writes);
        let took = started.elapsed();
        end_block(&mut self.st, &ctx);
        if let Some(r) = receipt.rejection() {
            bail!("{} failed: {r}", tx.tx.body.kind());
        }
        Ok((receipt, took))
    }
}

/// Finalizes an approved request in a society of `members`; returns (time, writes, RSS growth
/// of the seeded members in KiB).
pub(super) fn approve_in_society(members: u64) -> Result<(Duration, u64, u64)> {
    const FOUNDERS: usize = 10;
    let mut c = MemChain::new(FOUNDERS + 1)?;
    let mut rules = Rules::defaults(100, 1_000);
    rules.period_secs = 3_600;
    rules.voting_window_secs = 60;
    rules.waiting_periods = 0;
    rules.min_members = 10;
    rules.max_draw_bps = 10_000;
    let h = rules.karma_half_life_periods;
    let soc = SocietyId(0);
    c.exec(
        &bench_key(0),
        Body::CreateSociety {
            name: SocietyName::new("Scale").context("name")?,
            purpose: Purpose::new("scale").context("purpose")?,
            asset: AssetId::NATIVE,
            rules,
            pledge: 100,
        },
    )?;
    for i in 0..FOUNDERS {
        let k = bench_key(i);
        if i > 0 {
            c.exec(
                &k,
                Body::Join {
                    society: soc,
                    pledge: 100,
                    identity_commitment: None,
                },
            )?;
        }
        c.exec(
            &k,
            Body::Contribute {
                society: soc,
                amount: 400,
            },
        )?;
    }
    // Voting weight is taken at the start of the filing period: file in the next one.
    c.time_ms += 3_600_000;
    let rss0 = rss_kib();
    let seeded = members.saturating_sub(10);
    kassa_state::testkit::seed_members(&mut c.st, soc, AssetId::NATIVE, seeded, 400, 400, h);
    let grown = rss_kib().saturating_sub(rss0);
    c.exec(
        &bench_key(0),
        Body::FileRequest {
            society: soc,
            amount: 500,
            evidence_hash: Hash::of(&[b"note"]),
            memo: Memo::new("scale").context("memo")?,
            payee: None,
            installments: 0,
        },
    )?;
    for i in 1..FOUNDERS {
        c.exec(
            &bench_key(i),
            Body::Vote {
                request: RequestId(0),
                approve: true,
                percent: 100,
            },
        )?;
    }
    c.time_ms += 61_000;
    let (receipt, took) = c.exec(
        &bench_key(FOUNDERS),
        Body::Finalize {
            request: RequestId(0),
        },
    )?;
    Ok((took, receipt.writes, grown))
}

pub(super) fn bench_scale() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for members in [10u64, 10_000, 1_000_000] {
        eprintln!("scale: a society of {members} members…");
        let (took, writes, grown) = approve_in_society(members)?;
        let per_member = if members > 10 {
            format!("; {} B resident per member", grown * 1024 / (members - 10))
        } else {
            String::new()
        };
        rows.push(Row {
            name: format!("scale: approve, {members} members"),
            txs: 1,
            wall: took,
            latencies: vec![took],
            cpu: Duration::ZERO,
            rss_kib: rss_kib(),
            disk_bytes: None,
            note: format!("{writes} state writes{per_member}"),
        });
    }
    Ok(rows)
}
