//! A reference model of requests for help, ballots, outcomes and lump-sum payouts: the rules of
//! docs/protocol.md §5.1 and §5.3–§5.7 and §5.11 written the obvious way — every vote kept and
//! the approved share found by trying each share from 100 down, every gift account drawn one by
//! one in proportion to its balance (O(members) per draw) — and run side by side with the state
//! machine, which does the same in O(1) (yes-weight buckets by percent, one running product for
//! the pool), over random transactions and months of block time.
//!
//! After every block: each transaction's outcome (applied, or the same rejection), every
//! account's balance of the society's asset, the common fund, what the society owes, the pool's
//! total, each request's status, deadline, approved amount and what it was paid, exactly; and
//! each gift account within one base unit (the state machine derives it from a scaled position
//! rounded down; the reference keeps 64 fractional bits).
//!
//! What karma is, is the other reference's subject (`reference.rs`): here the inputs that depend
//! on it are read from the state machine — a vote's weight as recorded, the society's total karma
//! frozen on the ballot — and a vote refused for having no weight, or a request for more than the
//! requester's maximum benefit, is taken as the state machine's answer once every check before
//! it agrees. Members pay far ahead so that all stay in good
//! standing, and nobody leaves (an exit's rounding dust would stay in the pool's total).
//!
//! `KASSA_REFERENCE_SEEDS=N` runs N seeds (default 8), each 400 blocks.

mod common;

use common::*;
use kassa_state::records::RequestStatus;
use kassa_state::testkit::SplitMix as Rng;
use kassa_types::rules::Rules;
use kassa_types::tx::{Body, Memo};
use kassa_types::{Hash, Rejection, RequestId};
use std::collections::{BTreeMap, VecDeque};

const MEMBERS: usize = 6;
const PLEDGE: u64 = 100;
/// Fractional bits of the reference's gift balances.
const FRACTION: u32 = 64;
/// A period may draw at most this share of the pool, and no gift account may lose more.
const MAX_DRAW_BPS: u32 = 100;
const ONE: u128 = 1 << 64;

fn rules() -> Rules {
    let mut r = fast_rules(PLEDGE, 1_000);
    r.min_members = 1;
    r.waiting_periods = 0;
    r.auto_share = true;
    r.max_draw_bps = MAX_DRAW_BPS;
    r.gift_cap_pledges = 1_000;
    r.max_request = 5_000;
    r
}

/// A request for help as the reference keeps it.
#[derive(Clone, Debug)]
struct Req {
    requester: usize,
    amount: u64,
    bond: u64,
    /// Every vote: voter → (approve, percent, weight).
    votes: BTreeMap<usize, (bool, u8, u128)>,
    /// The society's total karma at the start of the filing period (frozen on the ballot).
    total_karma: u128,
    deadline_ms: u64,
    window_ms: u64,
    extended: bool,
    status: RequestStatus,
    approved: u64,
    paid: u64,
}

impl Req {
    /// §5.5: the largest share `s` whose yes-weight (votes for at least `s`) passes, trying every
    /// share in turn and summing every vote each time.
    fn share(&self, net_bps: u32, quorum_bps: u32) -> Option<u8> {
        let net = (self.total_karma * u128::from(net_bps)).div_ceil(10_000);
        let quorum = (self.total_karma * u128::from(quorum_bps)).div_ceil(10_000);
        let weight = |f: &dyn Fn(bool, u8) -> bool| -> u128 {
            self.votes
                .values()
                .filter(|(a, p, _)| f(*a, *p))
                .map(|v| v.2)
                .sum()
        };
        let (yes, no) = (weight(&|a, _| a), weight(&|a, _| !a));
        (1..=100u8).rev().find(|&s| {
            let yes_s = weight(&|a, p| a && p >= s);
            let no_s = no + (yes - yes_s);
            yes_s > 0 && yes_s >= no_s && yes_s - no_s >= net && yes_s >= quorum
        })
    }

    fn need(&self) -> u64 {
        self.approved - self.paid
    }

