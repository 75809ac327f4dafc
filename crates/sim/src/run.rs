//! The engine: a chain in memory, one society, and synthetic members who send real
//! transactions through [`kassa_state::apply_tx_with`] — the function a block applies — with
//! signatures and consensus skipped (they change no outcome). Whatever the state machine refuses
//! is refused here too, and counted.
//!
//! A period is three blocks: dues, exits, payments and decisions first; then misfortunes are
//! filed and gifts given; then the votes on what was filed. After every period the invariants of
//! docs/protocol.md §9 are audited over the whole state.

use crate::report::{AttackResult, Report, Row, Summary};
use crate::rng::{Dice, Draw};
use crate::scenario::{Scenario, ScenarioError, Strategy};
use crate::store::SimStore;
use kassa_state::records::{Book, ChainParams, Event, Member, MemberStatus, RequestStatus};
use kassa_state::{BlockContext, Genesis, audit, exec, keys, view};
use kassa_types::rules::{BPS, Rules};
use kassa_types::tx::{Body, ChainId, Memo, Purpose, SocietyName, Symbol, Transaction};
use kassa_types::{
    Address, AssetId, Hash, Rejection, RequestId, SecretKey, Signature, SignedTransaction,
    SocietyId,
};
use std::collections::BTreeMap;

/// Why a run stopped without a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A §9 invariant failed: a bug of the state machine, never of the scenario.
    #[error("period {period}: {violation}")]
    Invariant {
        period: u32,
        violation: audit::Violation,
    },
    #[error("stopped before the end")]
    Stopped,
}

/// Progress of a run: periods done out of the total, over both the run and its honest twin.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64) -> bool;

/// Runs a scenario with a seed. For each attack strategy played, the same world is run again
/// with that strategy's players behaving honestly (the other attackers still attacking), so that
/// what the strategy earns over honesty is measured in the world it was played in (see
/// [`AttackResult`]). `progress` is called after every period; returning `false` stops the run.
pub fn simulate(
    sc: &Scenario,
    seed: u64,
    max_member_periods: u64,
    progress: Progress<'_>,
) -> Result<Report, SimError> {
    let rules = sc.validate(max_member_periods)?;
    let played: Vec<Strategy> = Strategy::ALL
        .into_iter()
        .filter(|s| sc.attackers.percent(*s) > 0)
        .collect();
    let runs = 1 + u64::try_from(played.len()).expect("six at most");
    let total = u64::from(sc.periods) * runs;
    let mut done = 0u64;
    let mut tick = |_: u32| {
        done += 1;
        progress(done, total)
    };
    let world = World::new(sc, rules.clone(), seed, None).run(&mut tick)?;
    let mut summary = world.summary();
    for s in played {
        let twin = World::new(sc, rules.clone(), seed, Some(s)).run(&mut tick)?;
        summary.attacks.push(world.attack_result(&twin, s));
    }
    Ok(Report {
        scenario: sc.name.clone(),
        seed,
        currency: sc.currency.clone(),
        decimals: sc.decimals,
        rows: world.rows,
        summary,
    })
}

/// What a member needs after a misfortune.
#[derive(Clone, Debug)]
enum Need {
    /// A lump sum still needed, given up after `patience_periods` unfiled.
    Lump { left: u64, until: u32 },
    /// A monthly amount for the periods still to come (this one included).
    Monthly { per: u64, months: u32 },
}

