//! Keys, addresses, signatures and hashes.
//!
//! An account *is* an ed25519 public key. Signatures are checked with `ed25519-zebra`, which
//! implements the ZIP-215 validation rules: a signature is valid iff the cofactored verification
//! equation holds, with non-canonical point encodings accepted and `s >= L` rejected. Because the
//! rule is fully specified, single and batch verification agree on every input and every platform
//! — a requirement for consensus (a node that accepted a transaction its peers reject would fork).
//! Batches are checked by [`verify_batch`]: `ed25519-zebra`'s batch equation on
//! `curve25519-dalek`, with the signers' decompressed keys cached; tests hold it to `ed25519-zebra`
//! on valid, tampered, small-order and non-canonical inputs.

use borsh::{BorshDeserialize, BorshSerialize};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use ed25519_zebra::{SigningKey, VerificationKey};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// Human-readable prefix of addresses.
pub const ADDRESS_HRP: &str = "kassa";

/// A SHA-256 digest.
#[derive(
    Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// SHA-256 of the concatenation of `parts`.
    pub fn of(parts: &[&[u8]]) -> Hash {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        Hash(h.finalize().into())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", hex::encode(self.0))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", hex::encode(self.0))
    }
}

/// An account: the 32 bytes of an ed25519 public key. Displayed as bech32 (`kassa1…`).
///
/// Any 32 bytes are an address (an address that is not a valid point simply can never sign).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Address(pub [u8; 32]);

/// Why a string is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("not bech32: {0}")]
    Bech32(String),
    #[error("wrong prefix {0:?}, expected \"kassa\"")]
    Prefix(String),
    #[error("an address is 32 bytes, this one is {0}")]
    Length(usize),
}

impl Address {
    /// The bech32 form, e.g. `kassa1qy…`.
    pub fn to_bech32(&self) -> String {
        let hrp = bech32::Hrp::parse(ADDRESS_HRP).expect("valid hrp");
        bech32::encode::<bech32::Bech32>(hrp, &self.0).expect("32 bytes always encode")
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_bech32())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_bech32())
    }
}

impl FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use bech32::primitives::decode::CheckedHrpstring;
        let checked = CheckedHrpstring::new::<bech32::Bech32>(s)
            .map_err(|e| AddressError::Bech32(e.to_string()))?;
        if checked.hrp().as_str() != ADDRESS_HRP {
            return Err(AddressError::Prefix(checked.hrp().to_string()));
        }
        let bytes: Vec<u8> = checked.byte_iter().collect();
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| AddressError::Length(bytes.len()))?;
        Ok(Address(arr))
    }
}

/// An ed25519 signature (R ‖ s).
#[derive(Clone, Copy, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", hex::encode(self.0))
    }
}

/// Whether `key` is a canonical encoding of a point of prime order: a key that can sign only with
/// its secret. The identity, the other small-order points, points with a torsion component and
/// non-canonical encodings are refused as signers and recipients, because ZIP-215 lets anyone
/// forge a signature for a small-order key (money sent to one would be anyone's).
pub fn is_valid_public_key(key: &Address) -> bool {
    let compressed = curve25519_dalek::edwards::CompressedEdwardsY(key.0);
    let Some(point) = compressed.decompress() else {
        return false;
    };
    point.compress().0 == key.0 && !point.is_small_order() && point.is_torsion_free()
}

/// Verifies `signature` by `signer` over `message` under ZIP-215 rules.
pub fn verify(signer: &Address, message: &[u8], signature: &Signature) -> bool {
    let Ok(key) = VerificationKey::try_from(signer.0) else {
        return false;
    };
    key.verify(&ed25519_zebra::Signature::from(signature.0), message)
        .is_ok()
}