    fn in_progress(&self) -> bool {
        matches!(self.status, RequestStatus::Open | RequestStatus::Approved)
    }
}

/// The society's money as the reference keeps it.
#[derive(Clone, Debug)]
struct Model {
    /// The society's asset in each account (members first, then the outsiders).
    accounts: Vec<u64>,
    /// Each member's gift account, with [`FRACTION`] fractional bits.
    gift: Vec<u128>,
    /// The pool's total: what was paid in less what was drawn.
    total: u64,
    common: u64,
    owed: u128,
    /// The last period rolled, the pool's total then, and what was drawn since.
    rolled: u64,
    pool_start: u64,
    drawn: u64,
    /// What each gift account has kept since the period began, in 64-bit fixed point (draws are
    /// pro rata, so every account keeps the same fraction).
    retained: u128,
    requests: Vec<Req>,
    queue: VecDeque<usize>,
    seen: BTreeMap<&'static str, u64>,
}

/// The chain's id of the reference's request `i`: requests filed before the run (none, or
/// applications) come first.
fn chain_id(base: u64, i: usize) -> RequestId {
    RequestId(base + i as u64)
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Contribute(u64),
    File(u64),
    Vote(usize, bool, u8),
    Finalize(usize),
    Settle,
}

impl Model {
    fn saw(&mut self, what: &'static str) {
        *self.seen.entry(what).or_default() += 1;
    }

    /// Draws `d` from every gift account in proportion to its balance, one by one.
    fn draw(&mut self, d: u64) {
        let total = u128::from(self.total);
        for g in &mut self.gift {
            *g = *g * (total - u128::from(d)) / total;
        }
        self.retained = self.retained * (total - u128::from(d)) / total;
        self.total -= d;
        self.drawn += d;
        if d == u64::try_from(total).unwrap() {
            self.saw("pool emptied");
        }
    }

    /// §5.7: the queue in approval order, the common fund first, then the period's budget.
    fn settle(&mut self) {
        while let Some(&id) = self.queue.front() {
            let from_common = self.requests[id].need().min(self.common);
            self.common -= from_common;
            self.pay(id, from_common);
            // The period's budget, and the largest draw after which every account keeps
            // `1 − max_draw_bps` of what it held when the period began.
            let budget = (u128::from(self.pool_start) * u128::from(MAX_DRAW_BPS) / 10_000)
                .saturating_sub(u128::from(self.drawn));
            let floor = ONE * u128::from(10_000 - MAX_DRAW_BPS) / 10_000;
            let total = u128::from(self.total);
            let fraction = match self.retained {
                0 => 0,
                kept => total - (total * floor).div_ceil(kept).min(total),
            };
            let d = u64::try_from(
                u128::from(self.requests[id].need())
                    .min(budget)
                    .min(fraction),
            )
            .unwrap();
            if d > 0 {
                self.draw(d);
                self.pay(id, d);
                self.saw("pro-rata draw");
            }
            if self.requests[id].need() > 0 {
                self.saw("queue waits for the next budget");
                break;
            }
            self.requests[id].status = RequestStatus::Paid;
            self.queue.pop_front();
        }
    }

    fn pay(&mut self, id: usize, amount: u64) {
        let r = &mut self.requests[id];
        r.paid += amount;
        self.accounts[r.requester] += amount;
        self.owed -= u128::from(amount);
    }

    /// What every society transaction does first: a new period's budget, then the queue.
    fn open(&mut self, now: u64) {
        if now > self.rolled {
            self.rolled = now;
            self.pool_start = self.total;
            self.drawn = 0;
            self.retained = ONE;
        }
        self.settle();
    }

