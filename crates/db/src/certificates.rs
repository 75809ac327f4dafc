//! The finalization certificates a follower checked, kept apart from blocks so that after a
//! restart it can still serve another follower from genesis.

use super::{Db, Result};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

/// Finalization certificates a follower checked (height of the block each finalizes →
/// certificate bytes), at most one per [`CERTIFICATE_SPACING`] heights: what lets it serve
/// another follower from genesis after a restart. Written apart from blocks (a lost one is only
/// a certificate not served).
const CERTIFICATES: TableDefinition<u64, &[u8]> = TableDefinition::new("certificates");
/// A follower keeps a certificate of at least one height in every this many: a follower asking
/// it for the first certificate at or above a height (within 1,024) always finds one.
pub const CERTIFICATE_SPACING: u64 = 512;

impl Db {
    /// Keeps `certificate`, of the block at `height`, unless one of a height in the same
    /// stretch of [`CERTIFICATE_SPACING`] is kept already; whether it was kept.
    pub fn keep_certificate(&self, height: u64, certificate: &[u8]) -> Result<bool> {
        let stretch = height - height % CERTIFICATE_SPACING;
        let w = self.db.begin_write()?;
        let kept = {
            let mut t = w.open_table(CERTIFICATES)?;
            let taken = t
                .range(stretch..stretch + CERTIFICATE_SPACING)?
                .next()
                .is_some();
            if !taken {
                t.insert(height, certificate)?;
            }
            !taken
        };
        w.commit()?;
        Ok(kept)
    }

    /// The certificate [`Db::keep_certificate`] kept for `height`, if any.
    pub fn certificate(&self, height: u64) -> Result<Option<Vec<u8>>> {
        let r = self.db.begin_read()?;
        let t = match r.open_table(CERTIFICATES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(t.get(height)?.map(|v| v.value().to_vec()))
    }
}
