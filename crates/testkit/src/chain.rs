//! A small chain for tests, benchmarks and fuzzers: genesis with funded test accounts, one block
//! per call, the §9 auditor after every block, and a check that every transaction that failed
//! changed nothing but its fee and nonce.

use kassa_state::audit::{self, Snapshot};
use kassa_state::exec::{balance, chain_params, nonce};
use kassa_state::keys;
use kassa_state::records::Event;
use kassa_state::store::apply_writes;
use kassa_state::{BlockContext, Genesis, MemStore, Overlay, Receipt, ScanStore, init_genesis};
use kassa_types::rules::Rules;
use kassa_types::tx::{Body, ChainId};
use kassa_types::{
    Address, AssetId, Rejection, RequestId, SecretKey, SignedTransaction, SocietyId, Transaction,
};

pub const FEE: u64 = 1_000;
pub const GENESIS_MS: u64 = 1_700_000_000_000;
pub const KAS_EACH: u64 = 1_000_000_000_000;

/// An in-memory chain whose blocks are applied one transaction at a time and audited.
#[derive(Clone)]
pub struct Chain {
    pub st: MemStore,
    pub height: u64,
    pub time_ms: u64,
    pub snapshot: Snapshot,
    pub blocks: u64,
    /// Audit after every block and check that failed transactions wrote nothing else (both read
    /// the whole state: switched off only while a test holds a million seeded members).
    pub paranoid: bool,
    /// Execute transactions as if their signatures had been verified already (for fuzzers, which
    /// cannot sign; everything else about a transaction is still checked).
    pub trust_signatures: bool,
}

use crate::key;

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("height", &self.height)
            .field("time_ms", &self.time_ms)
            .finish_non_exhaustive()
    }
}

impl Chain {
    /// A chain whose accounts `key(0..n)` each hold `KAS_EACH` KAS.
    pub fn new(n: usize) -> Chain {
        let mut st = MemStore::new();
        let allocations = (0..n).map(|i| (key(i).address(), KAS_EACH)).collect();
        init_genesis(
            &mut st,
            &Genesis {
                chain_id: ChainId::new("kassa-test").unwrap(),
                min_fee: FEE,
                allocations,
                time_ms: GENESIS_MS,
                validators: Vec::new(),
            },
        )
        .unwrap();
        let snapshot = audit::audit(&st, None).expect("genesis is sound");
        Chain {
            st,
            height: 0,
            time_ms: GENESIS_MS,
            snapshot,
            blocks: 0,
            paranoid: true,
            trust_signatures: false,
        }
    }

    pub fn sign(&self, k: &SecretKey, body: Body) -> SignedTransaction {
        let params = chain_params(&self.st).unwrap();
        Transaction {
            chain_id: params.chain_id,
            genesis: params.genesis_hash,
            signer: k.address(),
            nonce: nonce(&self.st, &k.address()),
            fee: FEE,
            expiry_height: self.height + 100,
            body,
        }
        .sign(k)
    }

    /// Advances block time.
    pub fn advance_ms(&mut self, ms: u64) {
        self.time_ms += ms;
    }

    /// Applies one block of already-signed transactions, then audits. For each transaction that
    /// was not includable, checks that the state is unchanged; for each that failed in execution,
    /// checks that only the signer's account (nonce and KAS balance) and the KAS supply were
    /// written.
    pub fn block(&mut self, txs: &[SignedTransaction]) -> Vec<Result<Receipt, Rejection>> {
        self.height += 1;
        self.time_ms += 1;
        let ctx = BlockContext {
            height: self.height,
            time_ms: self.time_ms,
            proposer: key(0).address(),
        };
        // Apply transaction by transaction so that each one's effect can be checked.
        let mut out = Vec::new();
        kassa_state::begin_block(&mut self.st, &ctx).unwrap();
        for t in txs {
            // Run against an overlay to see exactly which keys the transaction wrote.
            let mut o = Overlay::new(&self.st);
            let r = kassa_state::apply_tx(&mut o, &ctx, t, self.trust_signatures);
            let writes = o.into_writes();
            if self.paranoid {
                match &r {
                    Err(_) => assert!(writes.is_empty(), "a rejected transaction wrote state"),
                    Ok(rc) if rc.rejection().is_some() => {
                        let allowed = [keys::account(&t.tx.signer), keys::asset(AssetId::NATIVE)];
                        assert!(
                            writes.keys().all(|k| allowed.contains(k)),
                            "a failed transaction ({:?}) wrote more than its fee and nonce",
                            rc.rejection()
                        );
                    }
                    Ok(_) => {}
                }
            }
            apply_writes(&mut self.st, writes);
            out.push(r);
        }
        kassa_state::end_block(&mut self.st, &ctx);
        if self.paranoid {
            if let Err(v) = audit::audit(&self.st, Some(&self.snapshot)) {
                for (t, r) in txs.iter().zip(&out) {
                    eprintln!(
                        "{:?} -> {:?}",
                        t.tx.body,
                        r.as_ref().map(|r| r.events().to_vec())
                    );
                }
                panic!("after block {}: {v}", self.height);
            }
            self.audit();
        }
        self.blocks += 1;
        out
    }

