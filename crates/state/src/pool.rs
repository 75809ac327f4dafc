//! O(1) pro-rata sharing of a society's gift funds, and lazily derived karma.
//!
//! This is the product/sum technique of "Scalable Reward Distribution" (Batog et al. 2018) as
//! Liquity's stability pool uses it, adapted to gift accounts:
//!
//! - The pool keeps `total` (the recorded gift funds) and a running product `p`. Drawing `D` from
//!   `G` multiplies `p` by `(G − D)/G`. One update, whatever the number of members. (Nothing is
//!   ever added pro rata: forfeits go to the society's common fund, not to gift accounts.)
//! - A member's [`Position`] stores `s = balance · S_ONE / p` at their last touch; their balance now
//!   is `s · p / S_ONE`. Every division rounds down, so the sum of derived balances never exceeds
//!   `total` (docs/protocol.md §9, invariant 2): the dust stays with the society.
//! - Giving-karma from automatic shares is derived the same way: `k` accumulates every draw's drop
//!   in `p`, decayed by the karma half-life ("decayed units"), so `s · (k_now − decay(k_then)) /
//!   S_ONE` is what the member gave, each draw weighted by how much its karma has decayed since.
//! - When `p` falls below `P_MIN` it is shifted back up to about `P_ONE` and a new *era* begins; a
//!   draw that empties the pool also starts an era (every balance becomes zero). Positions from the
//!   previous era are converted using [`EraEnd`]; positions two or more eras old are worth nothing
//!   (at most `2^−40` of what they were, since an era shifts by at least 40 bits) and their giving-karma is estimated conservatively.

use crate::fixed::{decay, mul_div, mul_div_ceil};
use borsh::{BorshDeserialize, BorshSerialize};
use kassa_types::codec::varint;

/// The product's starting value (one), 2^100.
pub const P_ONE: u128 = 1 << 100;
/// Below this the product is rescaled (a new era).
pub const P_MIN: u128 = 1 << 60;
/// The product never exceeds this (it starts at `P_ONE` and only shrinks within an era; a new
/// era starts below `2 · P_ONE`).
pub const P_MAX: u128 = 1 << 108;
/// Normalizer of deposits: a position holds `s = balance · S_ONE / p`. Being above `P_MAX`, it
/// makes the rounding of `s` worth less than one base unit of balance at any `p`.
pub const S_ONE: u128 = 1 << 110;
/// The accumulator `k` saturates here, so it can never overflow. It grows by at most `P_MAX` per
/// draw, so reaching it needs 2^12 draws within one half-life; it would only make share-karma
/// estimates low, never move money.
pub const K_MAX: u128 = 1 << 120;
/// Karma is stored with this many fractional bits (karma units are the society asset's base
/// units). Half of an amount given or contributed is `amount << KARMA_HALF_SHIFT`.
pub const KARMA_FRACTION_BITS: u32 = 32;
const KARMA_HALF_SHIFT: u32 = KARMA_FRACTION_BITS - 1;

/// Karma (fixed point) earned by contributing or giving `amount`: half of it.
pub fn half_karma(amount: u64) -> u128 {
    u128::from(amount) << KARMA_HALF_SHIFT
}

/// How the previous era ended.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct EraEnd {
    /// `k` at the end of the era (in that era's units), as of `period`.
    pub k: u128,
    pub period: u64,
    /// `Some(bits)` if balances carried over, with normalized deposits shifted right by `bits`;
    /// `None` if the pool was emptied.
    pub carry: Option<u32>,
}

/// The society-wide sharing state.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Pool {
    /// Recorded gift funds, in base units: the sum of all gift accounts plus dust.
    pub total: u64,
    pub p: u128,
    pub era: u64,
    /// Decayed accumulator of drops in `p`, as of `k_period`.
    pub k: u128,
    pub k_period: u64,
    pub prev: Option<EraEnd>,
}

/// A gift account's share of the pool, as of its last touch.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Position {
    /// Normalized deposit: `balance · S_ONE / p` at the touch.
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub s: u128,
    /// Balance at the touch (used only when the position is two or more eras old).
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub d: u64,
    /// `s · k / S_ONE` at the touch.
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub sk: u128,
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub era: u64,
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub period: u64,
}

/// What a position is worth now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Valuation {
    /// The gift account balance.
    pub balance: u64,
    /// Karma earned by automatic shares since the touch, decayed to now.
    pub share_karma: u128,
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            total: 0,
            p: P_ONE,
            era: 0,
            k: 0,
            k_period: 0,
            prev: None,
        }
    }
}

impl Pool {
    /// `k` decayed to `now`.
    pub fn k_at(&self, now: u64, half_life: u32) -> u128 {
        decay(self.k, now.saturating_sub(self.k_period), half_life)
    }

    fn set_k(&mut self, k: u128, now: u64) {
        self.k = k;
        self.k_period = now;
    }