    /// Applies one transaction. `weight` is the vote's weight as the state machine recorded it,
    /// `karma_refused` whether it found the amount beyond the requester's maximum benefit.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        who: usize,
        op: Op,
        now: u64,
        time_ms: u64,
        weight: Option<u128>,
        karma_refused: bool,
        total_karma: u128,
    ) -> Result<(), Rejection> {
        let r = rules();
        self.open(now);
        match op {
            Op::Contribute(amount) => {
                self.accounts[who] -= amount;
                self.gift[who] += u128::from(amount) << FRACTION;
                self.total += amount;
            }
            Op::File(amount) => {
                if self
                    .requests
                    .iter()
                    .any(|q| q.requester == who && q.in_progress())
                {
                    return Err(Rejection::OpenRequestExists);
                }
                if amount > r.max_request {
                    return Err(Rejection::ExceedsMaxRequest);
                }
                let bond = (PLEDGE * u64::from(r.bond_bps)).div_ceil(10_000);
                if karma_refused {
                    return Err(Rejection::ExceedsMaximumBenefit);
                }
                self.accounts[who] -= bond;
                self.owed += u128::from(amount);
                let window_ms = r.voting_window_secs * 1_000;
                self.requests.push(Req {
                    requester: who,
                    amount,
                    bond,
                    votes: BTreeMap::new(),
                    total_karma,
                    deadline_ms: time_ms + window_ms,
                    window_ms,
                    extended: false,
                    status: RequestStatus::Open,
                    approved: 0,
                    paid: 0,
                });
                self.saw("filed");
            }
            Op::Vote(id, approve, percent) => {
                let req = self.requests.get(id).ok_or(Rejection::UnknownRequest)?;
                if req.status != RequestStatus::Open {
                    return Err(Rejection::AlreadyFinalized);
                }
                if time_ms >= req.deadline_ms {
                    return Err(Rejection::VotingClosed);
                }
                if req.requester == who {
                    return Err(Rejection::CannotVoteOnOwnRequest);
                }
                // A first vote fixes the weight; a change keeps it.
                let weight = match req.votes.get(&who) {
                    Some(v) => v.2,
                    None => weight.ok_or(Rejection::NoVotingWeight)?,
                };
                let before = req.share(r.approval_net_bps, r.quorum_bps);
                let req = &mut self.requests[id];
                req.votes.insert(who, (approve, percent, weight));
                let after = req.share(r.approval_net_bps, r.quorum_bps);
                if after != before
                    && !req.extended
                    && time_ms >= req.deadline_ms - req.window_ms / 10
                {
                    req.deadline_ms += req.window_ms / 10;
                    req.extended = true;
                    self.saw("late vote extended the deadline");
                }
            }
            Op::Finalize(id) => {
                let req = self.requests.get(id).ok_or(Rejection::UnknownRequest)?;
                if req.status != RequestStatus::Open {
                    return Err(Rejection::AlreadyFinalized);
                }
                if time_ms < req.deadline_ms {
                    return Err(Rejection::VotingStillOpen);
                }
                let (requester, bond, amount) = (req.requester, req.bond, req.amount);
                match req.share(r.approval_net_bps, r.quorum_bps) {
                    None => {
                        self.common += bond;
                        self.owed -= u128::from(amount);
                        self.requests[id].status = RequestStatus::Rejected;
                        self.saw("rejected");
                    }
                    Some(s) => {
                        self.accounts[requester] += bond;
                        let unit = amount * u64::from(s) / 100;
                        self.owed -= u128::from(amount - unit);
                        let req = &mut self.requests[id];
                        req.approved = unit;
                        if unit == 0 {
                            req.status = RequestStatus::Paid;
                        } else {
                            req.status = RequestStatus::Approved;
                            self.queue.push_back(id);
                        }
                        self.saw(if s < 100 {
                            "approved in part"
                        } else {
                            "approved"
                        });
                    }
                }
                self.settle();
            }
            Op::Settle => {}
        }
        Ok(())
    }
}

fn body(op: Op, soc: kassa_types::SocietyId, base: u64) -> Body {
    match op {
        Op::Contribute(amount) => Body::Contribute {
            society: soc,
            amount,
        },
        Op::File(amount) => Body::FileRequest {
            society: soc,
            amount,
            evidence_hash: Hash::of(&[b"a doctor's note"]),
            memo: Memo::new("sick leave").unwrap(),
            payee: None,
            installments: 0,
        },
        Op::Vote(id, approve, percent) => Body::Vote {
            request: chain_id(base, id),
            approve,
            percent,
        },
        Op::Finalize(id) => Body::Finalize {
            request: chain_id(base, id),
        },
        Op::Settle => Body::Settle { society: soc },
    }
}

