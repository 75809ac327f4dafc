//! A reference model of membership, dues, standing and contribution karma: the rules of
//! docs/protocol.md §3.4–§3.6, §3.8, §4.2, §4.4 and §6 (joining, paying, the full account, lapse
//! by time, reinstatement, pledge changes, leaving and withdrawing) written the obvious way — one
//! record per member with every price it ever had, karma summed period by period in plain loops,
//! totals summed over every member — and run side by side with the state machine over random
//! transactions and years of block time. Requests, votes and payouts are not modelled here.
//!
//! After every block, for every account: the same outcome of each transaction (applied, or the
//! same rejection), the same account and gift balances, dues clock, standing and member counts,
//! exactly; and the same karma now, karma at the start of the period (what weighs votes) and
//! society total, within the rounding bound of [`KARMA_SLACK`] whole units. The state machine
//! gets there in O(1) per transaction (checkpoints, lapse buckets, the dues rate); the reference
//! in O(members × periods).
//!
//! `KASSA_REFERENCE_SEEDS=N` runs N seeds (default 8), each 1,500 blocks.

mod common;

use common::*;
use kassa_state::fixed::decay;
use kassa_state::pool::{KARMA_FRACTION_BITS, half_karma};
use kassa_state::records::MemberStatus;
use kassa_state::testkit::SplitMix as Rng;
use kassa_types::rules::Rules;
use kassa_types::tx::Body;
use kassa_types::{AssetId, Rejection, SocietyId};
use std::collections::BTreeMap;

const ACCOUNTS: usize = 8;
const PLEDGE: u64 = 100;
const USDK: u64 = 10_000_000;
/// How far (whole units) the state machine's karma may be from the reference's: the state
/// machine decays sums where the reference sums decayed terms, each decay rounding down by less
/// than one fixed-point step (2^-32 of a unit), so the difference stays far below one unit; one
/// unit of slack covers a value that falls either side of a whole number.
const KARMA_SLACK: u128 = 1;
/// The society's karma half-life, in periods.
const HALF_LIFE: u32 = 6;

fn rules() -> Rules {
    let mut r = fast_rules(PLEDGE, 1_000);
    r.min_members = 1;
    r.waiting_periods = 0;
    r.notice_periods = 0;
    r.gift_cap_pledges = 40;
    r.karma_half_life_periods = HALF_LIFE;
    r
}

/// A member's prices, every one they ever had: (first period, price), in order.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pledge(Vec<(u64, u64)>);

impl Pledge {
    fn new(pledge: u64) -> Pledge {
        Pledge(vec![(0, pledge)])
    }

    fn price(&self, p: u64) -> u64 {
        self.0
            .iter()
            .rev()
            .find(|(from, _)| *from <= p)
            .map_or(self.0[0].1, |(_, price)| *price)
    }

    /// A new price from period `from` on (replacing one not yet in force).
    fn change(&mut self, from: u64, pledge: u64) {
        self.0.retain(|(f, _)| *f < from);
        self.0.push((from, pledge));
    }
}

/// One member as the reference keeps it.
#[derive(Clone, Debug)]
struct Member {
    leaving: bool,
    pledge: Pledge,
    paid_until: u64,
    dues_credit: u64,
    lapse_at: u64,
    /// First period whose contribution karma counts.
    karma_from: u64,
    gift: u64,
}

impl Member {
    fn in_standing(&self, now: u64) -> bool {
        !self.leaving && now < self.lapse_at
    }
}

/// What a checkpoint of an account holds: (period, paid_until, lapse_at, karma_from, pledge
/// clock). An exit or notice writes one worth nothing (`lapse_at` 0). Checkpoints belong to the
/// address and outlive a membership.
type Checkpoint = (u64, u64, u64, u64, Pledge);

/// Contribution karma (fixed point) of the paid periods `from..until` that have arrived by
/// period `at`, each worth half its price decayed from its own period: a plain loop.
fn dues_karma(pledge: &Pledge, from: u64, until: u64, at: u64, h: u32) -> u128 {
    (from..until.min(at + 1))
        .map(|p| decay(half_karma(pledge.price(p)), at - p, h))
        .sum()
}

fn whole(raw: u128) -> u128 {
    raw >> KARMA_FRACTION_BITS
}

