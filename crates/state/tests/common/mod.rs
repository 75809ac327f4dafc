//! What the state tests share: the audited test chain of `kassa_testkit::chain` and a funded
//! society of members who have paid for some periods.
#![allow(dead_code)]

use kassa_state::records::Event;
pub use kassa_testkit::chain::*;
pub use kassa_testkit::key;
use kassa_types::rules::Rules;
use kassa_types::tx::Body;
use kassa_types::{AssetId, Rejection, RequestId, SecretKey, SocietyId};

/// A society of `n` members (`key(0..n)`, `key(0)` its founder), each pledging
/// `rules.min_pledge` of USDK and having paid it for `periods` periods. Accounts `key(n..n+3)` are funded outsiders.
pub struct Fund {
    pub chain: Chain,
    pub asset: AssetId,
    pub soc: SocietyId,
    pub members: Vec<SecretKey>,
    pub period_ms: u64,
}

pub const USDK_EACH: u64 = 10_000_000;

impl Fund {
    pub fn new(n: usize, rules: Rules, periods: u64) -> Fund {
        let mut chain = Chain::new(n + 3);
        let asset = chain.stable_asset(n + 3, USDK_EACH);
        let period_ms = rules.period_secs * 1000;
        let pledge = rules.min_pledge;
        let soc = chain.society(&key(0), asset, rules);
        let members: Vec<_> = (0..n).map(key).collect();
        chain.all_ok(&members[1..], |_| Body::Join {
            society: soc,
            pledge,
            identity_commitment: None,
        });
        let mut f = Fund {
            chain,
            asset,
            soc,
            members,
            period_ms,
        };
        for _ in 0..periods {
            f.contribute_all(pledge);
            f.next_period();
        }
        f
    }

    pub fn contribute_all(&mut self, amount: u64) {
        let soc = self.soc;
        let members = self.members.clone();
        self.chain.all_ok(&members, |_| Body::Contribute {
            society: soc,
            amount,
        });
    }

    pub fn next_period(&mut self) {
        self.chain.advance_ms(self.period_ms);
    }

    /// Sum of every member's derived gift balance.
    pub fn gift_sum(&self) -> u128 {
        self.members
            .iter()
            .filter_map(|k| {
                kassa_state::view::member(
                    &self.chain.st,
                    self.soc,
                    &k.address(),
                    self.chain.time_ms,
                )
            })
            .map(|m| u128::from(m.gift_balance))
            .sum()
    }

    pub fn file(&mut self, who: usize, amount: u64) -> Result<RequestId, Rejection> {
        let k = self.members[who].clone();
        let ev = self.chain.exec(
            &k,
            Body::FileRequest {
                society: self.soc,
                amount,
                evidence_hash: kassa_types::Hash::of(&[b"doctor's note"]),
                memo: kassa_types::tx::Memo::new("ipfs://evidence").unwrap(),
                payee: None,
                installments: 0,
            },
        )?;
        Ok(request_id(&ev))
    }

    /// All members except `except` vote `approve` on `r`.
    pub fn vote_all(&mut self, r: RequestId, approve: bool, except: usize) {
        let voters: Vec<_> = self
            .members
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != except)
            .map(|(_, k)| k.clone())
            .collect();
        self.chain.all_ok(&voters, |_| Body::Vote {
            request: r,
            approve,
            percent: 100,
        });
    }

    /// Moves past the request's deadline and finalizes it.
    pub fn finalize(&mut self, r: RequestId) -> Vec<Event> {
        let deadline = self.chain.request(r).ballot.deadline_ms;
        if self.chain.time_ms < deadline {
            self.chain.time_ms = deadline;
        }
        let k = key(self.members.len());
        self.chain.ok(&k, Body::Finalize { request: r })
    }
}

/// Seeds the reference-model tests run: `KASSA_REFERENCE_SEEDS`, 8 by default.
pub fn reference_seeds() -> u64 {
    std::env::var("KASSA_REFERENCE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8)
}

/// Fails unless each of `wanted` happened at least once in a run (so that a run shown to agree
/// reached every rule it is meant to check).
pub fn assert_seen(seen: &std::collections::BTreeMap<&str, u64>, wanted: &[&str]) {
    for what in wanted {
        assert!(
            seen.get(what).copied().unwrap_or(0) > 0,
            "no {what}: {seen:?}"
        );
    }
}
