//! A map keyed by ids that a counter hands out: subscription ids, request ids, flush ids.
//!
//! Such ids only grow, so a new one goes at the end of a sorted list and a lookup is a binary
//! search: no hashing per message, and in a browser build a few hundred bytes where a `HashMap`
//! (its table and SipHash) or a `BTreeMap` costs kilobytes. A removed entry leaves its id behind,
//! empty, until the empty ones are most of the list, so that removing thousands of entries one by
//! one costs no more than a B-tree would. An id inserted out of order still lands in its place.

#[derive(Debug)]
pub(crate) struct IdMap<V> {
    entries: Vec<(u64, Option<V>)>,
    removed: usize,
}

impl<V> Default for IdMap<V> {
    fn default() -> Self {
        IdMap {
            entries: Vec::new(),
            removed: 0,
        }
    }
}

impl<V> IdMap<V> {
    pub fn new() -> Self {
        Self::default()
    }

    fn position(&self, id: u64) -> Result<usize, usize> {
        // The common cases first: the newest id, or one past it.
        match self.entries.last() {
            None => Err(0),
            Some(&(last, _)) if id > last => Err(self.entries.len()),
            Some(&(last, _)) if id == last => Ok(self.entries.len() - 1),
            _ => self.entries.binary_search_by_key(&id, |(k, _)| *k),
        }
    }

    /// Inserts, or replaces and returns what `id` had.
    pub fn insert(&mut self, id: u64, value: V) -> Option<V> {
        match self.position(id) {
            Ok(i) => {
                let old = self.entries[i].1.replace(value);
                if old.is_none() {
                    self.removed -= 1;
                }
                old
            }
            Err(i) => {
                self.entries.insert(i, (id, Some(value)));
                None
            }
        }
    }

    pub fn get(&self, id: u64) -> Option<&V> {
        let i = self.position(id).ok()?;
        self.entries[i].1.as_ref()
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut V> {
        let i = self.position(id).ok()?;
        self.entries[i].1.as_mut()
    }

    pub fn contains_key(&self, id: u64) -> bool {
        self.get(id).is_some()
    }

    pub fn remove(&mut self, id: u64) -> Option<V> {
        let i = self.position(id).ok()?;
        let value = self.entries[i].1.take()?;
        self.removed += 1;
        if self.removed > 32 && self.removed * 2 > self.entries.len() {
            self.entries.retain(|(_, v)| v.is_some());
            self.removed = 0;
        }
        Some(value)
    }

    pub fn len(&self) -> usize {
        self.entries.len() - self.removed
    }

    /// Entries kept, the empty ones included.
    #[cfg(test)]
    pub fn slots(&self) -> usize {
        self.entries.len()
    }

    /// Every entry, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &V)> {
        self.entries
            .iter()
            .filter_map(|(id, v)| Some((*id, v.as_ref()?)))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut V)> {
        self.entries
            .iter_mut()
            .filter_map(|(id, v)| Some((*id, v.as_mut()?)))
    }

    /// Empties the map; its entries, in id order.
    pub fn drain(&mut self) -> impl Iterator<Item = (u64, V)> {
        self.removed = 0;
        std::mem::take(&mut self.entries)
            .into_iter()
            .filter_map(|(id, v)| Some((id, v?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The same operations on an `IdMap` and a `BTreeMap` give the same answers, with ids mostly
    /// growing, sometimes out of order, and removals that trigger the compaction many times.
    #[test]
    fn behaves_as_an_ordered_map() {
        let mut ours = IdMap::new();
        let mut model = BTreeMap::new();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut top = 0u64;
        for step in 0..20_000u32 {
            let r = next();
            let id = match r % 10 {
                0..=3 => {
                    top += 1 + r % 3;
                    top
                }
                4 => r % (top + 2), // anywhere, maybe new, maybe out of order
                _ => top.saturating_sub(r % 64), // a recent one
            };
            match (r >> 8) % 6 {
                0 | 1 => assert_eq!(ours.insert(id, step), model.insert(id, step), "insert {id}"),
                2 | 3 => assert_eq!(ours.remove(id), model.remove(&id), "remove {id}"),
                4 => {
                    if let Some(v) = ours.get_mut(id) {
                        *v += 1;
                    }
                    if let Some(v) = model.get_mut(&id) {
                        *v += 1;
                    }
                }
                _ => assert_eq!(ours.get(id), model.get(&id), "get {id}"),
            }
            assert_eq!(ours.contains_key(id), model.contains_key(&id));
            assert_eq!(ours.len(), model.len());
            if step % 1000 == 0 {
                let got: Vec<_> = ours.iter().map(|(k, v)| (k, *v)).collect();
                let want: Vec<_> = model.iter().map(|(k, v)| (*k, *v)).collect();
                assert_eq!(got, want);
            }
        }
        let want: Vec<_> = std::mem::take(&mut model).into_iter().collect();
        let got: Vec<_> = ours.drain().collect();
        assert_eq!(got, want);
        assert_eq!(ours.len(), 0);
        assert_eq!(ours.iter_mut().count(), 0);
    }

    #[test]
    fn empty_entries_are_dropped_once_they_are_most_of_the_list() {
        let mut map = IdMap::new();
        for id in 0..1000 {
            map.insert(id, ());
        }
        for id in 0..990 {
            map.remove(id);
        }
        assert_eq!(map.len(), 10);
        assert!(map.slots() < 100, "{} entries kept for 10 ids", map.slots());
    }
}