/// The society as the reference keeps it.
#[derive(Default)]
struct Reference {
    members: BTreeMap<usize, Member>,
    /// USDK in each account.
    accounts: BTreeMap<usize, u64>,
    checkpoints: BTreeMap<usize, Vec<Checkpoint>>,
    /// What happened, to show the runs reach every rule.
    seen: BTreeMap<&'static str, u64>,
}

impl Reference {
    fn karma_now(&self, m: &Member, now: u64) -> u128 {
        if !m.in_standing(now) {
            return 0;
        }
        dues_karma(&m.pledge, m.karma_from, m.paid_until, now, HALF_LIFE)
    }

    /// Writes account `who`'s checkpoint of period `now` (replacing one of the same period).
    fn checkpoint(&mut self, who: usize, now: u64) {
        let c = match self.members.get(&who) {
            Some(m) if !m.leaving => (
                now,
                m.paid_until,
                m.lapse_at,
                m.karma_from,
                m.pledge.clone(),
            ),
            _ => (now, 0, 0, 0, Pledge::new(PLEDGE)),
        };
        let list = self.checkpoints.entry(who).or_default();
        if list.last().is_some_and(|t| t.0 == now) {
            list.pop();
        }
        list.push(c);
    }

    /// Karma at the start of period `now`: from the account's last checkpoint of an earlier
    /// period (of this membership or, if it began this period, of the one before).
    fn karma_at_start(&self, who: usize, now: u64) -> u128 {
        let list = self.checkpoints.get(&who).map_or(&[][..], Vec::as_slice);
        match list.iter().rev().find(|t| t.0 < now) {
            Some((_, paid_until, lapse_at, karma_from, pledge)) if *lapse_at > now => {
                dues_karma(pledge, *karma_from, *paid_until, now, HALF_LIFE)
            }
            _ => 0,
        }
    }

