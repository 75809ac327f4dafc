//! Keyed randomness: every random choice of a run is a pure function of (seed, who, when, what),
//! not a position in one shared stream. So a member's misfortunes do not shift when another
//! member behaves differently, which is what lets an attacker be compared with the same member
//! behaving honestly in the same world (see `run`).

/// What a draw decides (part of its key).
#[derive(Clone, Copy, Debug)]
#[repr(u64)]
pub enum Draw {
    Pledge = 1,
    Risk,
    Strategy,
    Delegate,
    Misfortune,
    NeedKind,
    NeedSize,
    NeedLength,
    Lapse,
    LapseLength,
    Exit,
    Turnout,
    Verdict,
    DirectVoter,
}

/// The seeded source of every random choice in a run.
#[derive(Clone, Copy, Debug)]
pub struct Dice {
    seed: u64,
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Dice {
    pub fn new(seed: u64) -> Dice {
        Dice { seed }
    }

    /// A 64-bit value for this key.
    pub fn u64(&self, what: Draw, who: u64, when: u64) -> u64 {
        let mut h = mix(self.seed ^ 0x9E37_79B9_7F4A_7C15);
        for part in [what as u64, who, when] {
            h = mix(h.wrapping_add(part).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        }
        h
    }

    /// Uniform in `lo..=hi` (`lo` when `hi <= lo`).
    pub fn range(&self, what: Draw, who: u64, when: u64, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let span = u128::from(hi - lo) + 1;
        let r = (u128::from(self.u64(what, who, when)) * span) >> 64;
        lo + u64::try_from(r).expect("below the span")
    }

    /// `true` with probability `bps` / 10,000.
    pub fn chance_bps(&self, what: Draw, who: u64, when: u64, bps: u64) -> bool {
        self.range(what, who, when, 0, 9_999) < bps
    }

    /// `true` with probability `ppm` / 1,000,000.
    pub fn chance_ppm(&self, what: Draw, who: u64, when: u64, ppm: u64) -> bool {
        self.range(what, who, when, 0, 999_999) < ppm
    }

    /// `true` with probability `percent` / 100.
    pub fn chance(&self, what: Draw, who: u64, when: u64, percent: u32) -> bool {
        self.chance_bps(what, who, when, u64::from(percent) * 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_key_gives_the_same_draw_and_another_key_another() {
        let d = Dice::new(7);
        assert_eq!(d.u64(Draw::Misfortune, 3, 9), d.u64(Draw::Misfortune, 3, 9));
        assert_ne!(
            d.u64(Draw::Misfortune, 3, 9),
            d.u64(Draw::Misfortune, 3, 10)
        );
        assert_ne!(d.u64(Draw::Misfortune, 3, 9), d.u64(Draw::Exit, 3, 9));
        assert_ne!(
            d.u64(Draw::Misfortune, 3, 9),
            Dice::new(8).u64(Draw::Misfortune, 3, 9)
        );
    }

    #[test]
    fn a_chance_happens_about_as_often_as_it_says() {
        let d = Dice::new(1);
        let hits = (0..100_000)
            .filter(|i| d.chance_bps(Draw::Lapse, *i, 0, 2_500))
            .count();
        assert!((24_000..26_000).contains(&hits), "{hits}");
        assert!((0..1000).all(|i| d.range(Draw::NeedSize, i, 0, 5, 9) <= 9));
        assert!((0..1000).all(|i| d.range(Draw::NeedSize, i, 0, 5, 9) >= 5));
    }
}
