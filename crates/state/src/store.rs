//! The storage seam. The state machine reads and writes opaque byte keys through [`Store`]; the
//! embedded database of the node (Part 2) is one implementation, [`MemStore`] another (tests,
//! simulations). [`Overlay`] buffers one transaction's writes so that a failed transaction can be
//! dropped whole: nothing it wrote reaches the store.

use std::collections::BTreeMap;

/// Read access to state.
pub trait Store {
    /// The value under `key`, if any.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
}

/// Write access to state.
pub trait StoreMut: Store {
    /// Sets `key` to `value`.
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>);
    /// Removes `key`.
    fn delete(&mut self, key: &[u8]);
}

/// Ordered iteration, for the auditor and the state root (not used by transaction execution, so a
/// store that cannot iterate cheaply can still run the state machine).
pub trait ScanStore: Store {
    /// Every `(key, value)` whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)>;
}

/// State in a `BTreeMap`: deterministic iteration order, no I/O.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemStore {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// A digest of every entry (SHA-256 over length-prefixed keys and values in key order). A
    /// stand-in for the authenticated state root of the node's database; equal stores give equal
    /// digests, and any difference in any entry changes it.
    pub fn digest(&self) -> kassa_types::Hash {
        let mut parts: Vec<Vec<u8>> = Vec::with_capacity(self.map.len());
        for (k, v) in &self.map {
            let mut e = Vec::with_capacity(k.len() + v.len() + 8);
            e.extend_from_slice(&u32::try_from(k.len()).expect("key < 4 GiB").to_le_bytes());
            e.extend_from_slice(k);
            e.extend_from_slice(&u32::try_from(v.len()).expect("value < 4 GiB").to_le_bytes());
            e.extend_from_slice(v);
            parts.push(e);
        }
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        kassa_types::Hash::of(&refs)
    }
}

impl Store for MemStore {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.map.get(key).cloned()
    }
}

impl StoreMut for MemStore {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.map.insert(key, value);
    }
    fn delete(&mut self, key: &[u8]) {
        self.map.remove(key);
    }
}

impl ScanStore for MemStore {
    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.map
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Buffered writes over a read-only base. `None` marks a deletion.
#[derive(Debug)]
pub struct Overlay<'a, S: Store> {
    base: &'a S,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'a, S: Store> Overlay<'a, S> {
    /// An overlay with no writes yet.
    pub fn new(base: &'a S) -> Self {
        Self {
            base,
            writes: BTreeMap::new(),
        }
    }
    /// The buffered writes, in key order.
    pub fn into_writes(self) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        self.writes
    }
    /// Number of distinct keys written (puts and deletes).
    pub fn write_count(&self) -> usize {
        self.writes.len()
    }
}

impl<S: Store> Store for Overlay<'_, S> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.writes.get(key) {
            Some(v) => v.clone(),
            None => self.base.get(key),
        }
    }
}

impl<S: Store> StoreMut for Overlay<'_, S> {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }
    fn delete(&mut self, key: &[u8]) {
        self.writes.insert(key.to_vec(), None);
    }
}

/// Applies buffered writes to a store.
pub fn apply_writes<S: StoreMut>(store: &mut S, writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>) {
    for (k, v) in writes {
        match v {
            Some(v) => store.put(k, v),
            None => store.delete(&k),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overlay_reads_its_own_writes_and_leaves_the_base_alone_until_applied() {
        let mut base = MemStore::new();
        base.put(b"a".to_vec(), b"1".to_vec());
        let mut o = Overlay::new(&base);
        o.put(b"b".to_vec(), b"2".to_vec());
        o.delete(b"a");
        assert_eq!(o.get(b"a"), None);
        assert_eq!(o.get(b"b"), Some(b"2".to_vec()));
        assert_eq!(o.write_count(), 2);
        let w = o.into_writes();
        assert_eq!(base.get(b"a"), Some(b"1".to_vec()));
        apply_writes(&mut base, w);
        assert_eq!(base.get(b"a"), None);
        assert_eq!(base.scan_prefix(b""), vec![(b"b".to_vec(), b"2".to_vec())]);
    }
}
