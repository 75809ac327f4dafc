//! The simulation's state storage: a hash map, because a simulation reads and writes far more
//! than it scans. Nothing ever observes its iteration order — a scan (the audit's) sorts what it
//! collects — so the state machine runs on it exactly as on the node's database.

use kassa_state::{ScanStore, Store, StoreMut};
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct SimStore {
    map: HashMap<Box<[u8]>, Box<[u8]>, foldhash::fast::RandomState>,
}

impl Store for SimStore {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.map.get(key).map(|v| v.to_vec())
    }
}

impl StoreMut for SimStore {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.map
            .insert(key.into_boxed_slice(), value.into_boxed_slice());
    }
    fn delete(&mut self, key: &[u8]) {
        self.map.remove(key);
    }
}

impl ScanStore for SimStore {
    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = self
            .map
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
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
    }
}
