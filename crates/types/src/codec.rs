//! The canonical encoding: Borsh (little-endian fixed-width integers, `u32` length prefixes,
//! one-byte enum tags, `0/1` for `Option` and `bool`), plus two rules of our own:
//!
//! 1. Every variable-length field is a [`BoundedString`] or [`BoundedVec`] whose maximum length is
//!    part of its type; the length prefix is checked *before* anything is allocated.
//! 2. [`decode`] takes a size limit, refuses longer input without looking at it, and refuses
//!    trailing bytes, so every value has exactly one encoding that decodes.
//!
//! State records that millions of members each hold (a membership, its stake) write their
//! counters as LEB128 varints instead ([`varint`]), decoded just as strictly.
//!
//! Borsh itself never panics on malformed input; a `bool` must be `0` or `1`, an `Option` tag `0`
//! or `1`, an enum tag in range, a string valid UTF-8.

use borsh::io::{Error as IoError, ErrorKind, Read, Write};
use borsh::{BorshDeserialize, BorshSerialize};
use std::fmt;
use std::ops::Deref;

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input is longer than the limit for this type.
    #[error("input is {len} bytes, more than the limit of {max}")]
    TooLarge { len: usize, max: usize },
    /// The bytes are not a valid encoding (bad tag, short input, over-long field, trailing bytes…).
    #[error("malformed encoding: {0}")]
    Malformed(String),
}

/// Encodes a value canonically, into a buffer of exactly its length (`borsh::to_vec` reserves
/// 1 KiB for every value, which a store holding millions of small records would keep).
pub fn encode<T: BorshSerialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(value));
    value
        .serialize(&mut out)
        .expect("writing to a Vec cannot fail");
    out
}

/// The length of a value's canonical encoding, without building it.
pub fn encoded_len<T: BorshSerialize>(value: &T) -> usize {
    borsh::object_length(value).expect("counting bytes cannot fail")
}

/// SHA-256 of a value's canonical encoding (`Hash::of(&[&encode(value)])`) and the encoding's
/// length, through a throw-away buffer (`borsh::to_vec`: one allocation, one pass; streaming
/// Borsh's many small writes into the hash measured slower, and so did counting the length
/// first, as [`encode`] does).
pub fn hash_and_len<T: BorshSerialize>(value: &T) -> (crate::Hash, usize) {
    let bytes = borsh::to_vec(value).expect("writing to a Vec cannot fail");
    (crate::Hash::of(&[&bytes]), bytes.len())
}

/// Decodes exactly one value from `bytes`, which must be at most `max_len` long.
pub fn decode<T: BorshDeserialize>(bytes: &[u8], max_len: usize) -> Result<T, DecodeError> {
    if bytes.len() > max_len {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: max_len,
        });
    }
    borsh::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))
}

/// Compact unsigned integers (LEB128) for the state records every member holds, where most
/// counters are small and a fixed 16-byte field would be mostly zeros: seven bits a byte, least
/// significant first, the high bit set on every byte but the last. Use on a `u64` or `u128` field
/// with `#[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]`.
/// Decoding is canonical like the rest of [`decode`]: a value has exactly one encoding, so an
/// over-long one (a redundant zero byte at the end) or one past the field's type is refused.
pub mod varint {
    use super::{ErrorKind, IoError, Read, Write};
    use borsh::BorshDeserialize;

    /// An unsigned integer type a varint field may have.
    pub trait Unsigned: Copy + Into<u128> + TryFrom<u128> {
        const BITS: u32;
    }
    impl Unsigned for u64 {
        const BITS: u32 = u64::BITS;
    }
    impl Unsigned for u128 {
        const BITS: u32 = u128::BITS;
    }

    /// The longest encoding of a `u128`: ⌈128 / 7⌉ bytes.
    const U128_BYTES: usize = 19;

    fn malformed(what: String) -> IoError {
        IoError::new(ErrorKind::InvalidData, what)
    }

    /// Writes `v` in LEB128.
    pub fn write<T: Unsigned, W: Write>(v: &T, writer: &mut W) -> Result<(), IoError> {
        let mut v: u128 = (*v).into();
        let mut buf = [0u8; U128_BYTES];
        let mut n = 0;
        loop {
            // The low seven bits; the cast keeps exactly them.
            let low = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                buf[n] = low;
                n += 1;
                return writer.write_all(&buf[..n]);
            }
            buf[n] = low | 0x80;
            n += 1;
        }
    }

    /// Reads a canonical LEB128 value of type `T`.
    pub fn read<T: Unsigned, R: Read>(reader: &mut R) -> Result<T, IoError> {
        let v = read_u128(reader)?;
        T::try_from(v).map_err(|_| malformed(format!("varint exceeds {} bits", T::BITS)))
    }

    fn read_u128<R: Read>(reader: &mut R) -> Result<u128, IoError> {
        let mut v = 0u128;
        for i in 0..U128_BYTES {
            let byte = u8::deserialize_reader(reader)?;
            // The last byte carries the top two bits only.
            if i == U128_BYTES - 1 && byte > 0b11 {
                return Err(malformed("varint exceeds 128 bits".into()));
            }
            v |= u128::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                if byte == 0 && i > 0 {
                    return Err(malformed("varint has a redundant zero byte".into()));
                }
                return Ok(v);
            }
        }
        unreachable!("the last byte has no continuation bit, checked above")
    }
}

