//! Deterministic integer fixed-point arithmetic: 256-bit `mul_div` and the half-life decay
//! `v · 2^(−n/h)`. No floats anywhere: every node on every platform computes the same bits.

use ethnum::U256;
use kassa_types::rules::HALF_LIFE_PERIODS_MAX;
use std::sync::OnceLock;

/// `floor(a · b / c)`, or `None` if `c == 0` or the result does not fit in `u128`.
pub fn mul_div(a: u128, b: u128, c: u128) -> Option<u128> {
    if c == 0 {
        return None;
    }
    let q = U256::from(a) * U256::from(b) / U256::from(c);
    u128::try_from(q).ok()
}

/// `ceil(a · b / c)`, or `None` if `c == 0` or the result does not fit in `u128`.
pub fn mul_div_ceil(a: u128, b: u128, c: u128) -> Option<u128> {
    if c == 0 {
        return None;
    }
    let c = U256::from(c);
    let q = (U256::from(a) * U256::from(b) + c - 1) / c;
    u128::try_from(q).ok()
}

/// `Q64` one: fixed-point numbers below have 64 fractional bits.
pub const Q64_ONE: u128 = 1 << 64;

/// `T[i] = 2^(−2^−(i+1))` in Q64, rounded down: 2^−1/2, 2^−1/4, … Each entry is the integer square
/// root of the previous, so the table is exact integer arithmetic evaluated at compile time.
const EXP2_NEG_TABLE: [u128; 64] = {
    let mut t = [0u128; 64];
    let mut prev: u128 = 1 << 63; // 0.5
    let mut i = 0;
    while i < 64 {
        // sqrt(x / 2^64) · 2^64 = sqrt(x · 2^64); x < 2^64 so x · 2^64 < 2^128.
        prev = (prev << 64).isqrt();
        t[i] = prev;
        i += 1;
    }
    t
};

/// `2^(−r/h)` in Q64 for `0 <= r < h`, rounded down.
fn exp2_neg_fraction(r: u64, h: u64) -> u128 {
    debug_assert!(r < h);
    let mut acc = Q64_ONE;
    let mut rem = r;
    // The binary digits of r/h, by long division; digit i contributes the factor T[i].
    for factor in EXP2_NEG_TABLE {
        if rem == 0 {
            break;
        }
        rem *= 2;
        if rem >= h {
            rem -= h;
            acc = (acc * factor) >> 64;
        }
    }
    acc
}

/// `2^(−r/h)` for every `r < h`, computed once per half-life `h` (a pure function of `h`, so
/// remembering it changes no result); half-lives are at most [`HALF_LIFE_PERIODS_MAX`] periods.
fn fractions(h: u64) -> &'static [u128] {
    const N: usize = HALF_LIFE_PERIODS_MAX as usize + 1;
    static TABLES: [OnceLock<Box<[u128]>>; N] = [const { OnceLock::new() }; N];
    let i = usize::try_from(h).expect("a validated half-life");
    TABLES[i].get_or_init(|| (0..h).map(|r| exp2_neg_fraction(r, h)).collect())
}

/// `floor(v · 2^(−n/h))`: what `v` decays to after `n` periods with a half-life of `h` periods.
/// Monotone in `v` and `n`, never more than `v`, and superadditive rounding (the decay of a sum is
/// at least the sum of the decays), so a total decayed at once stays ≥ the parts decayed apart.
pub fn decay(v: u128, n: u64, h: u32) -> u128 {
    assert!(
        (1..=HALF_LIFE_PERIODS_MAX).contains(&h),
        "half-life is validated to be 1 to {HALF_LIFE_PERIODS_MAX} periods"
    );
    let h = u64::from(h);
    let halvings = n / h;
    if halvings >= 128 || v == 0 {
        return 0;
    }
    let v = v >> halvings;
    let r = n % h;
    if r == 0 {
        return v;
    }
    let f = fractions(h)[usize::try_from(r).expect("r < h")];
    // floor(v · f / 2^64) with v = hi · 2^64 + lo: hi · f + floor(lo · f / 2^64), exactly, as
    // f < 2^64 keeps both products within 128 bits.
    let (hi, lo) = (v >> 64, v & u128::from(u64::MAX));
    hi * f + ((lo * f) >> 64)
}