    /// What `pos` is worth at period `now`.
    pub fn value(&self, pos: &Position, now: u64, half_life: u32) -> Valuation {
        let own_k_then = decay(pos.sk, now.saturating_sub(pos.period), half_life);
        let given = |s: u128, k: u128| mul_div(s, k, S_ONE).expect("s < 2^115, k < 2^121");
        let (balance, given_total) = match self.era.checked_sub(pos.era) {
            Some(0) => {
                let bal = mul_div(pos.s, self.p, S_ONE).expect("fits");
                (
                    bal,
                    given(pos.s, self.k_at(now, half_life)).saturating_sub(own_k_then),
                )
            }
            Some(1) => {
                let prev = self.prev.as_ref().expect("era > 0 has a previous era");
                let prev_k = decay(prev.k, now.saturating_sub(prev.period), half_life);
                let before = given(pos.s, prev_k).saturating_sub(own_k_then);
                if let Some(bits) = prev.carry {
                    let s = pos.s >> bits;
                    let bal = mul_div(s, self.p, S_ONE).expect("fits");
                    (bal, before + given(s, self.k_at(now, half_life)))
                } else {
                    (0, before)
                }
            }
            // Two or more eras old: the balance is below 2^-40 of what it was (rounded to zero, in
            // the pool's favour) and nearly all of it was given; credit it as given at the touch,
            // which can only under-count the karma.
            _ => (
                0,
                decay(u128::from(pos.d), now.saturating_sub(pos.period), half_life),
            ),
        };
        let balance = u64::try_from(balance).expect("a balance never exceeds the pool total");
        Valuation {
            balance,
            share_karma: given_total << KARMA_HALF_SHIFT,
        }
    }

    /// The balance a normalized deposit `s` of the current era is worth.
    fn balance_of(&self, s: u128) -> u64 {
        let b = mul_div(s, self.p, S_ONE).expect("s · p / S_ONE is a balance");
        u64::try_from(b).expect("a balance never exceeds the pool total")
    }

    fn position_from(&self, s: u128, now: u64, half_life: u32) -> Position {
        let sk = mul_div(s, self.k_at(now, half_life), S_ONE).expect("fits");
        Position {
            s,
            d: self.balance_of(s),
            sk,
            era: self.era,
            period: now,
        }
    }

    /// An empty position at `now`.
    pub fn empty_position(&self, now: u64, half_life: u32) -> Position {
        self.position_from(0, now, half_life)
    }

    /// `pos` carried into the current era and re-based to `now` (its giving so far must already be
    /// realized). Within an era the normalized deposit is kept exactly, so a touch loses nothing to
    /// rounding; across one era boundary it is shifted (or zeroed if the pool was emptied).
    pub fn rebase(&self, pos: &Position, now: u64, half_life: u32) -> Position {
        let s = match self.era.checked_sub(pos.era) {
            Some(0) => pos.s,
            Some(1) => match self
                .prev
                .as_ref()
                .expect("era > 0 has a previous era")
                .carry
            {
                Some(bits) => pos.s >> bits,
                None => 0,
            },
            _ => 0,
        };
        self.position_from(s, now, half_life)
    }

    /// A re-based position with `amount` more in it (rounded down, for the pool).
    pub fn with_deposit(&self, pos: &Position, amount: u64, now: u64, half_life: u32) -> Position {
        assert_eq!(pos.era, self.era, "rebase first");
        let add = mul_div(u128::from(amount), S_ONE, self.p).expect("fits");
        self.position_from(pos.s + add, now, half_life)
    }

    /// A re-based position with `amount` (at most its balance) taken out (rounded up, for the pool).
    pub fn with_withdrawal(
        &self,
        pos: &Position,
        amount: u64,
        now: u64,
        half_life: u32,
    ) -> Position {
        assert_eq!(pos.era, self.era, "rebase first");
        assert!(
            amount <= self.balance_of(pos.s),
            "callers check the balance"
        );
        let sub = mul_div_ceil(u128::from(amount), S_ONE, self.p).expect("fits");
        self.position_from(pos.s.saturating_sub(sub), now, half_life)
    }

    /// Adds `amount` to the recorded funds (a contribution; the caller adds it to a position).
    pub fn deposit(&mut self, amount: u64) -> Option<()> {
        self.total = self.total.checked_add(amount)?;
        Some(())
    }

    /// Removes `amount` from the recorded funds (a gift or a refund taken from one position).
    pub fn take(&mut self, amount: u64) {
        self.total = self
            .total
            .checked_sub(amount)
            .expect("a position never holds more than the pool");
    }