/// Verifies many signatures at once. Returns `true` iff every one of them is valid; by ZIP-215
/// this is exactly the conjunction of [`verify`] on each item.
///
/// The same equation as `ed25519-zebra`'s batch verifier (whose single verification [`verify`]
/// uses), `[8](−Σzᵢsᵢ·B + Σzᵢ·Rᵢ + Σ(Σzᵢkᵢ)·A) = 0` with random 128-bit `zᵢ` and the terms of
/// each distinct key coalesced, but with the keys' decompressed points taken from a bounded
/// cache ([`KeyCache`]): decompressing a point costs as much as a third of a signature's share
/// of the batch, and the same members sign again and again.
pub fn verify_batch<'a>(
    items: impl IntoIterator<Item = (&'a Address, &'a [u8], &'a Signature)>,
) -> bool {
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::scalar::Scalar;
    use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};

    let items: Vec<_> = items.into_iter().collect();
    match items[..] {
        [] => return true,
        [(signer, message, signature)] => return verify_one(signer, message, signature),
        _ => {}
    }
    // The distinct keys, each with the index of its coalesced coefficient.
    let mut keys: Vec<[u8; 32]> = Vec::new();
    let mut slot_of: HashMap<[u8; 32], usize> = HashMap::with_capacity(items.len());
    let slots: Vec<usize> = items
        .iter()
        .map(|(signer, _, _)| {
            *slot_of.entry(signer.0).or_insert_with(|| {
                keys.push(signer.0);
                keys.len() - 1
            })
        })
        .collect();
    let Some(points) = KeyCache::points(&keys) else {
        return false;
    };
    // The random coefficients: SHA-256 of a fresh secret seed and the item's index.
    let mut seed = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
    let mut b_coeff = Scalar::ZERO;
    let mut a_coeffs = vec![Scalar::ZERO; keys.len()];
    let mut r_coeffs = Vec::with_capacity(items.len());
    let mut rs = Vec::with_capacity(items.len());
    for (i, ((signer, message, signature), slot)) in items.iter().zip(&slots).enumerate() {
        let Some((r, s, k)) = terms(signer, message, signature) else {
            return false;
        };
        let index = u64::try_from(i).expect("fewer than 2^64 items");
        let digest = Hash::of(&[&seed, &index.to_le_bytes()]).0;
        let mut z = [0u8; 32];
        z[..16].copy_from_slice(&digest[..16]);
        let z = Scalar::from_bytes_mod_order(z);
        b_coeff -= z * s;
        a_coeffs[*slot] += z * k;
        r_coeffs.push(z);
        rs.push(r);
    }
    let check = EdwardsPoint::vartime_multiscalar_mul(
        std::iter::once(&b_coeff)
            .chain(a_coeffs.iter())
            .chain(r_coeffs.iter()),
        std::iter::once(&ED25519_BASEPOINT_POINT)
            .chain(points.iter())
            .chain(rs.iter()),
    );
    check.mul_by_cofactor().is_identity()
}

/// [`verify_batch`] of one item: the same equation with `z = 1`, `[8]([s]B − R − [k]A) = 0`, in
/// one double-base multiplication (with the basepoint's precomputed table) instead of a
/// three-point one, and no random coefficient to draw.
fn verify_one(signer: &Address, message: &[u8], signature: &Signature) -> bool {
    use curve25519_dalek::traits::IsIdentity;

    let Some(points) = KeyCache::points(&[signer.0]) else {
        return false;
    };
    let Some((r, s, k)) = terms(signer, message, signature) else {
        return false;
    };
    let check = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-points[0], &s) - r;
    check.mul_by_cofactor().is_identity()
}

/// A signature's terms in the verification equation: its `R` decompressed, its `s` (refused
/// unless canonical, `s < ℓ`), and the challenge `k = SHA-512(R ‖ A ‖ message) mod ℓ`.
fn terms(
    signer: &Address,
    message: &[u8],
    signature: &Signature,
) -> Option<(
    EdwardsPoint,
    curve25519_dalek::scalar::Scalar,
    curve25519_dalek::scalar::Scalar,
)> {
    use curve25519_dalek::scalar::Scalar;
    use sha2::Sha512;

    let (r_bytes, s_bytes) = signature.0.split_at(32);
    let r_bytes: [u8; 32] = r_bytes.try_into().expect("64 = 32 + 32");
    let s_bytes: [u8; 32] = s_bytes.try_into().expect("64 = 32 + 32");
    let r = CompressedEdwardsY(r_bytes).decompress()?;
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    let k = Scalar::from_bytes_mod_order_wide(
        &Sha512::new()
            .chain_update(r_bytes)
            .chain_update(signer.0)
            .chain_update(message)
            .finalize()
            .into(),
    );
    Some((r, s, k))
}

/// Decompressed public keys of recent signers, shared by the whole process: two generations of
/// at most [`KeyCache::GENERATION`] keys each; a key found in the old one moves to the young
/// one, and when the young one is full the old one is dropped. A pure cache of a pure function
/// (decompression of 32 bytes), so it never changes an answer; lookups only, never iterated.
struct KeyCache {
    young: HashMap<[u8; 32], EdwardsPoint>,
    old: HashMap<[u8; 32], EdwardsPoint>,
}

impl KeyCache {
    /// Keys per generation (a point and its key take ≈ 200 bytes: ≤ 13 MiB in all).
    const GENERATION: usize = 1 << 15;

