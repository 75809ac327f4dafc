//! The mempool's indexes and bounds under random admissions, replacements and removals.

use super::*;
use kassa_state::exec::chain_params;
use kassa_state::store::StoreMut;
use kassa_state::testkit::SplitMix;
use kassa_state::{Genesis, MemStore, init_genesis};
use kassa_types::tx::{Body, ChainId};
use kassa_types::{AssetId, SecretKey, Transaction};

impl Mempool {
    /// Every index agrees with the queues, each transaction's readiness with its sender's run
    /// (from the account's next nonce in `st`, or a lower nonce still waiting), and the bounds
    /// hold.
    fn check(&self, st: &MemStore) {
        let entries: Vec<(&Address, u64, &Entry)> = self
            .by_sender
            .iter()
            .flat_map(|(s, q)| q.txs.iter().map(move |(n, e)| (s, *n, e)))
            .collect();
        assert_eq!(entries.len(), self.hashes.len());
        assert_eq!(entries.len(), self.by_rank.len());
        assert!(entries.len() <= self.config.txs_max);
        assert!(self.gapped <= self.config.gapped_max);
        let mut gapped = 0;
        for (sender, n, e) in &entries {
            let q = &self.by_sender[*sender];
            assert!(!q.txs.is_empty());
            let next = kassa_state::exec::account(st, sender).nonce;
            let first = *q.txs.keys().next().expect("not empty");
            let ready = (first.min(next)..*n).all(|k| q.txs.contains_key(&k));
            assert_eq!(e.ready, ready, "nonce {n}");
            gapped += usize::from(!ready);
            assert_eq!(self.hashes[&e.hash], (**sender, *n));
            assert!(self.by_rank.contains(&e.rank()));
        }
        assert_eq!(self.gapped, gapped);
        assert_eq!(
            self.bytes,
            entries.iter().map(|(_, _, e)| e.bytes).sum::<usize>()
        );
        for q in self.by_sender.values() {
            let fees: u128 = q.txs.values().map(|e| u128::from(e.tx.tx.fee)).sum();
            assert_eq!(q.fees, fees);
            assert_eq!((q.ready_start, q.ready_end), (q.start(), q.run_end()));
        }
    }
}

#[test]
fn random_admissions_replacements_removals_and_moving_nonces_keep_every_index_and_bound_and_early_refusals_are_exact()
 {
    let keys: Vec<SecretKey> = (0..6)
        .map(|i| SecretKey::from_label(&format!("mempool-{i}")))
        .collect();
    let mut st = MemStore::new();
    let genesis = Genesis {
        chain_id: ChainId::new("kassa-test").unwrap(),
        min_fee: 10,
        allocations: keys.iter().map(|k| (k.address(), 1_800)).collect(),
        time_ms: 0,
        validators: Vec::new(),
    };
    init_genesis(&mut st, &genesis).unwrap();
    let params = chain_params(&st).unwrap();
    let mut pool = Mempool::new(MempoolConfig {
        txs_max: 12,
        gapped_max: 4,
        per_sender_max: 6,
        nonce_window: 8,
        ..MempoolConfig::default()
    });
    let mut rng = SplitMix(7);
    let mut seen = Vec::new();
    let mut outcomes = BTreeMap::new();
    let mut rebased = 0;
    for _ in 0..5_000 {
        if rng.chance(20) && !seen.is_empty() {
            let h = seen[rng.idx(seen.len())];
            pool.remove(&h);
        } else if rng.chance(2) {
            // A block used some of a sender's nonces: the account's next nonce moves on.
            let k = &keys[rng.idx(keys.len())];
            let mut account = kassa_state::exec::account(&st, &k.address());
            account.nonce += 1 + rng.below(3);
            st.put(
                kassa_state::keys::account(&k.address()),
                borsh::to_vec(&account).unwrap(),
            );
            pool.prune(&st, 1, [&k.address()]);
            rebased += 1;
        } else {
            let k = &keys[rng.idx(keys.len())];
            let next = kassa_state::exec::account(&st, &k.address()).nonce;
            let tx = Transaction {
                chain_id: params.chain_id.clone(),
                genesis: params.genesis_hash,
                signer: k.address(),
                nonce: next + rng.below(8),
                fee: 10 + rng.below(300),
                expiry_height: 100,
                body: Body::Transfer {
                    to: keys[0].address(),
                    asset: AssetId::NATIVE,
                    amount: 1,
                },
            }
            .sign(k);
            // A refusal found before the signature is checked is the one admission gives.
            let signer = kassa_state::exec::account(&st, &tx.tx.signer);
            let early = pool.refusal_before_signature(&tx, tx.hash_and_size(), &signer, &params, 1);
            let r = pool.admit(tx, &st, &params, 1);
            if let Some(e) = early {
                assert_eq!(r, Err(e));
                *outcomes.entry(format!("early {e:?}")).or_insert(0) += 1;
            }
            let outcome = match &r {
                Ok(_) => "Ok".to_string(),
                Err(e) => format!("{e:?}"),
            };
            *outcomes.entry(outcome).or_insert(0) += 1;
            if let Ok(h) = r {
                seen.push(h);
            }
        }
        pool.check(&st);
    }
    assert!(rebased >= 40, "nonces moved {rebased} times");
    // The run went through every path: admissions, refusals of each kind the limits give.
    assert!(outcomes.contains_key("Ok"), "{outcomes:?}");
    let said = format!("{outcomes:?}");
    for refusal in [
        "Full",
        "NonceTaken",
        "SenderFull",
        "FeesExceedBalance",
        "early Full",
    ] {
        assert!(said.contains(refusal), "{refusal} never happened: {said}");
    }
}