/// Compares the state machine with the reference after a block.
fn compare(f: &Fund, model: &Model, base: u64, block: u64) {
    let at = |what: &str| format!("block {block}: {what}");
    let (_, book) = kassa_state::view::society(&f.chain.st, f.soc).unwrap();
    for (i, k) in f.members.iter().enumerate() {
        assert_eq!(
            f.chain.balance(&k.address(), f.asset),
            model.accounts[i],
            "{}",
            at(&format!("member {i}'s balance"))
        );
        let v =
            kassa_state::view::member(&f.chain.st, f.soc, &k.address(), f.chain.time_ms).unwrap();
        let expected = model.gift[i] >> FRACTION;
        assert!(
            u128::from(v.gift_balance).abs_diff(expected) <= 1,
            "{}: {} where the reference has {expected}",
            at(&format!("member {i}'s gift account")),
            v.gift_balance
        );
    }
    assert_eq!(book.common, model.common, "{}", at("common fund"));
    assert_eq!(book.owed, model.owed, "{}", at("owed"));
    assert_eq!(book.pool.total, model.total, "{}", at("pool total"));
    for (id, r) in model.requests.iter().enumerate() {
        let real = kassa_state::view::request(&f.chain.st, chain_id(base, id)).unwrap();
        let what = at(&format!("request {id}"));
        assert_eq!(real.status, r.status, "{what}: status");
        assert_eq!(real.approved, r.approved, "{what}: approved");
        assert_eq!(real.paid, r.paid, "{what}: paid");
        assert_eq!(real.ballot.deadline_ms, r.deadline_ms, "{what}: deadline");
    }
}