    /// Draws `amount` pro rata from every gift account. O(1). Returns the amount drawn.
    pub fn draw(&mut self, amount: u64, now: u64, half_life: u32) -> u64 {
        assert!(amount <= self.total, "callers cap draws at the pool total");
        if amount == 0 {
            return 0;
        }
        let total = u128::from(self.total);
        let remaining = total - u128::from(amount);
        let p_new = mul_div(self.p, remaining, total).expect("p · (G − D)/G <= p");
        let k = (self.k_at(now, half_life) + (self.p - p_new)).min(K_MAX);
        self.total -= amount;
        if p_new == 0 {
            // Every balance is gone (whatever is left of `total` is dust): a new era.
            self.new_era(k, now, None, P_ONE);
        } else if p_new < P_MIN {
            // Shift back up to [P_ONE, 2·P_ONE): at least 40 bits, more after a near-total draw.
            let bits = P_ONE.ilog2() - p_new.ilog2();
            self.new_era(k, now, Some(bits), p_new << bits);
        } else {
            self.p = p_new;
            self.set_k(k, now);
        }
        amount
    }

    fn new_era(&mut self, k_end: u128, now: u64, carry: Option<u32>, p: u128) {
        self.prev = Some(EraEnd {
            k: k_end,
            period: now,
            carry,
        });
        self.era += 1;
        self.p = p;
        self.set_k(0, now);
    }
}

/// Karma plus a gift-account position, as of one period: what a member holds in a society. The
/// same type sums the stakes delegated to a member (karma and positions are linear).
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Stake {
    /// Karma (fixed point, [`KARMA_FRACTION_BITS`]) as of `pos.period`, excluding share-karma
    /// accrued since.
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub karma: u128,
    pub pos: Position,
}

impl Stake {
    /// Karma and balance at `now`.
    pub fn value(&self, pool: &Pool, now: u64, half_life: u32) -> (u128, u64) {
        let v = pool.value(&self.pos, now, half_life);
        let karma =
            decay(self.karma, now.saturating_sub(self.pos.period), half_life) + v.share_karma;
        (karma, v.balance)
    }

    /// Brings the stake to `now`: share-karma is realized and the position re-based.
    pub fn settle(&mut self, pool: &Pool, now: u64, half_life: u32) {
        let (karma, _) = self.value(pool, now, half_life);
        self.karma = karma;
        self.pos = pool.rebase(&self.pos, now, half_life);
    }

    /// Adds `amount` to a settled stake's gift account (the caller adds it to the pool).
    pub fn deposit(&mut self, pool: &Pool, amount: u64, now: u64, half_life: u32) {
        self.pos = pool.with_deposit(&self.pos, amount, now, half_life);
    }

    /// Takes `amount` from a settled stake's gift account (the caller takes it from the pool).
    pub fn withdraw(&mut self, pool: &Pool, amount: u64, now: u64, half_life: u32) {
        self.pos = pool.with_withdrawal(&self.pos, amount, now, half_life);
    }

    /// Adds another stake settled at the same period and era, then re-derives the normalized
    /// giving (`sk`) from the summed deposit: summing the parts' rounded `sk` would leave the
    /// aggregate up to one base unit of phantom giving per addition, a drift that grows with
    /// every change of a member; re-deriving it keeps the aggregate's error bounded by its
    /// number of parts.
    pub fn add(&mut self, other: &Stake, pool: &Pool, half_life: u32) {
        self.add_parts(other);
        self.pos = pool.rebase(&self.pos, self.pos.period, half_life);
    }

    /// Removes another stake settled at the same period and era (see [`Stake::add`]).
    pub fn sub(&mut self, other: &Stake, pool: &Pool, half_life: u32) {
        self.sub_parts(other);
        self.pos = pool.rebase(&self.pos, self.pos.period, half_life);
    }

    /// Replaces the part `old` by `new` (both settled at this stake's period and era) with one
    /// re-derivation (see [`Stake::add`]).
    pub fn replace(&mut self, old: &Stake, new: &Stake, pool: &Pool, half_life: u32) {
        self.sub_parts(old);
        self.add_parts(new);
        self.pos = pool.rebase(&self.pos, self.pos.period, half_life);
    }

    fn add_parts(&mut self, other: &Stake) {
        assert_eq!(
            (self.pos.period, self.pos.era),
            (other.pos.period, other.pos.era),
            "settle both first"
        );
        self.karma = self.karma.saturating_add(other.karma);
        self.pos.s += other.pos.s;
        self.pos.sk += other.pos.sk;
        self.pos.d = self.pos.d.saturating_add(other.pos.d);
    }

    /// Saturating: an aggregate and its parts are rounded separately, so a part may exceed what
    /// is left by a few units.
    fn sub_parts(&mut self, other: &Stake) {
        assert_eq!(
            (self.pos.period, self.pos.era),
            (other.pos.period, other.pos.era),
            "settle both first"
        );
        self.karma = self.karma.saturating_sub(other.karma);
        self.pos.s = self.pos.s.saturating_sub(other.pos.s);
        self.pos.sk = self.pos.sk.saturating_sub(other.pos.sk);
        self.pos.d = self.pos.d.saturating_sub(other.pos.d);
    }
}