/// `Σ_{i<n} decay(v, i, h)`, rounded down: what `v` credited in each of `n` consecutive periods
/// is worth at the last of them. O(log n): the sum of the first `m` terms doubles as
/// `S(2m) = S(m) + decay(S(m), m)` and grows by one as `S(m + 1) = v + decay(S(m), 1)`.
pub fn decayed_sum(v: u128, n: u64, h: u32) -> u128 {
    let mut acc: u128 = 0;
    let mut len: u64 = 0;
    for bit in (0..u64::BITS - n.leading_zeros()).rev() {
        acc = acc.saturating_add(decay(acc, len, h));
        len *= 2;
        if (n >> bit) & 1 == 1 {
            acc = v.saturating_add(decay(acc, 1, h));
            len += 1;
        }
    }
    debug_assert_eq!(len, n);
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decayed_sum_is_the_sum_of_its_decayed_terms_within_rounding() {
        for (v, n, h) in [
            (1u128 << 40, 1u64, 6u32),
            (1 << 40, 7, 6),
            (12_345 << 32, 36, 6),
            (1 << 50, 100, 3),
        ] {
            let direct: u128 = (0..n).map(|i| decay(v, i, h)).sum();
            let fast = decayed_sum(v, n, h);
            assert!(
                fast <= direct + u128::from(n) && fast + 2 * u128::from(n) >= direct,
                "{v} {n} {h}: {fast} vs {direct}"
            );
        }
        assert_eq!(decayed_sum(5, 0, 6), 0);
        assert_eq!(decayed_sum(5, 1, 6), 5);
    }

    #[test]
    fn decay_equals_the_wide_product_for_every_half_life_and_remainder() {
        for h in [1u32, 2, 3, 6, 7, 12, 1200] {
            for n in [0u64, 1, 2, 5, 6, 13, 1199, 1201] {
                for v in [1u128, 999, 1 << 70, u128::MAX, u128::MAX / 3] {
                    let hh = u64::from(h);
                    let v2 = if n / hh >= 128 { 0 } else { v >> (n / hh) };
                    let wide = if n % hh == 0 {
                        v2
                    } else {
                        let f = exp2_neg_fraction(n % hh, hh);
                        u128::try_from((U256::from(v2) * U256::from(f)) >> 64).unwrap()
                    };
                    assert_eq!(decay(v, n, h), wide, "{v} {n} {h}");
                }
            }
        }
    }

    #[test]
    fn decay_halves_every_half_life_and_is_exact_on_whole_half_lives() {
        assert_eq!(decay(1 << 40, 6, 6), 1 << 39);
        assert_eq!(decay(1 << 40, 12, 6), 1 << 38);
        assert_eq!(decay(1000, 0, 6), 1000);
        assert_eq!(decay(u128::MAX, 128 * 6, 6), 0);
    }

    #[test]
    fn decay_after_one_period_of_a_six_period_half_life_is_the_sixth_root_of_one_half() {
        // 2^(-1/6) = 0.890898718140339…
        let v = 1_000_000_000_000u128;
        let d = decay(v, 1, 6);
        assert!((890_898_718_130..=890_898_718_141).contains(&d), "{d}");
        // Applying one period six times is (within rounding) one half.
        let mut x = v;
        for _ in 0..6 {
            x = decay(x, 1, 6);
        }
        assert!(x <= v / 2 && x + 10 >= v / 2, "{x}");
    }

    #[test]
    fn decay_never_grows_and_is_monotone() {
        let mut prev = u128::MAX;
        for n in 0..50 {
            let d = decay(1 << 100, n, 7);
            assert!(d <= prev);
            assert!(d <= 1 << 100);
            prev = d;
        }
        assert!(decay(1000, 3, 7) >= decay(999, 3, 7));
    }

    #[test]
    fn the_decay_of_a_sum_is_at_least_the_sum_of_the_decays() {
        let parts = [12_345u128, 99_999, 1, 7_777_777, 3];
        for n in [1u64, 2, 5, 13] {
            let sum: u128 = parts.iter().sum();
            let apart: u128 = parts.iter().map(|p| decay(*p, n, 6)).sum();
            assert!(decay(sum, n, 6) >= apart);
        }
    }

    #[test]
    fn mul_div_uses_a_wide_intermediate_and_reports_overflow() {
        assert_eq!(mul_div(u128::MAX, u128::MAX, u128::MAX), Some(u128::MAX));
        assert_eq!(mul_div(u128::MAX, 2, 1), None);
        assert_eq!(mul_div(1, 1, 0), None);
        assert_eq!(mul_div(7, 3, 2), Some(10));
        assert_eq!(mul_div_ceil(7, 3, 2), Some(11));
        assert_eq!(mul_div_ceil(6, 3, 2), Some(9));
    }
}
