//! Small integer ids (sites, scopes) mapped to dense indices 0, 1, 2, … in
//! the order they are first seen, so that per-id figures live in a `Vec`.
//!
//! Ids are small and dense in practice (the runtime numbers them from 1),
//! but not by contract: an id past [`DIRECT`] — a damaged or crafted file's —
//! goes through a hash map instead of growing a table to its size.

use rustc_hash::FxHashMap as HashMap;

/// Ids below this are looked up in a table of their own size (4 bytes each).
const DIRECT: u32 = 1 << 20;

/// Ids → indices `0, 1, 2, …` in first-seen order.
///
/// ```
/// let mut d = pulse_format::DenseIds::default();
/// assert_eq!(d.index(7), (0, true));
/// assert_eq!(d.index(3), (1, true));
/// assert_eq!(d.index(7), (0, false));
/// assert_eq!(d.ids(), [7, 3]);
/// ```
#[derive(Debug, Default, Clone)]
pub struct DenseIds {
    /// Id → index + 1 (0: not seen), for ids below [`DIRECT`].
    direct: Vec<u32>,
    /// The others.
    other: HashMap<u32, u32>,
    /// Index → id.
    ids: Vec<u32>,
}

impl DenseIds {
    /// The index of `id`, and whether it was seen for the first time (the
    /// caller then pushes its figures: the index is the next one).
    #[inline]
    pub fn index(&mut self, id: u32) -> (usize, bool) {
        if id < DIRECT {
            if let Some(&i) = self.direct.get(id as usize) {
                if i != 0 {
                    return (i as usize - 1, false);
                }
            }
        }
        self.first(id)
    }

    #[cold]
    fn first(&mut self, id: u32) -> (usize, bool) {
        let next = self.ids.len() as u32;
        if id < DIRECT {
            let slot = id as usize;
            if slot >= self.direct.len() {
                self.direct.resize(slot + 1, 0);
            }
            if self.direct[slot] != 0 {
                return (self.direct[slot] as usize - 1, false);
            }
            self.direct[slot] = next + 1;
        } else {
            match self.other.get(&id) {
                Some(&i) => return (i as usize, false),
                None => {
                    self.other.insert(id, next);
                }
            }
        }
        self.ids.push(id);
        (next as usize, true)
    }

    /// The id of each index.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_huge_ids_get_dense_indices_in_first_seen_order() {
        let mut d = DenseIds::default();
        assert_eq!(d.index(7), (0, true));
        assert_eq!(d.index(u32::MAX), (1, true));
        assert_eq!(d.index(0), (2, true));
        assert_eq!(d.index(7), (0, false));
        assert_eq!(d.index(u32::MAX), (1, false));
        assert_eq!(d.ids(), [7, u32::MAX, 0]);
        assert!(d.direct.len() <= 8);
    }
}