impl Need {
    fn total(&self) -> u128 {
        match *self {
            Need::Lump { left, .. } => u128::from(left),
            Need::Monthly { per, months } => u128::from(per) * u128::from(months),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    Applicant,
    Member,
    Leaving { until_ms: u64 },
    Gone,
}

#[derive(Clone, Debug)]
struct Agent {
    addr: Address,
    nonce: u64,
    /// The strategy this member is assigned (kept in the honest twin, to compare).
    plays: Option<Strategy>,
    /// Whether it is played in this world.
    attacking: bool,
    /// The sock puppet's master, or the master's puppet.
    puppet_of: Option<usize>,
    puppet: Option<usize>,
    high_risk: bool,
    pledge: u64,
    minted: u64,
    phase: Phase,
    delegate: bool,
    /// Skips dues before this period (a member fallen behind).
    behind_until: u32,
    /// The gift account was full last time: check in before paying.
    full: bool,
    need: Option<Need>,
    /// Whether the need is an attacker's pretext (attackers are healthy: every need they claim
    /// is backed by nothing, and voters who check the evidence see that).
    pretext: bool,
    /// The member's request in progress.
    request: Option<RequestId>,
    /// Period to join again at (after a run on the fund or an expulsion).
    rejoin: Option<u32>,
}

/// A request the simulation follows.
#[derive(Clone, Debug)]
struct Tracked {
    id: RequestId,
    requester: usize,
    deadline_ms: u64,
    /// What the need supports of what was asked (0: no need; applications: `asked`).
    supported: u128,
    asked: u128,
    application: bool,
    installments: bool,
    /// Number of installments asked (1 for a lump sum, which is filed with 0).
    count: u32,
    /// The period it was filed in (votes are cast then).
    filed: u32,
    decided: bool,
    /// A benefit whose last period has passed (nothing more to follow).
    over: bool,
    approved_at: Option<u32>,
    paid_at: Option<u32>,
}

struct World<'a> {
    sc: &'a Scenario,
    rules: Rules,
    dice: Dice,
    /// The strategy whose players behave honestly in this world (the twin of the real run).
    honest: Option<Strategy>,
    st: SimStore,
    params: ChainParams,
    ctx: BlockContext,
    soc: SocietyId,
    asset: AssetId,
    period_ms: u64,
    created_ms: u64,
    clerk: usize,
    agents: Vec<Agent>,
    delegates: Vec<usize>,
    tracked: Vec<Tracked>,
    by_id: BTreeMap<RequestId, usize>,
    period: u32,
    rows: Vec<Row>,
    stats_prev: kassa_state::records::Stats,
    last_cost_bps: u64,
    audit: Option<audit::Snapshot>,
    // Summary counters.
    txs: u64,
    refused: BTreeMap<&'static str, u64>,
    units: u64,
    units_on_time: u64,
    members_start: u64,
    peak_members: u64,
    ruin: Option<u32>,
    worst: (u64, u32),
}

const GENESIS_MS: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

impl<'a> World<'a> {
    fn new(sc: &'a Scenario, rules: Rules, seed: u64, honest: Option<Strategy>) -> World<'a> {
        let genesis = Genesis {
            chain_id: ChainId::new("kassa-sim").expect("short"),
            min_fee: 0,
            allocations: vec![],
            time_ms: GENESIS_MS,
            validators: vec![],
        };
        let mut st = SimStore::default();
        exec::init_genesis(&mut st, &genesis).expect("a fresh store");
        let params = exec::chain_params(&st).expect("genesis applied");
        let period_ms = rules.period_secs * 1000;
        World {
            sc,
            rules,
            dice: Dice::new(seed),
            honest,
            st,
            params,
            ctx: BlockContext {
                height: 0,
                time_ms: GENESIS_MS,
                proposer: Address([0; 32]),
            },
            soc: SocietyId(0),
            asset: AssetId(0),
            period_ms,
            created_ms: 0,
            clerk: 0,
            agents: vec![],
            delegates: vec![],
            tracked: vec![],
            by_id: BTreeMap::new(),
            period: 0,
            rows: vec![],
            stats_prev: Default::default(),
            last_cost_bps: 0,
            audit: None,
            txs: 0,
            refused: BTreeMap::new(),
            units: 0,
            units_on_time: 0,
            members_start: 0,
            peak_members: 0,
            ruin: None,
            worst: (0, 0),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Blocks and transactions.

    fn block(&mut self, time_ms: u64) {
        self.ctx.height += 1;
        self.ctx.time_ms = time_ms.max(self.ctx.time_ms);
        exec::begin_block(&mut self.st, &self.ctx).expect("height and time move forward");
    }

    fn period_start(&self, p: u32) -> u64 {
        self.created_ms + u64::from(p) * self.period_ms
    }

    /// Sends a transaction from agent `who`: its events, or why it was refused.
    fn send(&mut self, who: usize, body: Body) -> Result<Vec<Event>, Rejection> {
        let a = &self.agents[who];
        let stx = SignedTransaction {
            tx: Transaction {
                chain_id: self.params.chain_id.clone(),
                genesis: self.params.genesis_hash,
                signer: a.addr,
                nonce: a.nonce,
                fee: 0,
                expiry_height: u64::MAX,
                body,
            },
            signature: Signature([0; 64]),
        };
        let hash = stx.hash();
        let receipt =
            match exec::apply_tx_with(&mut self.st, &self.ctx, &self.params, &stx, hash, true) {
                Ok(r) => r,
                Err(r) => {
                    *self.refused.entry(r.name()).or_default() += 1;
                    return Err(r);
                }
            };
        self.agents[who].nonce += 1;
        self.txs += 1;
        match receipt.outcome {
            kassa_state::Outcome::Applied(events) => {
                self.observe(&events);
                Ok(events)
            }
            kassa_state::Outcome::Failed(code) => {
                let r = Rejection::from_code(code).expect("a registered code");
                *self.refused.entry(r.name()).or_default() += 1;
                Err(r)
            }
        }
    }

    /// Follows what happened to the requests and members the simulation tracks.
    fn observe(&mut self, events: &[Event]) {
        let p = self.period;
        for e in events {
            match e {
                Event::Finalized {
                    request,
                    approved,
                    percent,
                } => {
                    let Some(&t) = self.by_id.get(request) else {
                        continue;
                    };
                    let tr = &mut self.tracked[t];
                    tr.decided = true;
                    let who = tr.requester;
                    if *approved {
                        tr.approved_at = Some(p);
                        let covered = tr.asked * u128::from(*percent) / 100;
                        let count = tr.count;
                        let a = &mut self.agents[who];
                        match &mut a.need {
                            Some(Need::Lump { left, .. }) if !tr.application => {
                                *left =
                                    left.saturating_sub(u64::try_from(covered).unwrap_or(u64::MAX));
                                if *left == 0 {
                                    a.need = None;
                                }
                            }
                            Some(Need::Monthly { months, .. }) if !tr.application => {
                                *months = months.saturating_sub(count);
                                if *months == 0 {
                                    a.need = None;
                                }
                            }
                            _ => {}
                        }
                    } else if self.agents[who].request == Some(*request) {
                        self.agents[who].request = None;
                        // An honest member whose request was turned down lets it be.
                        if !self.agents[who].attacking {
                            self.agents[who].need = None;
                        }
                    }
                    if tr.application && !*approved {
                        self.agents[who].phase = Phase::Gone;
                    }
                }
                Event::RequestPaid { request } => {
                    if let Some(&t) = self.by_id.get(request) {
                        self.tracked[t].paid_at = Some(p);
                        let who = self.tracked[t].requester;
                        if self.agents[who].request == Some(*request) {
                            self.agents[who].request = None;
                        }
                    }
                }
                Event::Admitted { member, .. } => {
                    if let Some(i) = self.agents.iter().position(|a| a.addr == *member) {
                        self.agents[i].phase = Phase::Member;
                    }
                }
                Event::Left {
                    member, until_ms, ..
                } => {
                    if let Some(i) = self.agents.iter().rposition(|a| a.addr == *member) {
                        self.agents[i].phase = Phase::Leaving {
                            until_ms: *until_ms,
                        };
                    }
                }
                _ => {}
            }
        }
    }

    fn mint(&mut self, to: usize, amount: u64) {
        let addr = self.agents[to].addr;
        self.send(
            self.clerk,
            Body::Mint {
                asset: self.asset,
                to: addr,
                amount,
            },
        )
        .expect("the clerk issues the asset");
        self.agents[to].minted += amount;
    }

    fn book(&self) -> Book {
        exec::get(&self.st, &keys::book(self.soc)).expect("the society exists")
    }

    fn member(&self, who: usize) -> Option<Member> {
        exec::get(&self.st, &keys::member(self.soc, &self.agents[who].addr))
    }

    // -----------------------------------------------------------------------------------------
    // Members.

    fn new_agent(&mut self, puppet_of: Option<usize>) -> usize {
        let i = self.agents.len();
        let n = u64::try_from(i).expect("fits");
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&n.to_le_bytes());
        seed[8..16].copy_from_slice(b"kassasim");
        let addr = SecretKey::from_seed(seed).address();
        let m = &self.sc.members;
        let steps = (m.pledge_max - m.pledge_min) / m.pledge_step;
        let mut pledge =
            m.pledge_min + self.dice.range(Draw::Pledge, n, 0, 0, steps) * m.pledge_step;
        let f = &self.sc.misfortune;
        let high_risk = self.dice.chance(Draw::Risk, n, 0, f.high_risk_percent);
        // Agents 0 (the clerk) and 1 (the founder) never attack; puppets follow their master.
        let plays = if puppet_of.is_some() || i < 2 {
            None
        } else {
            let r = u32::try_from(self.dice.range(Draw::Strategy, n, 0, 0, 99)).expect("<100");
            let mut acc = 0;
            Strategy::ALL.into_iter().find(|s| {
                acc += self.sc.attackers.percent(*s);
                r < acc
            })
        };
        if plays == Some(Strategy::PledgeRaise) || puppet_of.is_some() {
            pledge = self.rules.min_pledge.max(m.pledge_min);
        }
        self.agents.push(Agent {
            addr,
            nonce: 0,
            plays,
            attacking: plays.is_some() && plays != self.honest,
            puppet_of,
            puppet: None,
            high_risk,
            pledge,
            minted: 0,
            phase: Phase::Gone,
            delegate: false,
            behind_until: 0,
            full: false,
            need: None,
            pretext: false,
            request: None,
            rejoin: None,
        });
        i
    }

    fn strategy(&self, who: usize) -> Option<Strategy> {
        let a = &self.agents[who];
        a.plays.filter(|_| a.attacking)
    }

    /// A new member joins (with a puppet, if it plays one).
    fn join_new(&mut self) {
        let i = self.new_agent(None);
        self.mint(i, self.wallet());
        self.join(i);
        if self.agents[i].plays == Some(Strategy::SockPuppet) {
            let p = self.new_agent(Some(i));
            self.agents[i].puppet = Some(p);
            self.mint(p, self.wallet());
            self.join(p);
        }
    }

    /// What the simulator gives a member to live on: every pledge of the run twice over, a
    /// full gift account, and a bond for every period.
    fn wallet(&self) -> u64 {
        let periods = u64::from(self.sc.periods);
        let pledges = 2 * periods + u64::from(self.rules.gift_cap_pledges) + 10;
        let bps = u64::from(self.rules.bond_bps.max(self.rules.application_bond_bps));
        let bond = self.rules.max_pledge.saturating_mul(bps) / BPS + 1;
        self.rules
            .max_pledge
            .saturating_mul(pledges)
            .saturating_add(bond.saturating_mul(periods + 10))
    }

    fn join(&mut self, who: usize) {
        let pledge = self.agents[who].pledge;
        let body = Body::Join {
            society: self.soc,
            pledge,
            identity_commitment: (self.rules.identity == kassa_types::rules::Identity::Commitment)
                .then(|| Hash::of(&[&self.agents[who].addr.0])),
        };
        let Ok(events) = self.send(who, body) else {
            return;
        };
        for e in events {
            match e {
                Event::Joined { .. } => self.admitted(who),
                Event::Applied { application, .. } => {
                    self.agents[who].phase = Phase::Applicant;
                    self.track(application, who, 1, 1, true, 0);
                }
                _ => {}
            }
        }
    }

    /// A new member chooses a delegate, as most members of a large society do.
    fn admitted(&mut self, who: usize) {
        self.agents[who].phase = Phase::Member;
        self.agents[who].full = false;
        let n = u64::try_from(who).expect("fits");
        let v = &self.sc.voting;
        if self.agents[who].delegate
            || self.agents[who].puppet_of.is_some()
            || self.delegates.is_empty()
            || !self.dice.chance(Draw::Delegate, n, 0, v.delegating_percent)
        {
            return;
        }
        let k = self
            .dice
            .range(Draw::Delegate, n, 1, 0, self.delegates.len() as u64 - 1);
        let to = self.agents[self.delegates[usize::try_from(k).expect("fits")]].addr;
        let _ = self.send(
            who,
            Body::Delegate {
                society: self.soc,
                to: Some(to),
            },
        );
    }

    fn track(
        &mut self,
        id: RequestId,
        requester: usize,
        asked: u128,
        supported: u128,
        application: bool,
        count: u32,
    ) {
        let deadline_ms = kassa_state::view::request(&self.st, id)
            .map(|r| r.ballot.deadline_ms)
            .unwrap_or(0);
        self.by_id.insert(id, self.tracked.len());
        self.tracked.push(Tracked {
            id,
            requester,
            deadline_ms,
            supported,
            asked,
            application,
            installments: count > 0,
            count: count.max(1),
            filed: self.period,
            decided: false,
            over: false,
            approved_at: None,
            paid_at: None,
        });
    }

    // -----------------------------------------------------------------------------------------
    // The run.

    fn run(mut self, tick: &mut dyn FnMut(u32) -> bool) -> Result<World<'a>, SimError> {
        self.setup();
        for p in 0..self.sc.periods {
            self.period = p;
            self.first_block(p);
            self.second_block(p);
            self.third_block(p);
            self.close_period(p)?;
            if !tick(p) {
                return Err(SimError::Stopped);
            }
        }
        Ok(self)
    }

    fn setup(&mut self) {
        self.block(GENESIS_MS + 1000);
        self.clerk = self.new_agent(None);
        self.send(
            self.clerk,
            Body::CreateAsset {
                symbol: Symbol::new("SIM").expect("short"),
                decimals: self.sc.decimals,
                max_supply: None,
            },
        )
        .expect("the first asset");
        self.asset = AssetId(1);
        let founder = self.new_agent(None);
        self.mint(founder, self.wallet());
        let events = self
            .send(
                founder,
                Body::CreateSociety {
                    name: SocietyName::new(&self.sc.name)
                        .unwrap_or_else(|| SocietyName::new("Simulated society").expect("short")),
                    purpose: Purpose::new("simulation").expect("short"),
                    asset: self.asset,
                    rules: self.rules.clone(),
                    pledge: self.agents[founder].pledge,
                },
            )
            .expect("valid rules create a society");
        for e in events {
            if let Event::SocietyCreated { society } = e {
                self.soc = society;
            }
        }
        let (meta, _) = view::society(&self.st, self.soc).expect("created");
        self.created_ms = meta.created_ms;
        self.admitted(founder);
        let d = self
            .sc
            .voting
            .delegates
            .unwrap_or_else(|| (self.sc.members.initial / 20).clamp(3, 50));
        let d = usize::try_from(d)
            .expect("fits")
            .min(usize::try_from(self.sc.members.initial).expect("fits"));
        self.agents[founder].delegate = true;
        self.delegates.push(founder);
        self.block(self.created_ms + 1);
        for _ in 1..self.sc.members.initial {
            let before = self.agents.len();
            self.join_new();
            if self.delegates.len() < d && self.agents[before].plays.is_none() {
                self.agents[before].delegate = true;
                self.delegates.push(before);
            }
        }
        self.members_start = self.book().member_count;
    }

    /// Decisions, payments, joins, dues and exits.
    fn first_block(&mut self, p: u32) {
        let now = self.period_start(p) + 2;
        self.block(now);
        if p > 0 {
            let _ = self.send(self.clerk, Body::Settle { society: self.soc });
        }
        // Finalize what is past its deadline.
        let due: Vec<RequestId> = self
            .tracked
            .iter()
            .filter(|t| !t.decided && t.deadline_ms < now)
            .map(|t| t.id)
            .collect();
        for id in due {
            if let Some(r) = view::request(&self.st, id)
                && r.ballot.deadline_ms < now
                && r.status == RequestStatus::Open
            {
                let _ = self.send(self.clerk, Body::Finalize { request: id });
            }
        }
        // Payees claim the installments due.
        for i in 0..self.agents.len() {
            if let Some(rid) = self.agents[i].request
                && let Some(t) = self.by_id.get(&rid).map(|&t| &self.tracked[t])
                && t.installments
                && t.approved_at.is_some()
            {
                let _ = self.send(i, Body::ClaimBenefit { request: rid });
            }
        }
        // New members.
        let m = &self.sc.members;
        if p > 0 && p < m.joins_until_period.unwrap_or(u32::MAX) {
            for _ in 0..m.joins_per_period {
                if m.max
                    .is_some_and(|max| self.book().member_count >= u64::from(max))
                {
                    break;
                }
                self.join_new();
            }
        }
        for i in 2..self.agents.len() {
            self.member_turn(i, p, now);
        }
        self.member_turn(1, p, now);
    }

    /// One member's dues, exit and return.
    fn member_turn(&mut self, i: usize, p: u32, now: u64) {
        let n = u64::try_from(i).expect("fits");
        let pu = u64::from(p);
        match self.agents[i].phase.clone() {
            Phase::Applicant => return,
            Phase::Gone => {
                if self.strategy(i) == Some(Strategy::LapseAndBuyBack) {
                    self.misfortune(i, p);
                    if self.agents[i].need.is_some() && self.agents[i].rejoin.is_none() {
                        self.agents[i].rejoin = Some(p);
                    }
                }
                if self.agents[i].rejoin.is_some_and(|r| r <= p) {
                    self.agents[i].rejoin = None;
                    self.join(i);
                }
                return;
            }
            Phase::Leaving { until_ms } => {
                if now >= until_ms && self.send(i, Body::Withdraw { society: self.soc }).is_ok() {
                    self.agents[i].phase = Phase::Gone;
                    if self.strategy(i) == Some(Strategy::RunOnTheFund) {
                        self.agents[i].rejoin = Some(p + 1);
                    }
                }
                return;
            }
            Phase::Member => {}
        }
        let strategy = self.strategy(i);
        // Misfortune strikes (decided here so that dues can react to it).
        self.misfortune(i, p);
        let in_need = self.agents[i].need.is_some();
        // Leaving: by chance (and for cost), or to run from what is owed.
        let b = &self.sc.behaviour;
        let cost_percent = self.last_cost_bps / 100;
        let exit_bps = u64::from(b.exit_bps)
            + if self.agents[i].high_risk {
                0
            } else {
                u64::from(b.exit_bps_per_cost_percent) * cost_percent
            };
        let runs = strategy == Some(Strategy::RunOnTheFund) && {
            let book = self.book();
            book.queue_tail > book.queue_head || book.benefits_rate > 0
        };
        let leaves = i != 1
            && !self.agents[i].delegate
            && self.agents[i].puppet_of.is_none()
            && !in_need
            && (runs || self.dice.chance_bps(Draw::Exit, n, pu, exit_bps));
        if leaves
            && self.agents[i].request.is_none()
            && self.send(i, Body::Leave { society: self.soc }).is_ok()
        {
            if let Some(pp) = self.agents[i].puppet {
                let _ = self.send(pp, Body::Leave { society: self.soc });
            }
            return;
        }
        // Falling behind on dues, by chance.
        if b.lapse_bps > 0
            && self.agents[i].behind_until <= p
            && !in_need
            && self
                .dice
                .chance_bps(Draw::Lapse, n, pu, u64::from(b.lapse_bps))
        {
            let len = self
                .dice
                .range(Draw::LapseLength, n, pu, 1, u64::from(b.lapse_periods_max));
            self.agents[i].behind_until = p + u32::try_from(len).expect("a u32 rule");
        }
        let pays = match strategy {
            Some(Strategy::LapseAndBuyBack) => in_need,
            _ => self.agents[i].behind_until <= p,
        };
        if pays {
            self.pay_dues(i, p);
        }
        if strategy == Some(Strategy::PledgeRaise)
            && in_need
            && self.agents[i].pledge < self.rules.max_pledge
            && self
                .send(
                    i,
                    Body::ChangePledge {
                        society: self.soc,
                        pledge: self.rules.max_pledge,
                    },
                )
                .is_ok()
        {
            self.agents[i].pledge = self.rules.max_pledge;
        }
    }

    /// Pays what is due up to this period (arrears included), or checks in with a full account.
    fn pay_dues(&mut self, i: usize, p: u32) {
        let Some(m) = self.member(i) else {
            self.agents[i].phase = Phase::Gone; // expelled
            return;
        };
        let pu = u64::from(p);
        if m.paid_until > pu {
            return;
        }
        let owed: u128 = (m.paid_until..=pu).map(|q| u128::from(m.price(q))).sum();
        let amount =
            u64::try_from(owed.saturating_sub(u128::from(m.dues_credit))).unwrap_or(u64::MAX);
        if self.agents[i].full {
            let checked_in = self
                .send(
                    i,
                    Body::Contribute {
                        society: self.soc,
                        amount: 0,
                    },
                )
                .is_ok_and(|ev| ev.iter().any(|e| matches!(e, Event::DuesPaid { .. })));
            if checked_in {
                return;
            }
            self.agents[i].full = false;
        }
        match self.send(
            i,
            Body::Contribute {
                society: self.soc,
                amount,
            },
        ) {
            Err(Rejection::GiftAccountCapExceeded) => {
                self.agents[i].full = true;
                let _ = self.send(
                    i,
                    Body::Contribute {
                        society: self.soc,
                        amount: 0,
                    },
                );
            }
            Err(Rejection::NotMember) => self.agents[i].phase = Phase::Gone,
            _ => {}
        }
    }

    /// Draws this period's misfortune for member `i`, and moves its need along.
    fn misfortune(&mut self, i: usize, p: u32) {
        let n = u64::try_from(i).expect("fits");
        let pu = u64::from(p);
        // A monthly need runs down; a lump need not filed in time is given up.
        match &mut self.agents[i].need {
            Some(Need::Monthly { months, .. }) if p > 0 => {
                *months = months.saturating_sub(1);
                if *months == 0 {
                    self.agents[i].need = None;
                }
            }
            Some(Need::Lump { until, .. }) if *until <= p => self.agents[i].need = None,
            _ => {}
        }
        let a = &self.agents[i];
        // Puppets have no needs; attackers have only pretexts, and none while honest.
        if a.need.is_some() || a.puppet_of.is_some() || (a.plays.is_some() && !a.attacking) {
            return;
        }
        let f = &self.sc.misfortune;
        let scripted = self
            .sc
            .scripted
            .iter()
            .find(|s| s.period == p && usize::try_from(s.member).is_ok_and(|m| m + 1 == i));
        let need = if let Some(s) = scripted {
            if s.lump > 0 {
                Need::Lump {
                    left: s.lump,
                    until: p + f.patience_periods,
                }
            } else {
                Need::Monthly {
                    per: s.monthly,
                    months: s.months,
                }
            }
        } else {
            let factor = if self.agents[i].high_risk {
                u64::from(f.high_risk_factor)
            } else {
                1
            };
            let rate = (u64::from(f.rate_ppm) * factor).min(1_000_000);
            if !self.dice.chance_ppm(Draw::Misfortune, n, pu, rate) {
                return;
            }
            if self.dice.chance(Draw::NeedKind, n, pu, f.lump_percent) {
                Need::Lump {
                    left: self
                        .dice
                        .range(Draw::NeedSize, n, pu, f.lump_min, f.lump_max),
                    until: p + f.patience_periods,
                }
            } else {
                let months = self.dice.range(
                    Draw::NeedLength,
                    n,
                    pu,
                    u64::from(f.months_min),
                    u64::from(f.months_max),
                );
                Need::Monthly {
                    per: self
                        .dice
                        .range(Draw::NeedSize, n, pu, f.monthly_min, f.monthly_max),
                    months: u32::try_from(months).expect("a u32 knob"),
                }
            }
        };
        let a = &mut self.agents[i];
        a.pretext = a.attacking;
        a.need = Some(need);
        // A member who had fallen behind pays up when trouble comes.
        a.behind_until = 0;
    }

    /// Misfortunes are filed; gifts are given.
    fn second_block(&mut self, p: u32) {
        let now = self.period_start(p) + 3;
        self.block(now);
        for i in 1..self.agents.len() {
            if self.agents[i].phase != Phase::Member {
                continue;
            }
            self.file(i, now);
            if self.strategy(i) == Some(Strategy::KarmaFarm) {
                self.farm(i);
            }
        }
    }

    /// Files for the member's need (or, for a sock puppet's master, for no need at all).
    fn file(&mut self, i: usize, now: u64) {
        let strategy = self.strategy(i);
        let greedy = strategy == Some(Strategy::DoubleDip);
        // A sock puppet's master files whenever it can.
        let always = strategy == Some(Strategy::SockPuppet);
        let Some(need) = self.agents[i]
            .need
            .clone()
            .or(always.then_some(Need::Lump { left: 0, until: 0 }))
        else {
            return;
        };
        let bogus = always || self.agents[i].pretext;
        if self.agents[i].request.is_some() && !greedy {
            return;
        }
        let Some(v) = view::member(&self.st, self.soc, &self.agents[i].addr, now) else {
            return;
        };
        // The double-dipper tries even while a request is in progress (and is refused).
        if !v.good_standing
            || now < v.waiting_until_ms
            || (v.request_in_progress && !greedy)
            || v.max_benefit == 0
        {
            return;
        }
        let max = v.max_benefit.min(u128::from(self.rules.max_request));
        let (amount, installments, asked) = match need {
            Need::Lump { left, .. } => {
                let want = if greedy || bogus {
                    max
                } else {
                    max.min(u128::from(left))
                };
                let a = u64::try_from(want).expect("at most max_request");
                (a, 0u32, u128::from(a))
            }
            Need::Monthly { per, months } => {
                let k = months.min(self.rules.max_installments).max(1);
                let cap = max / u128::from(k);
                let want = if greedy {
                    cap
                } else {
                    cap.min(u128::from(per))
                };
                let a = u64::try_from(want).expect("at most max_request");
                (a, k, u128::from(a) * u128::from(k))
            }
        };
        if amount == 0 {
            return;
        }
        let supported = if bogus { 0 } else { need.total().min(asked) };
        let Ok(events) = self.send(
            i,
            Body::FileRequest {
                society: self.soc,
                amount,
                evidence_hash: Hash::of(&[b"evidence", &self.agents[i].addr.0]),
                memo: Memo::new("").expect("empty"),
                payee: None,
                installments,
            },
        ) else {
            return;
        };
        for e in events {
            if let Event::RequestFiled { request, .. } = e {
                self.agents[i].request = Some(request);
                self.track(request, i, asked, supported, false, installments);
            }
        }
    }

    /// Karma farming: the most that earns karma, given to someone else's approved lump sum.
    fn farm(&mut self, i: usize) {
        let me = self.agents[i].addr;
        let target = self.tracked.iter().rev().take(256).find(|t| {
            t.approved_at.is_some()
                && t.paid_at.is_none()
                && !t.application
                && !t.installments
                && t.requester != i
        });
        let Some(t) = target else {
            return;
        };
        let id = t.id;
        let Some(r) = view::request(&self.st, id) else {
            return;
        };
        if r.payee == me || r.status != RequestStatus::Approved {
            return;
        }
        let amount = self.agents[i].pledge.min(r.need());
        if amount > 0 {
            let _ = self.send(
                i,
                Body::Gift {
                    request: id,
                    amount,
                },
            );
        }
    }

    /// The votes on what was filed this period (and on applications).
    fn third_block(&mut self, p: u32) {
        let now = self.period_start(p) + 4;
        self.block(now);
        // Votes are cast in the period of filing.
        let filed_now: Vec<usize> = (0..self.tracked.len())
            .rev()
            .take_while(|&t| self.tracked[t].filed == p)
            .collect();
        if filed_now.is_empty() {
            return;
        }
        // Members who did not delegate and might vote directly.
        let direct: Vec<usize> = (1..self.agents.len())
            .filter(|&i| {
                let a = &self.agents[i];
                a.phase == Phase::Member && !a.delegate && a.puppet_of.is_none()
            })
            .collect();
        for t in filed_now.into_iter().rev() {
            self.vote_on(t, &direct);
        }
    }

    /// Turnout: each delegate votes with `delegate_turnout_percent`; of the members who did not
    /// delegate, `direct_turnout_percent` (rounded up) are drawn to vote; the rest are silent. A
    /// voter approves a genuine request for the share the need supports with
    /// `approve_genuine_percent`, one backed by no need with `approve_bogus_percent`, and
    /// otherwise votes no. A sock puppet approves its master's request.
    fn vote_on(&mut self, t: usize, direct: &[usize]) {
        let tr = self.tracked[t].clone();
        let v = self.sc.voting.clone();
        let id_key = tr.id.0;
        let mut voters: Vec<usize> = vec![];
        for &d in &self.delegates {
            if self.dice.chance(
                Draw::Turnout,
                u64::try_from(d).expect("fits"),
                id_key,
                v.delegate_turnout_percent,
            ) {
                voters.push(d);
            }
        }
        let k =
            (direct.len() * usize::try_from(v.direct_turnout_percent).expect("fits")).div_ceil(100);
        for j in 0..k {
            let x = self.dice.range(
                Draw::DirectVoter,
                u64::try_from(j).expect("fits"),
                id_key,
                0,
                u64::try_from(direct.len()).expect("fits") - 1,
            );
            voters.push(direct[usize::try_from(x).expect("fits")]);
        }
        voters.sort_unstable();
        voters.dedup();
        let puppet = self.agents[tr.requester]
            .puppet
            .filter(|_| self.strategy(tr.requester).is_some());
        for voter in voters {
            if voter == tr.requester
                || Some(voter) == puppet
                || self.agents[voter].phase != Phase::Member
            {
                continue;
            }
            let key = u64::try_from(voter).expect("fits");
            let (approve, percent) = if tr.supported == 0 {
                (
                    self.dice
                        .chance(Draw::Verdict, key, id_key, v.approve_bogus_percent),
                    100,
                )
            } else if self
                .dice
                .chance(Draw::Verdict, key, id_key, v.approve_genuine_percent)
            {
                let share = (tr.supported * 100 / tr.asked.max(1)).min(100);
                (
                    share > 0,
                    if share > 0 {
                        u8::try_from(share).expect("≤100")
                    } else {
                        100
                    },
                )
            } else {
                (false, 100)
            };
            let _ = self.send(
                voter,
                Body::Vote {
                    request: tr.id,
                    approve,
                    percent,
                },
            );
        }
        if let Some(pp) = puppet {
            let _ = self.send(
                pp,
                Body::Vote {
                    request: tr.id,
                    approve: true,
                    percent: 100,
                },
            );
        }
    }

    /// Expels members lapsed long enough (anyone may), records the period's row and audits.
    fn close_period(&mut self, p: u32) -> Result<(), SimError> {
        let pu = u64::from(p);
        let expellable: Vec<usize> = (1..self.agents.len())
            .filter(|&i| self.agents[i].phase == Phase::Member)
            .filter(|&i| {
                self.member(i).is_some_and(|m| {
                    m.status == MemberStatus::Active
                        && m.lapse_at + u64::from(self.rules.lapse_periods) <= pu
                })
            })
            .collect();
        for i in expellable {
            let addr = self.agents[i].addr;
            if self
                .send(
                    self.clerk,
                    Body::Expel {
                        society: self.soc,
                        member: addr,
                    },
                )
                .is_ok()
            {
                self.agents[i].phase = Phase::Gone;
                self.agents[i].request = None;
            }
        }
        let book = self.book();
        // Installments: one unit of help per running benefit per period, on time if the payee
        // has been paid every installment due so far.
        for t in 0..self.tracked.len() {
            let tr = &self.tracked[t];
            if !tr.installments || tr.approved_at.is_none() || tr.over {
                continue;
            }
            let Some(r) = view::request(&self.st, tr.id) else {
                continue;
            };
            let Some(b) = r.benefit else { continue };
            if b.index_end.is_some() || pu >= b.last {
                self.tracked[t].over = true;
                let who = self.tracked[t].requester;
                if self.agents[who].request == Some(self.tracked[t].id) {
                    self.agents[who].request = None;
                }
            }
            if b.index_end.is_some() || pu < b.first || pu > b.last {
                continue;
            }
            self.units += 1;
            let due = u128::from(b.per_period) * u128::from(pu - b.first + 1);
            if u128::from(b.claimed) >= due {
                self.units_on_time += 1;
            }
        }
        let s = book.stats.clone();
        let prev = std::mem::replace(&mut self.stats_prev, s.clone());
        let help = (s.paid_by_shares + s.paid_by_common + s.installments_funded)
            - (prev.paid_by_shares + prev.paid_by_common + prev.installments_funded);
        let gifts = s.paid_by_gifts - prev.paid_by_gifts;
        let members: Vec<&Agent> = self
            .agents
            .iter()
            .filter(|a| a.phase == Phase::Member)
            .collect();
        let pledges: u128 = members.iter().map(|a| u128::from(a.pledge)).sum();
        let count = u128::try_from(members.len()).expect("fits");
        // Help per member in standing, as basis points of the mean pledge.
        let cost_bps = if book.standing_count == 0 || pledges == 0 {
            0
        } else {
            help * 10_000 * count / (u128::from(book.standing_count) * pledges)
        };
        let cost_bps = u64::try_from(cost_bps).unwrap_or(u64::MAX);
        self.last_cost_bps = cost_bps;
        if cost_bps > self.worst.0 {
            self.worst = (cost_bps, p);
        }
        let paid_now: Vec<&Tracked> = self
            .tracked
            .iter()
            .filter(|t| t.paid_at == Some(p))
            .collect();
        let waiting = self
            .tracked
            .iter()
            .filter(|t| t.approved_at.is_some() && t.paid_at.is_none() && !t.installments);
        let delay = paid_now
            .iter()
            .map(|t| p - t.approved_at.expect("paid after approval"))
            .chain(waiting.map(|t| p - t.approved_at.expect("approved")))
            .max()
            .unwrap_or(0);
        // Ruin: approved help not yet paid (what is owed, less what open requests ask) exceeds
        // everything the society holds.
        let funds = u128::from(book.pool.total) + u128::from(book.common);
        let asked_open: u128 = self
            .tracked
            .iter()
            .filter(|t| !t.decided && !t.application)
            .map(|t| t.asked)
            .sum();
        if self.ruin.is_none() && book.owed.saturating_sub(asked_open) > funds {
            self.ruin = Some(p);
        }
        self.peak_members = self.peak_members.max(book.member_count);
        self.rows.push(Row {
            period: p,
            members: book.member_count,
            in_standing: book.standing_count,
            gift_funds: book.pool.total,
            common_fund: book.common,
            help_paid: u64::try_from(help).unwrap_or(u64::MAX),
            gifts: u64::try_from(gifts).unwrap_or(u64::MAX),
            cost_bps,
            filed: s.requests_filed - prev.requests_filed,
            approved: s.requests_approved - prev.requests_approved,
            paid: u64::try_from(paid_now.len()).expect("fits"),
            queued: book.queue_tail - book.queue_head,
            delay,
            owed: u64::try_from(book.owed).unwrap_or(u64::MAX),
        });
        let snapshot = audit::audit(&self.st, self.audit.as_ref()).map_err(|violation| {
            SimError::Invariant {
                period: p,
                violation,
            }
        })?;
        self.audit = Some(snapshot);
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Results.

    fn summary(&self) -> Summary {
        // Lump sums: on time if paid in full within one period of approval. Those approved in the
        // last period are not yet due.
        let last = self.sc.periods - 1;
        let mut units = self.units;
        let mut on_time = self.units_on_time;
        for t in &self.tracked {
            let Some(a) = t.approved_at else { continue };
            if t.installments || t.application {
                continue;
            }
            match t.paid_at {
                Some(paid) => {
                    units += 1;
                    if paid <= a + 1 {
                        on_time += 1;
                    }
                }
                None if a + 1 < last => units += 1,
                None => {}
            }
        }
        let approved: u128 = self
            .tracked
            .iter()
            .filter(|t| t.approved_at.is_some() && !t.application)
            .count() as u128;
        Summary {
            periods: self.sc.periods,
            members_start: self.members_start,
            members_end: self.rows.last().map_or(0, |r| r.members),
            members_peak: self.peak_members,
            transactions: self.txs,
            refused: self
                .refused
                .iter()
                .map(|(k, v)| ((*k).to_string(), *v))
                .collect(),
            requests_filed: self.stats_prev.requests_filed,
            requests_approved: u64::try_from(approved).expect("fits"),
            help_paid: self.rows.iter().map(|r| u128::from(r.help_paid)).sum(),
            help_units: units,
            help_units_on_time: on_time,
            worst_cost_bps: self.worst.0,
            worst_cost_period: self.worst.1,
            ruin_period: self.ruin,
            invariants_checked: u64::from(self.sc.periods),
            attacks: vec![],
        }
    }

    /// Each agent's money at the end: what it holds (wallet and gift account) minus what it
    /// was given by the simulator.
    fn net(&self, i: usize) -> i128 {
        let a = &self.agents[i];
        let wallet = exec::balance(&self.st, &a.addr, self.asset);
        let end_ms = self.ctx.time_ms;
        let gift = view::member(&self.st, self.soc, &a.addr, end_ms).map_or(0, |v| v.gift_balance);
        i128::from(wallet) + i128::from(gift) - i128::from(a.minted)
    }

    fn attack_result(&self, twin: &World<'_>, s: Strategy) -> AttackResult {
        {
            {
                let players: Vec<usize> = (0..self.agents.len().min(twin.agents.len()))
                    .filter(|&i| self.agents[i].plays == Some(s))
                    .collect();
                let with_puppet =
                    |w: &World<'_>, i: usize| w.net(i) + w.agents[i].puppet.map_or(0, |p| w.net(p));
                let attack: i128 = players.iter().map(|&i| with_puppet(self, i)).sum();
                let honest: i128 = players.iter().map(|&i| with_puppet(twin, i)).sum();
                let n = i128::try_from(players.len()).expect("fits");
                AttackResult {
                    strategy: s,
                    attack: s.attack(),
                    attackers: u64::try_from(players.len()).expect("fits"),
                    net_attacking: attack,
                    net_honest: honest,
                    gain_per_attacker: if n == 0 { 0 } else { attack / n },
                    over_honest_per_attacker: if n == 0 { 0 } else { (attack - honest) / n },
                }
            }
        }
    }
}
