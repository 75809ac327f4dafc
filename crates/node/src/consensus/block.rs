//! [`CBlock`]: a Kassa block as the engine sees it, with the engine's codec and block traits.

use super::*;
use bytes::{BufMut, Bytes};
use commonware_codec::{Buf, DecodeExt as _, EncodeSize, Error as CodecError, Read, Write};
use commonware_consensus::types::Height;
use commonware_consensus::{Block as ConsensusBlock, BoundedBlock, CertifiableBlock, Heightable};
use commonware_cryptography::{Digestible, sha256};
use kassa_types::{Block, Hash};

/// A Kassa block as the engine sees it. Its canonical bytes are computed once, when it is made
/// or read, because the engine asks for a block's size and bytes many times (broadcast, storage,
/// backfill); the block cannot change afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CBlock {
    pub(super) block: Block,
    pub(super) context: Context,
    pub(super) digest: Digest,
    pub(super) encoded: Bytes,
}

pub(super) fn digest_of(h: &Hash) -> Digest {
    sha256::Digest(h.0)
}

impl CBlock {
    /// Wraps a block, decoding the engine context it carries.
    pub fn new(block: Block) -> Result<CBlock, CodecError> {
        let encoded = Bytes::from(block.encode());
        CBlock::with_encoding(block, encoded)
    }

    /// `block` with `encoded`, which must be its canonical encoding.
    fn with_encoding(block: Block, encoded: Bytes) -> Result<CBlock, CodecError> {
        let context = Context::decode(Bytes::copy_from_slice(&block.header.consensus))?;
        Ok(CBlock {
            digest: digest_of(&block.header.hash()),
            context,
            block,
            encoded,
        })
    }

    /// The Kassa block.
    pub fn block(&self) -> &Block {
        &self.block
    }

    /// The Kassa block, unwrapped.
    pub fn into_block(self) -> Block {
        self.block
    }
}

impl Write for CBlock {
    fn write(&self, buf: &mut impl BufMut) {
        self.encoded.write(buf);
    }
}

impl EncodeSize for CBlock {
    fn encode_size(&self) -> usize {
        self.encoded.encode_size()
    }
}

impl Read for CBlock {
    /// The largest encoded block accepted.
    type Cfg = usize;

    fn read_cfg(buf: &mut impl Buf, max: &usize) -> Result<Self, CodecError> {
        let bytes = Bytes::read_cfg(buf, &(..=*max).into())?;
        let block = Block::decode(&bytes).map_err(|_| CodecError::Invalid("kassa", "block"))?;
        // Decoding is canonical (one encoding per block, trailing bytes refused), so the bytes
        // read are the block's encoding.
        CBlock::with_encoding(block, bytes)
    }
}

impl Digestible for CBlock {
    type Digest = Digest;
    fn digest(&self) -> Digest {
        self.digest
    }
}

impl Heightable for CBlock {
    fn height(&self) -> Height {
        Height::new(self.block.header.height)
    }
}

impl ConsensusBlock for CBlock {
    fn parent(&self) -> Digest {
        digest_of(&self.block.header.parent)
    }
}

impl CertifiableBlock for CBlock {
    type Context = Context;
    fn context(&self) -> Context {
        self.context.clone()
    }
}

impl BoundedBlock for CBlock {
    fn max_encode_size(max: &usize) -> usize {
        *max + 10 // varint length prefix
    }
}
