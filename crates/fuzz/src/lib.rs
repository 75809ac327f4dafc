//! Kassa's fuzz targets, as plain functions of a byte string, so that one definition serves the
//! coverage-guided fuzzers (`fuzz/`, driven by `scripts/fuzz`) and the tests that replay the
//! committed corpora on every `.ci/run`.
//!
//! Each target panics exactly when it finds a bug:
//! - [`tx::run`]: the transaction decoder (one encoding per transaction, the same verdict as
//!   admission) and the execution of whatever decodes, against a populated society, audited.
//! - [`block::run`]: the block decoder, the engine's block codec, and finalization certificates
//!   (nothing that is not signed by a quorum verifies).
//! - [`api::run`]: HTTP requests to the API of a real in-process node: never a server error, and
//!   every refusal in the API's JSON error shape.
//! - [`host::run`]: the hosting protocol's messages from any peer: one encoding each, bounded
//!   decoding.
//! - [`state::run`]: the state machine driven by transaction sequences among a few accounts, with
//!   the §9 invariants audited after every block and failed transactions checked to change
//!   nothing but their fee and nonce.
//!
//! [`seeds`] makes the starting corpora.

pub mod api;
pub mod block;
pub mod host;
pub mod seeds;
pub mod state;
pub mod tx;

/// The names of the targets, as the corpus folders and `scripts/fuzz` spell them.
pub const TARGETS: [&str; 5] = ["tx", "block", "api", "state", "host"];

/// Runs target `name` on `data`.
///
/// # Panics
/// When the target finds a bug, or `name` is not one of [`TARGETS`].
pub fn run(name: &str, data: &[u8]) {
    match name {
        "tx" => tx::run(data),
        "block" => block::run(data),
        "api" => api::run(data),
        "state" => state::run(data),
        "host" => host::run(data),
        other => panic!("no fuzz target {other}"),
    }
}

/// Choices read from the fuzzer's bytes: each call takes what it needs from the front, and an
/// exhausted input answers zero, so every byte string is a valid (if short) program.
#[derive(Debug)]
pub struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads choices from `bytes`.
    pub fn new(bytes: &'a [u8]) -> Input<'a> {
        Input { bytes }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The next byte (0 once exhausted).
    pub fn byte(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((b, rest)) => {
                self.bytes = rest;
                *b
            }
            None => 0,
        }
    }

    /// A number below `n` (0 when `n` is 0), from one byte, or two when `n` exceeds 256.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let x = if n <= 256 {
            u64::from(self.byte())
        } else {
            u64::from(u16::from_le_bytes([self.byte(), self.byte()]))
        };
        x % n
    }

    /// An index into a slice of length `len`.
    pub fn index(&mut self, len: usize) -> usize {
        let n = u64::try_from(len).expect("a slice length fits in u64");
        usize::try_from(self.below(n)).expect("below a usize")
    }

    /// One of `choices` (which must not be empty).
    pub fn pick<T: Clone>(&mut self, choices: &[T]) -> T {
        choices[self.index(choices.len())].clone()
    }

    /// Eight bytes, little-endian.
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(std::array::from_fn(|_| self.byte()))
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Everything not read yet.
    pub fn rest(self) -> &'a [u8] {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::Input;

    #[test]
    fn an_exhausted_input_answers_zero_and_choices_stay_in_range() {
        let mut i = Input::new(&[7, 255, 1, 0]);
        assert_eq!(i.below(5), 2);
        assert_eq!(i.below(1_000), 511);
        assert_eq!(i.pick(&['a', 'b']), 'a');
        assert!(i.is_empty());
        assert_eq!((i.byte(), i.u64(), i.below(9)), (0, 0, 0));
    }
}