    fn apply(&mut self, who: usize, op: &Op, now: u64) -> Result<(), Rejection> {
        let r = rules();
        let cap_of = |m: &Member| m.pledge.price(now) * u64::from(r.gift_cap_pledges);
        match *op {
            Op::Join => {
                if self.members.contains_key(&who) {
                    return Err(Rejection::AlreadyMember);
                }
                let m = Member {
                    leaving: false,
                    pledge: Pledge::new(PLEDGE),
                    paid_until: now,
                    dues_credit: 0,
                    lapse_at: now + u64::from(r.grace_periods),
                    karma_from: now,
                    gift: 0,
                };
                self.members.insert(who, m);
            }
            Op::Contribute(amount) => {
                let m = self.members.get_mut(&who).ok_or(Rejection::NotMember)?;
                if m.leaving {
                    return Err(Rejection::MemberLeaving);
                }
                let cap = cap_of(m);
                if amount > 0 && m.gift + amount > cap {
                    *self.seen.entry("gift account full").or_default() += 1;
                    return Err(Rejection::GiftAccountCapExceeded);
                }
                let account = self.accounts.get_mut(&who).expect("funded");
                *account = account
                    .checked_sub(amount)
                    .ok_or(Rejection::InsufficientBalance)?;
                let was_lapsed = now >= m.lapse_at;
                let paid_before = m.paid_until;
                m.gift += amount;
                // Whole periods in order, each at its own price.
                let mut credit = m.dues_credit + amount;
                while credit >= m.pledge.price(m.paid_until) {
                    credit -= m.pledge.price(m.paid_until);
                    m.paid_until += 1;
                }
                m.dues_credit = credit;
                if m.gift + m.pledge.price(now) > cap && m.paid_until <= now {
                    m.paid_until = now + 1;
                    *self.seen.entry("full account renewed").or_default() += 1;
                }
                if m.paid_until != paid_before {
                    m.lapse_at = m.paid_until + u64::from(r.grace_periods);
                }
                // Reinstated: the arrears, and whatever was earned before the lapse, earn none.
                if was_lapsed && now < m.lapse_at {
                    m.karma_from = m.karma_from.max(now);
                    *self.seen.entry("reinstated").or_default() += 1;
                }
                if m.paid_until > now + 3 {
                    *self.seen.entry("paid ahead").or_default() += 1;
                }
            }
            Op::ChangePledge(pledge) => {
                let m = self.members.get_mut(&who).ok_or(Rejection::NotMember)?;
                if m.leaving {
                    return Err(Rejection::MemberLeaving);
                }
                if now >= m.lapse_at {
                    return Err(Rejection::NotInGoodStanding);
                }
                if !(r.min_pledge..=r.max_pledge).contains(&pledge) {
                    return Err(Rejection::PledgeOutOfRange);
                }
                if pledge == m.pledge.price(now + 1) || m.paid_until > now + 1 {
                    return Err(Rejection::PledgeChangeNotAllowed);
                }
                m.pledge.change(now + 1, pledge);
                *self.seen.entry("pledge changed").or_default() += 1;
            }
            Op::Leave => {
                let m = self.members.get_mut(&who).ok_or(Rejection::NotMember)?;
                if m.leaving {
                    return Err(Rejection::AlreadyLeaving);
                }
                m.leaving = true;
            }
            Op::Withdraw => {
                let m = self.members.get(&who).ok_or(Rejection::NotMember)?;
                if !m.leaving {
                    return Err(Rejection::NotLeaving);
                }
                // Nothing is owed in this society, so the exit refunds the whole gift account.
                *self.accounts.get_mut(&who).expect("funded") += m.gift;
                self.members.remove(&who);
                *self.seen.entry("withdrew").or_default() += 1;
            }
        }
        self.checkpoint(who, now);
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Join,
    Contribute(u64),
    ChangePledge(u64),
    Leave,
    Withdraw,
}

fn body(op: Op, soc: SocietyId) -> Body {
    match op {
        Op::Join => Body::Join {
            society: soc,
            pledge: PLEDGE,
            identity_commitment: None,
        },
        Op::Contribute(amount) => Body::Contribute {
            society: soc,
            amount,
        },
        Op::ChangePledge(pledge) => Body::ChangePledge {
            society: soc,
            pledge,
        },
        Op::Leave => Body::Leave { society: soc },
        Op::Withdraw => Body::Withdraw { society: soc },
    }
}

/// Compares the state machine with the reference after a block; returns how many values it
/// compared.
fn compare(chain: &Chain, model: &Reference, soc: SocietyId, asset: AssetId, block: u64) -> u64 {
    let (meta, book) = kassa_state::view::society(&chain.st, soc).unwrap();
    let now = meta.period_at(chain.time_ms);
    let mut compared = 0;
    for i in 0..ACCOUNTS {
        let who = key(i).address();
        let at = format!("block {block}, period {now}, account {i}");
        assert_eq!(chain.balance(&who, asset), model.accounts[&i], "{at}: USDK");
        let real = kassa_state::view::member(&chain.st, soc, &who, chain.time_ms);
        let Some(m) = model.members.get(&i) else {
            assert!(real.is_none(), "{at}: a member the reference does not have");
            continue;
        };
        let v = real.unwrap_or_else(|| panic!("{at}: the reference has a member the chain lacks"));
        assert_eq!(
            matches!(v.status, MemberStatus::Leaving { .. }),
            m.leaving,
            "{at}: leaving"
        );
        assert_eq!(v.gift_balance, m.gift, "{at}: gift account");
        assert_eq!(v.paid_until, m.paid_until, "{at}: paid until");
        assert_eq!(v.lapse_at, m.lapse_at, "{at}: lapse at");
        assert_eq!(v.good_standing, m.in_standing(now), "{at}: standing");
        let (karma, start) = (
            whole(model.karma_now(m, now)),
            whole(model.karma_at_start(i, now)),
        );
        // The view splits karma now into what the record holds and the paid periods that have
        // arrived since (each rounded down to whole units).
        let real_karma = v.karma + v.karma_pending;
        assert!(
            real_karma.abs_diff(karma) <= KARMA_SLACK + 1,
            "{at}: karma {real_karma} where the reference has {karma} ({m:?})\n{v:?}"
        );
        // A leaving member cannot vote; what their checkpoints say is not compared.
        assert!(
            m.leaving || v.karma_at_period_start.abs_diff(start) <= KARMA_SLACK,
            "{at}: karma at the start of the period {} where the reference has {start} ({m:?})",
            v.karma_at_period_start
        );
        compared += 7;
    }
    assert_eq!(
        book.member_count,
        u64::try_from(model.members.values().filter(|m| !m.leaving).count()).unwrap(),
        "block {block}: member count"
    );
    // The standing count and the total are brought to the current period by the society's
    // first transaction in it (the roll); before that they are as of the last roll.
    if book.rolled == now {
        let standing: Vec<&Member> = model
            .members
            .values()
            .filter(|m| m.in_standing(now))
            .collect();
        assert_eq!(
            book.standing_count,
            u64::try_from(standing.len()).unwrap(),
            "block {block}: standing count"
        );
        let total: u128 = standing.iter().map(|m| model.karma_now(m, now)).sum();
        let real = kassa_state::view::total_karma(&meta, &book, chain.time_ms);
        let slack = KARMA_SLACK * u128::try_from(ACCOUNTS).unwrap();
        assert!(
            whole(real).abs_diff(whole(total)) <= slack,
            "block {block}, period {now}: total karma {} where the reference has {}",
            whole(real),
            whole(total)
        );
        compared += 2;
    }
    compared + 1
}

/// One seeded run; returns (transactions, values compared, what happened).
fn run(seed: u64, blocks: u64) -> (u64, u64, BTreeMap<&'static str, u64>) {
    let mut rng = Rng(seed);
    let mut chain = Chain::new(ACCOUNTS);
    let asset = chain.stable_asset(ACCOUNTS, USDK);
    let soc = chain.society(&key(0), asset, rules());
    let (meta, _) = kassa_state::view::society(&chain.st, soc).unwrap();
    let mut model = Reference::default();
    for i in 0..ACCOUNTS {
        model.accounts.insert(i, USDK);
    }
    // The founder joined with the society, paying nothing yet.
    model
        .apply(0, &Op::Join, meta.period_at(chain.time_ms))
        .unwrap();
    let period_ms = rules().period_secs * 1_000;
    let (mut txs, mut compared) = (0, 0);
    for block in 0..blocks {
        chain.advance_ms(match rng.below(10) {
            0..=4 => 1_000 * rng.below(30),
            5..=7 => period_ms / 2 + rng.below(period_ms),
            8 => period_ms * (1 + rng.below(4)),
            _ => period_ms * rng.below(12),
        });
        // The block's time is one millisecond later (the test chain's pacing).
        let now = meta.period_at(chain.time_ms + 1);
        let mut signers: Vec<usize> = (0..ACCOUNTS).collect();
        let mut batch = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let who = signers.remove(rng.idx(signers.len()));
            let op = match rng.below(22) {
                0..=1 => Op::Join,
                20 | 21 => Op::ChangePledge([50, 100, 150, 300, 1_000, 1_001][rng.idx(6)]),
                2..=13 => Op::Contribute(match rng.below(8) {
                    0 => 0,
                    1 => PLEDGE / 2,
                    2 | 3 => PLEDGE,
                    4 => 2 * PLEDGE,
                    5 => 3 * PLEDGE + 30,
                    6 => 7 * PLEDGE,
                    _ => 17 * PLEDGE,
                }),
                14..=15 => Op::Leave,
                _ => Op::Withdraw,
            };
            batch.push((who, op, chain.sign(&key(who), body(op, soc))));
            if signers.is_empty() {
                break;
            }
        }
        let signed: Vec<_> = batch.iter().map(|(_, _, t)| t.clone()).collect();
        let results = chain.block(&signed);
        for ((who, op, _), result) in batch.iter().zip(results) {
            let real = match result {
                Ok(receipt) => receipt.rejection().map_or(Ok(()), Err),
                Err(r) => Err(r),
            };
            let expected = model.apply(*who, op, now);
            assert_eq!(
                real, expected,
                "seed {seed}, block {block}: account {who} {op:?} in period {now}"
            );
            txs += 1;
        }
        let lapsed = model
            .members
            .values()
            .filter(|m| !m.leaving && now >= m.lapse_at);
        *model.seen.entry("lapsed members").or_default() += u64::try_from(lapsed.count()).unwrap();
        compared += compare(&chain, &model, soc, asset, block);
    }
    (txs, compared, model.seen)
}

#[test]
fn dues_standing_and_karma_agree_with_a_reference_that_loops_over_every_member_and_period() {
    let seeds = reference_seeds();
    let (mut txs, mut compared) = (0, 0);
    let mut seen: BTreeMap<&str, u64> = BTreeMap::new();
    for seed in 0..seeds {
        let (t, c, s) = run(seed, 1_500);
        txs += t;
        compared += c;
        for (k, v) in s {
            *seen.entry(k).or_default() += v;
        }
    }
    eprintln!("{seeds} seeds: {txs} transactions, {compared} values compared; {seen:?}");
    assert!(txs > 1_000 * seeds, "{txs} transactions");
    assert_seen(
        &seen,
        &[
            "gift account full",
            "full account renewed",
            "reinstated",
            "paid ahead",
            "withdrew",
            "lapsed members",
            "pledge changed",
        ],
    );
}
