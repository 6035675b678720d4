//! The seeded 60/20/20 train/dev/test split used for the bundled fact set.

use ptune_host::shuffle;

/// Shuffles `items` with `seed` and cuts them into train (60 %), dev (20 %) and test (the rest),
/// sizes rounded to the nearest item. The same input and seed always give the same three parts.
pub fn split_60_20_20<T>(mut items: Vec<T>, seed: u64) -> [Vec<T>; 3] {
    shuffle(&mut items, seed);
    let n = items.len();
    let n_train = (n * 6 + 5) / 10;
    let n_dev = ((n * 2 + 5) / 10).min(n - n_train);
    let test = items.split_off(n_train + n_dev);
    let dev = items.split_off(n_train);
    [items, dev, test]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_60_20_20_and_parts_cover_the_input() {
        let [train, dev, test] = split_60_20_20((0..101).collect::<Vec<u32>>(), 7);
        assert_eq!((train.len(), dev.len(), test.len()), (61, 20, 20));
        let mut all: Vec<u32> = [train, dev, test].concat();
        all.sort_unstable();
        assert_eq!(all, (0..101).collect::<Vec<_>>());
    }

    #[test]
    fn tiny_inputs_do_not_panic() {
        for n in 0..5u32 {
            let parts = split_60_20_20((0..n).collect::<Vec<_>>(), 1);
            assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), n as usize);
        }
    }
}
