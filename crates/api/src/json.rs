//! Domain types as JSON. Amounts and karma are decimal strings (JavaScript numbers lose precision
//! above 2^53); hashes and bytes are lowercase hex; accounts are bech32 addresses.

use kassa_state::records::*;
use kassa_state::view::MemberView;
use kassa_types::rules::Rules;
use kassa_types::{Address, Hash};
use serde_json::{Value, json};

pub fn s<T: ToString>(v: T) -> Value {
    Value::String(v.to_string())
}

pub fn hash(h: &Hash) -> Value {
    Value::String(hex::encode(h.0))
}

pub fn addr(a: &Address) -> Value {
    Value::String(a.to_bech32())
}

/// A society's rules: `Rules`' own serde shape (the one definition, also read by the CLI, the
/// simulator and the tests), with the derived floor of the voting window beside it.
pub fn rules(r: &Rules) -> Value {
    let mut v = serde_json::to_value(r).expect("rules serialize");
    v["voting_window_secs_min"] = r.voting_window_secs_min().into();
    v
}

pub fn karma(raw: u128) -> Value {
    s(raw >> kassa_state::pool::KARMA_FRACTION_BITS)
}

pub fn society(id: u64, meta: &Society, book: &Book, now_ms: u64) -> Value {
    json!({
        "id": id,
        "name": meta.name.as_str(),
        "purpose": meta.purpose.as_str(),
        "asset": meta.asset.0,
        "rules": rules(&meta.rules),
        "created_ms": meta.created_ms,
        "current_period": meta.period_at(now_ms),
        "member_count": book.member_count,
        "standing_count": book.standing_count,
        "gift_funds": s(book.pool.total),
        "bonds": s(book.bonds),
        "common_fund": s(book.common),
        "benefits_escrow": s(book.escrow),
        "owed": s(book.owed),
        "benefits_per_period": s(book.benefits_rate),
        "total_karma": karma(kassa_state::view::total_karma(meta, book, now_ms)),
        "queue_length": book.queue_tail - book.queue_head,
        "amendment": book.amendment.map(|a| a.0),
        "stats": {
            "requests_filed": book.stats.requests_filed,
            "requests_approved": book.stats.requests_approved,
            "requests_rejected": book.stats.requests_rejected,
            "paid_by_shares": s(book.stats.paid_by_shares),
            "paid_by_gifts": s(book.stats.paid_by_gifts),
            "paid_by_common": s(book.stats.paid_by_common),
            "installments_funded": s(book.stats.installments_funded),
            "bonds_forfeited": s(book.stats.bonds_forfeited),
            "members_expelled": book.stats.members_expelled,
        },
    })
}

pub fn member_status(st: &MemberStatus) -> Value {
    match st {
        MemberStatus::Applicant { application } => {
            json!({"state": "applicant", "application": application.0})
        }
        MemberStatus::Active => json!({"state": "active"}),
        MemberStatus::Leaving { until_ms } => json!({"state": "leaving", "until_ms": until_ms}),
    }
}

pub fn member(society: u64, who: &Address, m: &MemberView) -> Value {
    json!({
        "society": society,
        "address": addr(who),
        "status": member_status(&m.status),
        "pledge": s(m.pledge),
        "next_pledge": m.next_pledge.map(s),
        "gift_balance": s(m.gift_balance),
        "karma": s(m.karma),
        "karma_pending": s(m.karma_pending),
        "karma_at_period_start": s(m.karma_at_period_start),
        "good_standing": m.good_standing,
        "lapsed": m.lapsed,
        "paid_until": m.paid_until,
        "next_due_ms": m.next_due_ms,
        "lapse_at": m.lapse_at,
        "lapse_at_ms": m.lapse_at_ms,
        "expellable_at": m.expellable_at,
        "waiting_until_ms": m.waiting_until_ms,
        "max_benefit": s(m.max_benefit),
        "delegate": m.delegate.as_ref().map(addr),
        "open_request": m.open_request.map(|r| r.0),
        "request_in_progress": m.request_in_progress,
        "joined_ms": m.joined_ms,
    })
}

/// What a ballot decides, which sets the thresholds it shows.
#[derive(Clone, Copy)]
enum Decides {
    Request,
    Amendment,
}