/// A value whose encoded length is bounded by its type.
pub trait Bounded {
    /// The largest length (in bytes or items) a value of this type may have.
    const MAX: usize;
}

fn read_len<R: Read>(reader: &mut R, max: usize, what: &str) -> Result<usize, IoError> {
    let len = u32::deserialize_reader(reader)?;
    let len = usize::try_from(len).map_err(|_| IoError::new(ErrorKind::InvalidData, "length"))?;
    if len > max {
        return Err(IoError::new(
            ErrorKind::InvalidData,
            format!("{what} of length {len} exceeds the maximum {max}"),
        ));
    }
    Ok(len)
}

/// A UTF-8 string of at most `MAX` bytes.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BoundedString<const MAX: usize>(String);

impl<const MAX: usize> BoundedString<MAX> {
    /// Wraps `s`, or returns `None` if it is longer than `MAX` bytes.
    pub fn new(s: impl Into<String>) -> Option<Self> {
        let s = s.into();
        (s.len() <= MAX).then_some(Self(s))
    }
    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> Bounded for BoundedString<MAX> {
    const MAX: usize = MAX;
}

impl<const MAX: usize> Deref for BoundedString<MAX> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> fmt::Debug for BoundedString<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<const MAX: usize> fmt::Display for BoundedString<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const MAX: usize> BorshSerialize for BoundedString<MAX> {
    fn serialize<W: Write>(&self, writer: &mut W) -> Result<(), IoError> {
        assert!(self.0.len() <= MAX, "BoundedString invariant");
        self.0.serialize(writer)
    }
}

impl<const MAX: usize> BorshDeserialize for BoundedString<MAX> {
    fn deserialize_reader<R: Read>(reader: &mut R) -> Result<Self, IoError> {
        let len = read_len(reader, MAX, "string")?;
        let mut buf = vec![0u8; len];
        reader.read_exact(&mut buf)?;
        String::from_utf8(buf)
            .map(Self)
            .map_err(|_| IoError::new(ErrorKind::InvalidData, "string is not UTF-8"))
    }
}

/// A vector of at most `MAX` items.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct BoundedVec<T, const MAX: usize>(Vec<T>);

impl<T, const MAX: usize> BoundedVec<T, MAX> {
    /// Wraps `v`, or returns `None` if it has more than `MAX` items.
    pub fn new(v: Vec<T>) -> Option<Self> {
        (v.len() <= MAX).then_some(Self(v))
    }
    /// The items.
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }
}

impl<T, const MAX: usize> Bounded for BoundedVec<T, MAX> {
    const MAX: usize = MAX;
}

impl<T, const MAX: usize> Deref for BoundedVec<T, MAX> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T: fmt::Debug, const MAX: usize> fmt::Debug for BoundedVec<T, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<T: BorshSerialize, const MAX: usize> BorshSerialize for BoundedVec<T, MAX> {
    fn serialize<W: Write>(&self, writer: &mut W) -> Result<(), IoError> {
        assert!(self.0.len() <= MAX, "BoundedVec invariant");
        self.0.serialize(writer)
    }
}