    fn shared() -> &'static std::sync::Mutex<KeyCache> {
        static CACHE: std::sync::OnceLock<std::sync::Mutex<KeyCache>> = std::sync::OnceLock::new();
        CACHE.get_or_init(|| {
            std::sync::Mutex::new(KeyCache {
                young: HashMap::new(),
                old: HashMap::new(),
            })
        })
    }

    fn get(&mut self, key: &[u8; 32]) -> Option<EdwardsPoint> {
        if let Some(p) = self.young.get(key) {
            return Some(*p);
        }
        let p = self.old.remove(key)?;
        self.insert(*key, p);
        Some(p)
    }

    fn insert(&mut self, key: [u8; 32], point: EdwardsPoint) {
        if self.young.len() >= Self::GENERATION {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, point);
    }

    /// The points of `keys`, decompressing (outside the lock) those not cached; `None` if one
    /// is not a point.
    fn points(keys: &[[u8; 32]]) -> Option<Vec<EdwardsPoint>> {
        let cached: Vec<_> = {
            let mut cache = Self::shared().lock().unwrap_or_else(|e| e.into_inner());
            keys.iter().map(|k| cache.get(k)).collect()
        };
        let mut fresh = Vec::new();
        let points = keys
            .iter()
            .zip(cached)
            .map(|(k, c)| {
                c.or_else(|| {
                    let p = CompressedEdwardsY(*k).decompress()?;
                    fresh.push((*k, p));
                    Some(p)
                })
            })
            .collect::<Option<Vec<_>>>()?;
        if !fresh.is_empty() {
            let mut cache = Self::shared().lock().unwrap_or_else(|e| e.into_inner());
            for (k, p) in fresh {
                cache.insert(k, p);
            }
        }
        Some(points)
    }
}