fn run(seed: u64, blocks: u64) -> (u64, BTreeMap<&'static str, u64>) {
    let mut rng = Rng(seed);
    let mut f = Fund::new(MEMBERS, rules(), 2);
    // Everyone pays 150 periods ahead: all stay in good standing through the run.
    f.contribute_all(150 * PLEDGE);
    let (_, book) = kassa_state::view::society(&f.chain.st, f.soc).unwrap();
    let mut model = Model {
        accounts: f
            .members
            .iter()
            .map(|k| f.chain.balance(&k.address(), f.asset))
            .collect(),
        gift: f
            .members
            .iter()
            .map(|k| {
                let v =
                    kassa_state::view::member(&f.chain.st, f.soc, &k.address(), f.chain.time_ms)
                        .unwrap();
                u128::from(v.gift_balance) << FRACTION
            })
            .collect(),
        total: book.pool.total,
        common: book.common,
        owed: book.owed,
        rolled: book.rolled,
        pool_start: book.start.pool.total,
        drawn: book.drawn_in_period,
        retained: book.retained_in_period,
        requests: Vec::new(),
        queue: VecDeque::new(),
        seen: BTreeMap::new(),
    };
    let (meta, _) = kassa_state::view::society(&f.chain.st, f.soc).unwrap();
    let base = (0..)
        .find(|i| kassa_state::view::request(&f.chain.st, RequestId(*i)).is_none())
        .unwrap();
    let window_ms = rules().voting_window_secs * 1_000;
    let mut txs = 0;
    for block in 0..blocks {
        f.chain.advance_ms(match rng.below(8) {
            0..=4 => rng.below(window_ms / 4),
            5 => window_ms / 2 + rng.below(window_ms),
            6 => f.period_ms / 2 + rng.below(f.period_ms),
            _ => f.period_ms * (1 + rng.below(3)),
        });
        let time_ms = f.chain.time_ms + 1;
        let now = meta.period_at(time_ms);
        let mut signers: Vec<usize> = (0..MEMBERS).collect();
        let mut batch = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let who = signers.remove(rng.idx(signers.len()));
            // Mostly a request still open; sometimes any id, one past the last included.
            let known = model.requests.len();
            let open: Vec<usize> = (0..known)
                .filter(|i| model.requests[*i].status == RequestStatus::Open)
                .collect();
            let pick = |rng: &mut Rng| match rng.chance(80) {
                true if !open.is_empty() => open[rng.idx(open.len())],
                _ => rng.idx(known + 1),
            };
            let op = match rng.below(20) {
                0..=3 => Op::Contribute([0, PLEDGE, 5 * PLEDGE, 40 * PLEDGE][rng.idx(4)]),
                4..=6 => Op::File([1, 150, 900, 2_500, 6_000][rng.idx(5)]),
                7..=14 => {
                    // A no-vote carries 100 (anything else is malformed).
                    let approve = rng.chance(85);
                    let percent = if approve {
                        [100, 100, 60, 30, 1][rng.idx(5)]
                    } else {
                        100
                    };
                    Op::Vote(pick(&mut rng), approve, percent)
                }
                15..=18 => Op::Finalize(pick(&mut rng)),
                _ => Op::Settle,
            };
            batch.push((
                who,
                op,
                f.chain.sign(&f.members[who].clone(), body(op, f.soc, base)),
            ));
            if signers.is_empty() {
                break;
            }
        }
        let signed: Vec<_> = batch.iter().map(|(_, _, t)| t.clone()).collect();
        let results = f.chain.block(&signed);
        for ((who, op, _), result) in batch.iter().zip(results) {
            let real = match result {
                Ok(receipt) => receipt.rejection().map_or(Ok(()), Err),
                Err(r) => Err(r),
            };
            // The inputs that depend on karma, as the state machine has them.
            let weight = match op {
                Op::Vote(id, ..) => {
                    kassa_state::view::votes(&f.chain.st, chain_id(base, *id), None, MEMBERS)
                        .and_then(|page| {
                            page.items
                                .into_iter()
                                .find(|(a, _)| *a == f.members[*who].address())
                                .map(|(_, v)| v.weight)
                        })
                }
                _ => None,
            };
            let total_karma = match op {
                Op::File(_) if real.is_ok() => {
                    kassa_state::view::request(&f.chain.st, chain_id(base, model.requests.len()))
                        .unwrap()
                        .ballot
                        .start
                        .total_karma
                }
                _ => 0,
            };
            // Whether the state machine found the requester's karma too low for the amount
            // (karma is not modelled here: its maximum benefit is taken as the state machine's).
            let karma_refused = real == Err(Rejection::ExceedsMaximumBenefit);
            let before = model.clone();
            let expected = model.apply(*who, *op, now, time_ms, weight, karma_refused, total_karma);
            if expected.is_err() {
                // A refused transaction changes nothing (not even the period's roll).
                let seen = std::mem::take(&mut model.seen);
                model = before;
                model.seen = seen;
            }
            assert_eq!(
                real,
                expected,
                "seed {seed}, block {block}: member {who} {op:?} at {time_ms} ms, period {now}; \
                 the block: {:?}",
                batch.iter().map(|(w, o, _)| (*w, *o)).collect::<Vec<_>>()
            );
            if expected == Err(Rejection::NoVotingWeight) {
                model.saw("no voting weight");
            }
            txs += 1;
        }
        compare(&f, &model, base, block);
    }
    (txs, model.seen)
}

#[test]
fn outcomes_and_pro_rata_payouts_agree_with_a_reference_that_loops_over_every_vote_and_gift_account()
 {
    let seeds = reference_seeds();
    let mut txs = 0;
    let mut seen: BTreeMap<&str, u64> = BTreeMap::new();
    for seed in 0..seeds {
        let (t, s) = run(seed, 400);
        txs += t;
        for (k, v) in s {
            *seen.entry(k).or_default() += v;
        }
    }
    eprintln!("{seeds} seeds: {txs} transactions; {seen:?}");
    assert_seen(
        &seen,
        &[
            "filed",
            "approved",
            "approved in part",
            "rejected",
            "pro-rata draw",
            "queue waits for the next budget",
            "late vote extended the deadline",
        ],
    );
}
