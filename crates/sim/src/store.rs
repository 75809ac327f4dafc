//! The simulation's state storage: values in a hash map, because a simulation reads and
//! overwrites far more than it scans, and the keys also in an ordered set, touched only when a
//! key appears or disappears, for the audit's prefix scans. The hash map's iteration order is
//! never observed, so the state machine runs on it exactly as on the node's database.

use kassa_state::store::{KeyRange, take_in_order};
use kassa_state::{Order, ScanStore, Store, StoreMut};
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

#[derive(Debug, Default)]
pub struct SimStore {
    map: HashMap<Box<[u8]>, Box<[u8]>, foldhash::fast::RandomState>,
    keys: BTreeSet<Box<[u8]>>,
}

impl Store for SimStore {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.map.get(key).map(|v| v.to_vec())
    }
}

impl StoreMut for SimStore {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        match self.map.get_mut(key.as_slice()) {
            Some(v) => *v = value.into_boxed_slice(),
            None => {
                let key = key.into_boxed_slice();
                self.keys.insert(key.clone());
                self.map.insert(key, value.into_boxed_slice());
            }
        }
    }
    fn delete(&mut self, key: &[u8]) {
        if self.map.remove(key).is_some() {
            self.keys.remove(key);
        }
    }
}

impl ScanStore for SimStore {
    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.keys
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|k| k.starts_with(prefix))
            .map(|k| (k.to_vec(), self.map[k].to_vec()))
            .collect()
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
            .keys
            .range::<[u8], _>(range.bounds())
            .map(|k| (k.to_vec(), self.map[k].to_vec()));
        take_in_order(entries, order, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_reads_what_was_written_and_scans_a_prefix_in_key_order() {
        let mut s = SimStore::default();
        for k in [&b"b2"[..], b"a", b"b1", b"b10", b"c"] {
            s.put(k.to_vec(), k.to_vec());
        }
        s.put(b"a".to_vec(), b"new".to_vec());
        s.delete(b"c");
        assert_eq!(s.get(b"a"), Some(b"new".to_vec()));
        assert_eq!(s.get(b"c"), None);
        let keys: Vec<Vec<u8>> = s.scan_prefix(b"b").into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![b"b1".to_vec(), b"b10".to_vec(), b"b2".to_vec()]);
        assert_eq!(s.scan_prefix(b"").len(), 4);
        assert_eq!(s.scan_prefix(b"a"), vec![(b"a".to_vec(), b"new".to_vec())]);
        assert!(
            s.scan_prefix(b"c").is_empty(),
            "a deleted key leaves the index"
        );
    }
}