fn ballot(b: &Ballot, decides: Decides) -> Value {
    let total = b.start.total_karma;
    let bps = |v: u32| {
        kassa_state::fixed::mul_div_ceil(total, u128::from(v), 10_000).unwrap_or(u128::MAX)
    };
    let thresholds = match decides {
        Decides::Amendment => json!({ "yes_needed": karma(bps(b.amendment_threshold_bps)) }),
        Decides::Request => json!({
            "net_needed": karma(bps(b.approval_net_bps)),
            "quorum": karma(bps(b.quorum_bps)),
            "approval_net_bps": b.approval_net_bps,
            "quorum_bps": b.quorum_bps,
            "standing_at_filing": b.start.standing_count,
        }),
    };
    json!({
        "yes_count": b.yes_count,
        "no_count": b.no_count,
        "yes_by_percent": b.yes_by_percent.iter().map(|(p, w)| json!({"percent": p, "weight": karma(*w)})).collect::<Vec<_>>(),
        "society": b.society.0,
        "filed_period": b.filed_period,
        "deadline_ms": b.deadline_ms,
        "extended": b.extended,
        "yes": karma(b.yes),
        "no": karma(b.no),
        "total_karma": karma(total),
        "thresholds": thresholds,
    })
}

pub fn request(id: u64, r: &Request, now_period: u64) -> Value {
    let (kind, amount, installments, bond, evidence, memo) = match &r.kind {
        RequestKind::Help {
            amount,
            installments,
            bond,
            evidence_hash,
            memo,
        } => (
            "help",
            s(*amount),
            *installments,
            s(*bond),
            hash(evidence_hash),
            Value::String(memo.to_string()),
        ),
        RequestKind::Admission { bond } => {
            ("admission", s(0), 0, s(*bond), Value::Null, Value::Null)
        }
    };
    let outcome = match r.kind {
        RequestKind::Help { .. } => kassa_state::exec::request_outcome(&r.ballot),
        RequestKind::Admission { .. } => kassa_state::exec::admission_outcome(&r.ballot),
    };
    let benefit = r.benefit.as_ref().map(|b| {
        json!({
            "per_period": s(b.per_period),
            "first_period": b.first,
            "last_period": b.last,
            "installments": b.last + 1 - b.first,
            "installments_due": now_period.clamp(b.first - 1, b.last) + 1 - b.first,
            "claimed": s(b.claimed),
            "ended_early": b.index_end.is_some(),
            "dues_waived": b.dues_waived,
        })
    });
    json!({
        "payee": addr(&r.payee),
        "installments": installments,
        "asked": s(r.asked()),
        "approved": s(r.approved),
        "outcome_percent": outcome,
        "in_progress": r.in_progress(now_period),
        "benefit": benefit,
        "id": id,
        "kind": kind,
        "requester": addr(&r.requester),
        "amount": amount,
        "bond": bond,
        "evidence_hash": evidence,
        "memo": memo,
        "status": match r.status {
            RequestStatus::Open => "open",
            RequestStatus::Approved => "approved",
            RequestStatus::Paid => "paid",
            RequestStatus::Rejected => "rejected",
        },
        "paid": s(r.paid),
        "gifted": s(r.gifted),
        "ballot": ballot(&r.ballot, Decides::Request),
    })
}

pub fn amendment(id: u64, a: &Amendment) -> Value {
    json!({
        "id": id,
        "proposer": addr(&a.proposer),
        "rules": rules(&a.rules),
        "status": match a.status {
            AmendmentStatus::Open => "open",
            AmendmentStatus::Enacted => "enacted",
            AmendmentStatus::Rejected => "rejected",
        },
        "ballot": ballot(&a.ballot, Decides::Amendment),
    })
}