    /// Checks §9 now.
    pub fn audit(&mut self) {
        self.snapshot = audit::audit(&self.st, Some(&self.snapshot))
            .unwrap_or_else(|v| panic!("after block {}: {v}", self.height));
    }

    /// One transaction in its own block; returns its events or the rejection.
    pub fn exec(&mut self, k: &SecretKey, body: Body) -> Result<Vec<Event>, Rejection> {
        let t = self.sign(k, body);
        let r = self.block(&[t]).pop().unwrap()?;
        match r.rejection() {
            Some(rej) => Err(rej),
            None => Ok(r.events().to_vec()),
        }
    }

    /// Like `exec`, but panics on failure.
    pub fn ok(&mut self, k: &SecretKey, body: Body) -> Vec<Event> {
        let kind = body.kind();
        self.exec(k, body)
            .unwrap_or_else(|e| panic!("{kind} failed: {e}"))
    }

    pub fn balance(&self, a: &Address, asset: AssetId) -> u64 {
        balance(&self.st, a, asset)
    }

    pub fn member(&self, s: SocietyId, a: &Address) -> kassa_state::view::MemberView {
        kassa_state::view::member(&self.st, s, a, self.time_ms).expect("member exists")
    }

    pub fn request(&self, r: RequestId) -> kassa_state::records::Request {
        kassa_state::view::request(&self.st, r).expect("request exists")
    }

    pub fn book(&self, s: SocietyId) -> kassa_state::records::Book {
        kassa_state::view::society(&self.st, s).unwrap().1
    }

    /// Creates asset `USDK` issued by `key(0)` and mints `each` to `key(0..n)`.
    pub fn stable_asset(&mut self, n: usize, each: u64) -> AssetId {
        let issuer = key(0);
        let ev = self.ok(
            &issuer,
            Body::CreateAsset {
                symbol: kassa_types::tx::Symbol::new("USDK").unwrap(),
                decimals: 2,
                max_supply: None,
            },
        );
        let asset = ev
            .iter()
            .find_map(|e| {
                if let Event::AssetCreated { asset, .. } = e {
                    Some(*asset)
                } else {
                    None
                }
            })
            .unwrap();
        let txs: Vec<_> = (0..n)
            .map(|i| {
                let mut t = self.sign(
                    &issuer,
                    Body::Mint {
                        asset,
                        to: key(i).address(),
                        amount: each,
                    },
                );
                t.tx.nonce += u64::try_from(i).unwrap();
                t.tx.clone().sign(&issuer)
            })
            .collect();
        for r in self.block(&txs) {
            assert!(r.unwrap().rejection().is_none());
        }
        asset
    }

    /// Creates a society (the founder its first member, pledging the minimum) and returns its id.
    pub fn society(&mut self, founder: &SecretKey, asset: AssetId, rules: Rules) -> SocietyId {
        let pledge = rules.min_pledge;
        let ev = self.ok(
            founder,
            Body::CreateSociety {
                name: kassa_types::tx::SocietyName::new("Broodfonds Test").unwrap(),
                purpose: kassa_types::tx::Purpose::new("Income when a member is too ill to work.")
                    .unwrap(),
                asset,
                rules,
                pledge,
            },
        );
        ev.iter()
            .find_map(|e| {
                if let Event::SocietyCreated { society } = e {
                    Some(*society)
                } else {
                    None
                }
            })
            .unwrap()
    }

    /// Many signers, one transaction each, in one block; asserts all succeed.
    pub fn all_ok(&mut self, signers: &[SecretKey], body: impl Fn(&SecretKey) -> Body) {
        let txs: Vec<_> = signers.iter().map(|k| self.sign(k, body(k))).collect();
        for (i, r) in self.block(&txs).into_iter().enumerate() {
            let r = r.unwrap_or_else(|e| panic!("tx {i} not includable: {e}"));
            assert!(
                r.rejection().is_none(),
                "tx {i} failed: {:?}",
                r.rejection()
            );
        }
    }

    pub fn digest(&self) -> kassa_types::Hash {
        self.st.digest()
    }

    pub fn entries(&self) -> usize {
        self.st.scan_prefix(b"").len()
    }
}

/// Rules for tests: ten-minute periods with one-minute votes (the shortest window the floors
/// allow), otherwise the protocol defaults.
pub fn fast_rules(min_pledge: u64, max_pledge: u64) -> Rules {
    let mut r = Rules::defaults(min_pledge, max_pledge);
    r.period_secs = 600;
    r.voting_window_secs = 60;
    r
}

pub fn request_id(events: &[Event]) -> RequestId {
    events
        .iter()
        .find_map(|e| match e {
            Event::RequestFiled { request, .. } => Some(*request),
            Event::Applied { application, .. } => Some(*application),
            _ => None,
        })
        .expect("a request was filed")
}
