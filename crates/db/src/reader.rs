//! A consistent read snapshot of the database: the current state for the state machine and the
//! API.

use crate::Head;
use kassa_state::store::{KeyRange, take_in_order};
use kassa_state::{Order, ScanStore, Store};

/// A read snapshot of the state.
#[derive(Debug)]
pub struct Reader {
    /// The last block committed in this snapshot.
    pub(crate) head: Option<Head>,
    pub(crate) state: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl Reader {
    /// The height of the last block committed in this snapshot (`None` before genesis).
    pub fn height(&self) -> Option<u64> {
        self.head.as_ref().map(|h| h.height)
    }
}

impl Store for Reader {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.state
            .get(key)
            .expect("database read")
            .map(|v| v.value().to_vec())
    }
}

impl ScanStore for Reader {
    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        for item in self.state.range(prefix..).expect("database read") {
            let (k, v) = item.expect("database read");
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        out
    }

    fn page(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        order: Order,
        limit: usize,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let Some(range) = KeyRange::new(prefix, after, order) else {
            return Vec::new();
        };
        let entries = self
            .state
            .range::<&[u8]>(range.bounds())
            .expect("database read")
            .map(|item| {
                let (k, v) = item.expect("database read");
                (k.value().to_vec(), v.value().to_vec())
            });
        take_in_order(entries, order, limit)
    }
}