/// One event, tagged by `type`.
pub fn event(e: &Event) -> Value {
    match e {
        Event::FeeBurned { payer, amount } => {
            json!({"type": "fee_burned", "payer": addr(payer), "amount": s(amount)})
        }
        Event::Transferred {
            from,
            to,
            asset,
            amount,
        } => {
            json!({"type": "transferred", "from": addr(from), "to": addr(to), "asset": asset.0, "amount": s(amount)})
        }
        Event::AssetCreated { asset, issuer } => {
            json!({"type": "asset_created", "asset": asset.0, "issuer": addr(issuer)})
        }
        Event::Minted { asset, to, amount } => {
            json!({"type": "minted", "asset": asset.0, "to": addr(to), "amount": s(amount)})
        }
        Event::Burned {
            asset,
            from,
            amount,
        } => json!({"type": "burned", "asset": asset.0, "from": addr(from), "amount": s(amount)}),
        Event::SocietyCreated { society } => {
            json!({"type": "society_created", "society": society.0})
        }
        Event::Joined { society, member } => {
            json!({"type": "joined", "society": society.0, "member": addr(member)})
        }
        Event::Applied {
            society,
            applicant,
            application,
        } => {
            json!({"type": "applied", "society": society.0, "applicant": addr(applicant), "application": application.0})
        }
        Event::Contributed {
            society,
            member,
            amount,
        } => {
            json!({"type": "contributed", "society": society.0, "member": addr(member), "amount": s(amount)})
        }
        Event::RequestFiled {
            society,
            request,
            amount,
            bond,
        } => {
            json!({"type": "request_filed", "society": society.0, "request": request.0, "amount": s(amount), "bond": s(bond)})
        }
        Event::Voted {
            request,
            voter,
            approve,
            percent,
            weight,
        } => {
            json!({"type": "voted", "request": request.0, "voter": addr(voter), "approve": approve, "percent": percent, "weight": karma(*weight)})
        }
        Event::VotingExtended {
            request,
            deadline_ms,
        } => {
            json!({"type": "voting_extended", "request": request.0, "deadline_ms": deadline_ms})
        }
        Event::Delegated {
            society,
            member,
            to,
        } => {
            json!({"type": "delegated", "society": society.0, "member": addr(member), "to": to.as_ref().map(addr)})
        }
        Event::Gifted {
            request,
            from,
            amount,
        } => {
            json!({"type": "gifted", "request": request.0, "from": addr(from), "amount": s(amount)})
        }
        Event::Finalized {
            request,
            approved,
            percent,
        } => {
            json!({"type": "finalized", "request": request.0, "approved": approved, "percent": percent})
        }
        Event::Admitted { society, member } => {
            json!({"type": "admitted", "society": society.0, "member": addr(member)})
        }
        Event::BondReturned { request, amount } => {
            json!({"type": "bond_returned", "request": request.0, "amount": s(amount)})
        }
        Event::BondForfeited { request, amount } => {
            json!({"type": "bond_forfeited", "request": request.0, "amount": s(amount)})
        }
        Event::SharePaid { request, amount } => {
            json!({"type": "share_paid", "request": request.0, "amount": s(amount)})
        }
        Event::RequestPaid { request } => json!({"type": "request_paid", "request": request.0}),
        Event::Left {
            society,
            member,
            until_ms,
        } => {
            json!({"type": "left", "society": society.0, "member": addr(member), "until_ms": until_ms})
        }
        Event::Withdrawn {
            society,
            member,
            refund,
            held_back,
        } => {
            json!({"type": "withdrawn", "society": society.0, "member": addr(member), "refund": s(refund), "held_back": s(held_back)})
        }
        Event::DuesPaid {
            society,
            member,
            paid_until,
        } => {
            json!({"type": "dues_paid", "society": society.0, "member": addr(member), "paid_until": paid_until})
        }
        Event::Reinstated { society, member } => {
            json!({"type": "reinstated", "society": society.0, "member": addr(member)})
        }
        Event::Expelled { society, member } => {
            json!({"type": "expelled", "society": society.0, "member": addr(member)})
        }
        Event::PledgeChanged {
            society,
            member,
            pledge,
            from_period,
        } => {
            json!({"type": "pledge_changed", "society": society.0, "member": addr(member), "pledge": s(pledge), "from_period": from_period})
        }
        Event::ToCommonFund { society, amount } => {
            json!({"type": "to_common_fund", "society": society.0, "amount": s(amount)})
        }
        Event::CommonFundPaid { request, amount } => {
            json!({"type": "common_fund_paid", "request": request.0, "amount": s(amount)})
        }
        Event::BenefitClaimed { request, amount } => {
            json!({"type": "benefit_claimed", "request": request.0, "amount": s(amount)})
        }
        Event::BenefitEnded { request } => {
            json!({"type": "benefit_ended", "request": request.0})
        }
        Event::AmendmentProposed { society, amendment } => {
            json!({"type": "amendment_proposed", "society": society.0, "amendment": amendment.0})
        }
        Event::AmendmentVoted {
            amendment,
            voter,
            approve,
            weight,
        } => json!({
            "type": "amendment_voted", "amendment": amendment.0, "voter": addr(voter), "approve": approve, "weight": karma(*weight)
        }),
        Event::AmendmentEnacted { amendment } => {
            json!({"type": "amendment_enacted", "amendment": amendment.0})
        }
        Event::AmendmentRejected { amendment } => {
            json!({"type": "amendment_rejected", "amendment": amendment.0})
        }
    }
}

pub fn receipt(r: &kassa_state::Receipt) -> Value {
    match r.rejection() {
        None => json!({
            "hash": hash(&r.tx_hash),
            "fee": s(r.fee),
            "status": "applied",
            "events": r.events().iter().map(event).collect::<Vec<_>>(),
        }),
        Some(rej) => json!({
            "hash": hash(&r.tx_hash),
            "fee": s(r.fee),
            "status": "failed",
            "error": { "code": rej.name(), "number": rej.code(), "message": rej.message() },
        }),
    }
}
