//! The transaction decoder, and the execution of whatever it accepts.
//!
//! Bytes that decode must be the one canonical encoding of their transaction, and admission's
//! decoder must give the same verdict. The transaction is then executed in a block of the
//! populated society of [`crate::state::start`] as if its signature had been verified (a fuzzer
//! cannot sign; the corpus seeds carry the test accounts' addresses and nonces), under the audited
//! test chain's checks.

use kassa_types::SignedTransaction;

/// Decodes `data` and, if it is a transaction, executes it.
///
/// # Panics
/// When decoding is not canonical, the two decoders disagree, or executing breaks the test
/// chain's checks.
pub fn run(data: &[u8]) {
    let decoded = SignedTransaction::decode(data);
    let admitted = kassa_state::decode_tx(data);
    assert_eq!(
        decoded.is_ok(),
        admitted.is_ok(),
        "admission decodes what the codec decodes"
    );
    let Ok(stx) = decoded else {
        return;
    };
    assert_eq!(stx.encode(), data, "a transaction has one encoding");
    assert_eq!(stx.hash_and_size().1, data.len());
    let mut chain = crate::state::start(0).chain.clone();
    chain.trust_signatures = true;
    chain.block(&[stx]);
}
