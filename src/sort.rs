//! One stable sort for the whole app. `slice::sort_by` is compiled again for every element type
//! and comparison (about 3.5 KB of wasm each: the driftsort and its small sorts); [`sort_by`]
//! sorts positions through a `dyn` comparison instead, so every list shares one copy of it.

use std::cmp::Ordering;

/// Sorts `list` by `cmp`, keeping equal elements in their order (as `slice::sort_by`).
pub fn sort_by<T>(list: &mut [T], cmp: impl Fn(&T, &T) -> Ordering) {
    let order = sorted_positions(list.len(), &|a, b| cmp(&list[a], &list[b]));
    permute(order, &mut |a, b| list.swap(a, b));
}

/// Sorts `list` by the key `key` gives each element, stably.
pub fn sort_by_key<T, K: Ord>(list: &mut [T], key: impl Fn(&T) -> K) {
    sort_by(list, |a, b| key(a).cmp(&key(b)));
}

/// `0..len` ordered by `cmp` over positions, stably.
#[inline(never)]
fn sorted_positions(len: usize, cmp: &dyn Fn(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.sort_by(|a, b| cmp(*a, *b));
    order
}

/// Moves the element at `order[i]` to `i`, for every `i`, with `swap`.
#[inline(never)]
fn permute(order: Vec<usize>, swap: &mut dyn FnMut(usize, usize)) {
    // Where each element goes; a swap puts one element in place for good.
    let mut dest = vec![0; order.len()];
    for (to, from) in order.into_iter().enumerate() {
        dest[from] = to;
    }
    for i in 0..dest.len() {
        while dest[i] != i {
            let j = dest[i];
            swap(i, j);
            dest.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_as_the_standard_sort_does_and_keeps_ties_in_order() {
        // Every list of up to 7 elements over 3 keys, tagged with their first position.
        for len in 0..=7u32 {
            for code in 0..3u32.pow(len) {
                let list: Vec<(u32, usize)> = (0..len as usize)
                    .map(|i| ((code / 3u32.pow(i as u32)) % 3, i))
                    .collect();
                let mut ours = list.clone();
                sort_by_key(&mut ours, |e| e.0);
                let mut std_sorted = list.clone();
                std_sorted.sort_by_key(|e| e.0);
                assert_eq!(ours, std_sorted, "{list:?}");
            }
        }
    }

    #[test]
    fn a_reversed_comparison_sorts_descending() {
        let mut list = vec!["b", "c", "a", "d"];
        sort_by(&mut list, |a, b| b.cmp(a));
        assert_eq!(list, ["d", "c", "b", "a"]);
    }
}