/// A secret signing key. Never encoded, never printed.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// A key from 32 secret seed bytes.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(SigningKey::from(seed))
    }
    /// A deterministic key derived from a label, for development accounts and tests only.
    pub fn from_label(label: &str) -> Self {
        Self::from_seed(Hash::of(&[b"KASSA_DEV_KEY_V1", label.as_bytes()]).0)
    }
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
        Self::from_seed(seed)
    }
    /// The 32 seed bytes (for an encrypted keystore).
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
    /// The account of this key.
    pub fn address(&self) -> Address {
        Address(self.0.verification_key().into())
    }
    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.address())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::scalar::Scalar;

    #[test]
    fn addresses_round_trip_through_bech32_with_the_kassa_prefix() {
        let a = SecretKey::from_label("alice").address();
        let s = a.to_bech32();
        assert!(s.starts_with("kassa1"));
        assert_eq!(s.parse::<Address>().unwrap(), a);
    }

    #[test]
    fn malformed_addresses_are_refused_with_a_reason() {
        let a = SecretKey::from_label("alice").address().to_bech32();
        let mut flipped = a.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'q' { b'p' } else { b'q' };
        assert!(matches!(
            String::from_utf8(flipped).unwrap().parse::<Address>(),
            Err(AddressError::Bech32(_))
        ));
        let hrp = bech32::Hrp::parse("cosmos").unwrap();
        let other = bech32::encode::<bech32::Bech32>(hrp, &[0u8; 32]).unwrap();
        assert!(matches!(
            other.parse::<Address>(),
            Err(AddressError::Prefix(_))
        ));
        let hrp = bech32::Hrp::parse(ADDRESS_HRP).unwrap();
        let short = bech32::encode::<bech32::Bech32>(hrp, &[0u8; 20]).unwrap();
        assert_eq!(short.parse::<Address>(), Err(AddressError::Length(20)));
    }

    #[test]
    fn a_valid_signature_verifies_and_a_tampered_one_does_not() {
        let k = SecretKey::from_label("bob");
        let sig = k.sign(b"hello");
        assert!(verify(&k.address(), b"hello", &sig));
        assert!(!verify(&k.address(), b"hellO", &sig));
        let mut bad = sig;
        bad.0[10] ^= 1;
        assert!(!verify(&k.address(), b"hello", &bad));
        assert!(verify_batch([(&k.address(), &b"hello"[..], &sig)]));
        assert!(!verify_batch([
            (&k.address(), &b"hello"[..], &sig),
            (&k.address(), &b"hello"[..], &bad)
        ]));
    }

    /// Encodings of the eight small-order points, canonical and (where y < 19) non-canonical.
    fn small_order_encodings() -> Vec<[u8; 32]> {
        let mut out = Vec::new();
        for p in EIGHT_TORSION.iter() {
            let enc = p.compress().to_bytes();
            out.push(enc);
            // y + p (non-canonical) exists only for y < 19; p = 2^255 - 19.
            let mut y = enc;
            let sign = y[31] & 0x80;
            y[31] &= 0x7f;
            let small = y[1..].iter().all(|b| *b == 0) && y[0] < 19;
            if small {
                let mut nc = [0xffu8; 32];
                nc[0] = 0xed + y[0];
                nc[31] = 0x7f | sign;
                out.push(nc);
            }
        }
        out
    }

    #[test]
    fn single_and_batch_verification_agree_on_small_order_and_non_canonical_edge_cases() {
        let encodings = small_order_encodings();
        assert!(encodings.len() > 8, "expected non-canonical variants too");
        let mut checked = 0;
        let mut accepted = 0;
        let good = SecretKey::from_seed([7; 32]);
        let good_sig = good.sign(b"good");
        for a in &encodings {
            for r in &encodings {
                for s in [Scalar::ZERO.to_bytes(), Scalar::ONE.to_bytes(), [0xff; 32]] {
                    let mut sig = [0u8; 64];
                    sig[..32].copy_from_slice(r);
                    sig[32..].copy_from_slice(&s);
                    let sig = Signature(sig);
                    let addr = Address(*a);
                    let single = verify(&addr, b"edge", &sig);
                    let batch = verify_batch([(&addr, &b"edge"[..], &sig)]);
                    // Beside a valid signature, in the many-item equation.
                    let pair = verify_batch([
                        (&addr, &b"edge"[..], &sig),
                        (&good.address(), &b"good"[..], &good_sig),
                    ]);
                    assert_eq!(
                        (single, single),
                        (batch, pair),
                        "A={} R={} s={}",
                        hex::encode(a),
                        hex::encode(r),
                        hex::encode(s)
                    );
                    if s == [0xff; 32] {
                        assert!(!single, "s >= L must be rejected");
                    }
                    checked += 1;
                    accepted += usize::from(single);
                }
            }
        }
        // ZIP-215: with s = 0 and small-order A and R the cofactored equation holds, so these
        // (including non-canonical encodings) are accepted. A library with other rules would not.
        assert!(
            accepted >= encodings.len() * encodings.len(),
            "accepted {accepted} of {checked}"
        );
    }

    #[test]
    fn batches_of_repeated_signers_agree_with_each_signature_and_with_zebra_cold_or_cached() {
        let keys: Vec<SecretKey> = (0..5)
            .map(|i| SecretKey::from_label(&format!("batch-{i}")))
            .collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut valid, mut invalid) = (0, 0);
        for round in 0..60 {
            let n = 1 + usize::try_from(next() % 24).unwrap();
            let mut items: Vec<(Address, Vec<u8>, Signature)> = Vec::new();
            for j in 0..n {
                let key = &keys[usize::try_from(next() % 5).unwrap()];
                let message = format!("round {round} item {j}").into_bytes();
                let mut sig = key.sign(&message);
                let mut signer = key.address();
                match next() % 40 {
                    0 => sig.0[40] ^= 1,                       // s changed
                    1 => sig.0[63] |= 0xf0,                    // s >= L
                    2 => sig.0[3] ^= 1,                        // R changed
                    3 => signer = keys[(j + 1) % 5].address(), // someone else's
                    4 => sig = key.sign(b"another message"),   // another message
                    _ => {}
                }
                items.push((signer, message, sig));
            }
            let expected = items.iter().all(|(a, m, s)| verify(a, m, s));
            let batch = verify_batch(items.iter().map(|(a, m, s)| (a, m.as_slice(), s)));
            assert_eq!(batch, expected, "round {round}");
            let mut zebra = ed25519_zebra::batch::Verifier::new();
            for (a, m, s) in &items {
                zebra.queue((
                    ed25519_zebra::VerificationKeyBytes::from(a.0),
                    ed25519_zebra::Signature::from(s.0),
                    m.as_slice(),
                ));
            }
            assert_eq!(
                zebra
                    .verify(rand_core_10::UnwrapErr(getrandom::SysRng))
                    .is_ok(),
                expected,
                "round {round}"
            );
            if expected {
                valid += 1;
            } else {
                invalid += 1;
            }
        }
        assert!(
            valid > 5 && invalid > 5,
            "{valid} valid and {invalid} invalid batches"
        );
    }

    #[test]
    fn random_garbage_never_verifies_and_single_and_batch_agree() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed
        };
        for _ in 0..200 {
            let mut a = [0u8; 32];
            let mut sig = [0u8; 64];
            for b in a.iter_mut().chain(sig.iter_mut()) {
                *b = (next() >> 56) as u8;
            }
            let (addr, sig) = (Address(a), Signature(sig));
            let single = verify(&addr, b"x", &sig);
            assert!(!single);
            assert_eq!(single, verify_batch([(&addr, &b"x"[..], &sig)]));
        }
    }
}