impl<T: BorshDeserialize, const MAX: usize> BorshDeserialize for BoundedVec<T, MAX> {
    fn deserialize_reader<R: Read>(reader: &mut R) -> Result<Self, IoError> {
        let len = read_len(reader, MAX, "list")?;
        // Items are at least one byte each, so a hostile length cannot make us allocate more than
        // the (already size-limited) input; still, grow as we read rather than trusting `len`.
        let mut items = Vec::with_capacity(len.min(1024));
        for _ in 0..len {
            items.push(T::deserialize_reader(reader)?);
        }
        Ok(Self(items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, BorshSerialize, BorshDeserialize)]
    struct Compact {
        #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
        wide: u128,
        #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
        narrow: u64,
    }

    fn compact(wide: u128, narrow: u64) -> Vec<u8> {
        encode(&Compact { wide, narrow })
    }

    #[test]
    fn a_varint_takes_one_byte_per_seven_bits_and_decodes_to_what_was_encoded() {
        let mut rng = 0x1234_5678_9abc_def0_u64;
        let mut cases = vec![
            (0, 0),
            (127, 128),
            (128, 16_383),
            (1 << 40, 1 << 32),
            (u128::from(u64::MAX), u64::MAX),
            (u128::MAX, u64::MAX - 1),
        ];
        for _ in 0..200 {
            rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let shift = u32::try_from(rng % 128).expect("small");
            cases.push((u128::from(rng) << shift >> (shift / 2), rng >> (rng % 64)));
        }
        for (wide, narrow) in cases {
            let bytes = compact(wide, narrow);
            let bits = |v: u128| (128 - v.leading_zeros()).max(1) as usize;
            assert_eq!(
                bytes.len(),
                bits(wide).div_ceil(7) + bits(u128::from(narrow)).div_ceil(7)
            );
            assert_eq!(decode::<Compact>(&bytes, 64), Ok(Compact { wide, narrow }));
        }
        assert_eq!(compact(u128::MAX, u64::MAX).len(), 19 + 10);
    }

    #[test]
    fn a_varint_with_a_redundant_zero_byte_is_refused() {
        // 0 written in two bytes, then a valid `narrow`.
        let err = decode::<Compact>(&[0x80, 0x00, 0x01], 64).unwrap_err();
        assert!(matches!(err, DecodeError::Malformed(m) if m.contains("redundant zero")));
        // 1 written as 0x81 0x00.
        assert!(decode::<Compact>(&[0x81, 0x00, 0x01], 64).is_err());
    }

    #[test]
    fn a_varint_past_its_type_is_refused() {
        // 2^128: eighteen full bytes, then 4 in the nineteenth.
        let mut bytes = vec![0x80; 18];
        bytes.extend_from_slice(&[0x04, 0x00]);
        let err = decode::<Compact>(&bytes, 64).unwrap_err();
        assert!(matches!(err, DecodeError::Malformed(m) if m.contains("128 bits")));
        // A u128 with a continuation bit on its nineteenth byte.
        let mut bytes = vec![0xff; 19];
        bytes.push(0x00);
        assert!(decode::<Compact>(&bytes, 64).is_err());
        // 2^64 in the u64 field.
        let mut bytes = vec![0x00];
        bytes.extend_from_slice(&[0x80; 9]);
        bytes.push(0x02);
        let err = decode::<Compact>(&bytes, 64).unwrap_err();
        assert!(matches!(err, DecodeError::Malformed(m) if m.contains("64 bits")));
    }

    #[test]
    fn a_truncated_varint_is_refused() {
        assert!(decode::<Compact>(&[0x80], 64).is_err());
        assert!(decode::<Compact>(&[0x05, 0xff], 64).is_err());
        assert!(decode::<Compact>(&[], 64).is_err());
    }

    #[test]
    fn a_string_longer_than_its_bound_is_refused_before_allocation() {
        let mut bytes = u32::MAX.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"abc");
        let err = decode::<BoundedString<8>>(&bytes, 1024).unwrap_err();
        assert!(matches!(err, DecodeError::Malformed(m) if m.contains("exceeds the maximum 8")));
    }

    #[test]
    fn a_hash_and_a_counted_length_equal_those_of_the_exact_length_encoding() {
        for text in ["", "hi", "a longer string, of some 40 bytes or so"] {
            let value = (BoundedString::<64>::new(text).unwrap(), 7u64, [3u8; 5]);
            let bytes = encode(&value);
            assert_eq!(bytes.len(), bytes.capacity(), "exactly its length");
            assert_eq!(encoded_len(&value), bytes.len());
            assert_eq!(
                hash_and_len(&value),
                (crate::Hash::of(&[&bytes]), bytes.len())
            );
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&BoundedString::<8>::new("hi").unwrap());
        assert_eq!(
            decode::<BoundedString<8>>(&bytes, 64).unwrap().as_str(),
            "hi"
        );
        bytes.push(0);
        assert!(decode::<BoundedString<8>>(&bytes, 64).is_err());
    }

    #[test]
    fn input_over_the_size_limit_is_refused_unread() {
        let err = decode::<u8>(&[0u8; 10], 4).unwrap_err();
        assert_eq!(err, DecodeError::TooLarge { len: 10, max: 4 });
    }

    #[test]
    fn a_list_with_more_items_than_its_bound_is_refused() {
        let v: Vec<u8> = vec![1, 2, 3];
        let bytes = encode(&v);
        assert!(decode::<BoundedVec<u8, 2>>(&bytes, 64).is_err());
        assert_eq!(
            &*decode::<BoundedVec<u8, 3>>(&bytes, 64).unwrap(),
            &[1, 2, 3]
        );
    }

    #[test]
    fn strings_must_be_utf8() {
        let mut bytes = 2u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        assert!(decode::<BoundedString<8>>(&bytes, 64).is_err());
    }
}
