//! The storage seam. The state machine reads and writes opaque byte keys through [`Store`]; the
//! node's embedded database is one implementation, [`MemStore`] another (tests,
//! simulations). [`Overlay`] buffers one transaction's writes so that a failed transaction can be
//! dropped whole: nothing it wrote reaches the store.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

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

/// Ordered iteration, for the auditor, the state root and lists (not used by transaction
/// execution, so a store that cannot iterate cheaply can still run the state machine).
pub trait ScanStore: Store {
    /// Every `(key, value)` whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)>;

    /// At most `limit` entries whose key starts with `prefix`, in `order`, from just past the key
    /// `after` (the last key of the previous page) or from the first. Reads only what it returns.
    fn page(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        order: Order,
        limit: usize,
    ) -> Vec<(Vec<u8>, Vec<u8>)>;
}

/// Which way a list runs through key order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Ascending,
    Descending,
}

/// The keys a [`ScanStore::page`] covers: those starting with a prefix, strictly past a cursor.
#[derive(Debug)]
pub struct KeyRange {
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
}

impl KeyRange {
    /// The range of a page, or `None` when it is empty (a cursor at or past the prefix's end).
    pub fn new(prefix: &[u8], after: Option<&[u8]>, order: Order) -> Option<KeyRange> {
        // The first key past every key starting with `prefix` (none if the prefix is all 0xff).
        let prefix_end = prefix.iter().rposition(|b| *b != u8::MAX).map(|i| {
            let mut end = prefix[..=i].to_vec();
            end[i] += 1;
            end
        });
        let end_bound = |end: Option<Vec<u8>>| end.map_or(Bound::Unbounded, Bound::Excluded);
        let (start, end) = match (order, after) {
            (Order::Ascending, Some(a)) if a >= prefix => {
                if prefix_end.as_deref().is_some_and(|e| a >= e) {
                    return None;
                }
                (Bound::Excluded(a.to_vec()), end_bound(prefix_end))
            }
            (Order::Descending, Some(a)) if prefix_end.as_deref().is_none_or(|e| a < e) => {
                if a <= prefix {
                    return None;
                }
                (
                    Bound::Included(prefix.to_vec()),
                    Bound::Excluded(a.to_vec()),
                )
            }
            _ => (Bound::Included(prefix.to_vec()), end_bound(prefix_end)),
        };
        Some(KeyRange { start, end })
    }

    /// The bounds, for `BTreeMap::range` and database ranges.
    pub fn bounds(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        (as_ref(&self.start), as_ref(&self.end))
    }
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k),
        Bound::Excluded(k) => Bound::Excluded(k),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The first `limit` items of a double-ended range, in `order`.
pub fn take_in_order<T>(
    items: impl DoubleEndedIterator<Item = T>,
    order: Order,
    limit: usize,
) -> Vec<T> {
    match order {
        Order::Ascending => items.take(limit).collect(),
        Order::Descending => items.rev().take(limit).collect(),
    }
}

/// State in a `BTreeSet` of entries, each key and value in one allocation: deterministic
/// iteration order, no I/O, and one heap block per entry instead of two (a million members'
/// records take about half the memory of a `BTreeMap<Vec<u8>, Vec<u8>>`).
#[derive(Clone, Default)]
pub struct MemStore {
    map: BTreeSet<Entry>,
}

/// One stored entry: the key's length (4 bytes, little-endian), the key, then the value. Ordered
/// and compared by its key alone, so the set holds one entry per key and looks entries up by key
/// bytes (`Borrow<[u8]>`).
#[derive(Clone)]
struct Entry(Box<[u8]>);

const KEY_LEN: usize = 4;

impl Entry {
    fn new(key: &[u8], value: &[u8]) -> Entry {
        let len = u32::try_from(key.len()).expect("a key is under 4 GiB");
        let mut bytes = Vec::with_capacity(KEY_LEN + key.len() + value.len());
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(value);
        Entry(bytes.into_boxed_slice())
    }
    fn split(&self) -> (&[u8], &[u8]) {
        let (len, rest) = self.0.split_at(KEY_LEN);
        let len = u32::from_le_bytes(len.try_into().expect("4 bytes"));
        rest.split_at(usize::try_from(len).expect("u32 fits usize"))
    }
    fn key(&self) -> &[u8] {
        self.split().0
    }
    fn value(&self) -> &[u8] {
        self.split().1
    }
}

impl Borrow<[u8]> for Entry {
    fn borrow(&self) -> &[u8] {
        self.key()
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Entry) -> Ordering {
        self.key().cmp(other.key())
    }
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
    /// Every `(key, value)`, in key order.
    fn entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.map.iter().map(Entry::split)
    }
    /// A digest of every entry (SHA-256 over length-prefixed keys and values in key order). A
    /// stand-in for the authenticated state root of the node's database; equal stores give equal
    /// digests, and any difference in any entry changes it.
    pub fn digest(&self) -> kassa_types::Hash {
        let mut parts: Vec<Vec<u8>> = Vec::with_capacity(self.map.len());
        for (k, v) in self.entries() {
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

/// Equal when they hold the same keys with the same values (entries alone compare by key).
impl PartialEq for MemStore {
    fn eq(&self, other: &MemStore) -> bool {
        self.map.len() == other.map.len() && self.entries().eq(other.entries())
    }
}

impl Eq for MemStore {}

impl std::fmt::Debug for MemStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.entries()).finish()
    }
}

impl Store for MemStore {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.map.get(key).map(|e| e.value().to_vec())
    }
}

impl StoreMut for MemStore {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.map.replace(Entry::new(&key, &value));
    }
    fn delete(&mut self, key: &[u8]) {
        self.map.remove(key);
    }
}

impl ScanStore for MemStore {
    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.map
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .map(Entry::split)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
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
        let entries = self.map.range::<[u8], _>(range.bounds()).map(|e| {
            let (k, v) = e.split();
            (k.to_vec(), v.to_vec())
        });
        take_in_order(entries, order, limit)
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

    #[test]
    fn a_memstore_replaces_a_keys_value_scans_by_prefix_and_compares_values_as_well_as_keys() {
        let mut a = MemStore::new();
        for (k, v) in [
            (&b"ab"[..], &b"2"[..]),
            (b"a", b"1"),
            (b"b", b""),
            (b"", b"0"),
        ] {
            a.put(k.to_vec(), v.to_vec());
        }
        a.put(b"a".to_vec(), b"a longer value".to_vec());
        assert_eq!(a.len(), 4);
        assert_eq!(a.get(b"a"), Some(b"a longer value".to_vec()));
        assert_eq!(a.get(b"b"), Some(Vec::new()));
        assert_eq!(a.get(b"c"), None);
        assert_eq!(
            a.scan_prefix(b"a"),
            vec![
                (b"a".to_vec(), b"a longer value".to_vec()),
                (b"ab".to_vec(), b"2".to_vec())
            ]
        );
        assert_eq!(a.scan_prefix(b"").len(), 4);
        let mut b = a.clone();
        assert_eq!(a, b);
        assert_eq!(a.digest(), b.digest());
        b.put(b"ab".to_vec(), b"3".to_vec());
        assert_ne!(a, b, "same keys, one value differs");
        assert_ne!(a.digest(), b.digest());
        b.delete(b"ab");
        b.delete(b"not there");
        assert_eq!(b.len(), 3);
        assert_eq!(b.get(b"ab"), None);
    }
}
