//! A fixed-width bitset of drug indices.

use std::fmt;

/// A set of drug indices in `0..width`, stored as 64-bit words.
///
/// Every reward and metric is a set operation on drug lists, so the set is a
/// bitset: membership, insertion and removal are one word operation, and the
/// size of an intersection is a popcount over `width / 64` words.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DrugSet {
    words: Vec<u64>,
    width: usize,
}

impl DrugSet {
    /// The empty set over `width` drugs.
    pub fn empty(width: usize) -> Self {
        Self {
            words: vec![0; width.div_ceil(64)],
            width,
        }
    }

    /// The set of every drug in `0..width`.
    pub fn full(width: usize) -> Self {
        let mut set = Self::empty(width);
        for (i, word) in set.words.iter_mut().enumerate() {
            let remaining = width - i * 64;
            *word = if remaining >= 64 {
                u64::MAX
            } else {
                (1u64 << remaining) - 1
            };
        }
        set
    }

    /// The set of the given indices.
    ///
    /// # Panics
    /// When an index is not below `width`.
    pub fn from_indices(width: usize, indices: impl IntoIterator<Item = usize>) -> Self {
        let mut set = Self::empty(width);
        for i in indices {
            set.insert(i);
        }
        set
    }

    /// How many drugs the set ranges over (the vocabulary size).
    pub fn width(&self) -> usize {
        self.width
    }

    /// The underlying words, lowest indices first.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    #[inline]
    fn locate(&self, i: usize) -> (usize, u64) {
        assert!(
            i < self.width,
            "drug index {i} out of range for a set of width {}",
            self.width
        );
        (i / 64, 1u64 << (i % 64))
    }

    #[inline]
    pub fn contains(&self, i: usize) -> bool {
        let (w, bit) = self.locate(i);
        self.words[w] & bit != 0
    }

    /// Inserts `i`; returns whether it was absent.
    #[inline]
    pub fn insert(&mut self, i: usize) -> bool {
        let (w, bit) = self.locate(i);
        let absent = self.words[w] & bit == 0;
        self.words[w] |= bit;
        absent
    }

    /// Removes `i`; returns whether it was present.
    #[inline]
    pub fn remove(&mut self, i: usize) -> bool {
        let (w, bit) = self.locate(i);
        let present = self.words[w] & bit != 0;
        self.words[w] &= !bit;
        present
    }

    pub fn clear(&mut self) {
        self.words.iter_mut().for_each(|w| *w = 0);
    }

    /// The number of drugs in the set.
    #[inline]
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    fn check_width(&self, other: &Self) {
        assert_eq!(
            self.width, other.width,
            "drug sets of different widths ({} and {})",
            self.width, other.width
        );
    }

    /// `|self ∩ other|`.
    #[inline]
    pub fn intersection_len(&self, other: &Self) -> usize {
        self.check_width(other);
        self.words
            .iter()
            .zip(&other.words)
            .map(|(a, b)| (a & b).count_ones() as usize)
            .sum()
    }

    /// `|self ∪ other|`.
    pub fn union_len(&self, other: &Self) -> usize {
        self.check_width(other);
        self.words
            .iter()
            .zip(&other.words)
            .map(|(a, b)| (a | b).count_ones() as usize)
            .sum()
    }

    pub fn union_with(&mut self, other: &Self) {
        self.check_width(other);
        self.words.iter_mut().zip(&other.words).for_each(|(a, b)| *a |= b);
    }

    pub fn intersect_with(&mut self, other: &Self) {
        self.check_width(other);
        self.words.iter_mut().zip(&other.words).for_each(|(a, b)| *a &= b);
    }

    pub fn difference_with(&mut self, other: &Self) {
        self.check_width(other);
        self.words
            .iter_mut()
            .zip(&other.words)
            .for_each(|(a, b)| *a &= !b);
    }

    /// The members in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                Some(w * 64 + bit)
            })
        })
    }

    pub fn to_vec(&self) -> Vec<usize> {
        self.iter().collect()
    }
}

impl fmt::Debug for DrugSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DrugSet(width {}) ", self.width)?;
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn insert_remove_contains() {
        let mut s = DrugSet::empty(130);
        assert!(s.is_empty());
        assert!(s.insert(0));
        assert!(s.insert(129));
        assert!(!s.insert(129));
        assert!(s.contains(129) && s.contains(0) && !s.contains(64));
        assert_eq!(s.len(), 2);
        assert!(s.remove(0));
        assert!(!s.remove(0));
        assert_eq!(s.to_vec(), vec![129]);
    }

    #[test]
    fn full_set_has_exactly_width_members() {
        for width in [0, 1, 63, 64, 65, 151, 1000] {
            let s = DrugSet::full(width);
            assert_eq!(s.len(), width);
            assert_eq!(s.iter().last(), width.checked_sub(1));
        }
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn out_of_range_index_panics() {
        DrugSet::empty(10).insert(10);
    }

    proptest! {
        #[test]
        fn set_operations_match_btreeset(
            a in proptest::collection::btree_set(0usize..200, 0..60),
            b in proptest::collection::btree_set(0usize..200, 0..60),
        ) {
            let sa = DrugSet::from_indices(200, a.iter().copied());
            let sb = DrugSet::from_indices(200, b.iter().copied());
            prop_assert_eq!(sa.len(), a.len());
            prop_assert_eq!(sa.intersection_len(&sb), a.intersection(&b).count());
            prop_assert_eq!(sa.union_len(&sb), a.union(&b).count());
            prop_assert_eq!(sa.to_vec(), a.iter().copied().collect::<Vec<_>>());
            let mut d = sa.clone();
            d.difference_with(&sb);
            prop_assert_eq!(d.to_vec(), a.difference(&b).copied().collect::<Vec<_>>());
        }
    }
}
