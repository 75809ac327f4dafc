//! The engine: a chain in memory, one society, and synthetic members who send real
//! transactions through [`kassa_state::apply_tx_with`] — the function a block applies — with
//! signatures and consensus skipped (they change no outcome). Whatever the state machine refuses
//! is refused here too, and counted.
//!
//! A period is three blocks: dues, exits, payments and decisions first; then misfortunes are
//! filed and gifts given; then the votes on what was filed. After every period the invariants of
//! docs/protocol.md §9 are audited over the whole state.

mod members;
mod results;
mod votes;

use crate::report::{Report, Row};
use crate::rng::Dice;
use crate::scenario::{Scenario, ScenarioError, Strategy};
use crate::store::SimStore;
use kassa_state::records::{Book, ChainParams, Event, Member, RequestStatus};
use kassa_state::{BlockContext, Genesis, audit, exec, keys, view};
use kassa_types::rules::Rules;
use kassa_types::tx::{Body, ChainId, Purpose, SocietyName, Symbol, Transaction};
use kassa_types::{
    Address, AssetId, Rejection, RequestId, Signature, SignedTransaction, SocietyId,
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
}
