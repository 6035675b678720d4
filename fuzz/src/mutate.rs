//! Byte-level mutations, the kind that break length fields, offsets and text grammars alike.

use ptune_host::SplitMix64;

/// Inputs never grow past this: parsers are fuzzed for their logic, not for reading big files.
pub const MAX_INPUT: usize = 1 << 20;

/// Values parsers get wrong at the edges: zero, one, sign bits, all-ones, sizes around
/// 2^31, 2^32 and 2^63, and lengths far beyond any input.
const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0x8000,
    0xffff,
    1 << 20,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    1 << 40,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX - 1,
    u64::MAX,
];

/// The fuzzer's one source of randomness: the project's SplitMix64, so a seed replays exactly.
pub struct Rng(SplitMix64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(SplitMix64::new(seed))
    }

    /// A number in `0..n`, or 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { self.0.below(n) }
    }

    /// True once in `n` times.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// An interesting integer, sometimes negated (so -1, -2^31, ... appear too).
    pub fn interesting(&mut self) -> u64 {
        let v = INTERESTING[self.below(INTERESTING.len())];
        if self.one_in(4) { v.wrapping_neg() } else { v }
    }
}

/// Applies 1, 2, 4 or 8 stacked mutations to `data`. `donor` is another input of the same kind
/// for splices; `dict` holds tokens of the format (`[P:`, `"shape"`, ...) worth inserting.
pub fn bytes(rng: &mut Rng, data: &mut Vec<u8>, donor: &[u8], dict: &[&[u8]]) {
    for _ in 0..1 << rng.below(4) {
        one(rng, data, donor, dict);
    }
    data.truncate(MAX_INPUT);
}

fn one(rng: &mut Rng, data: &mut Vec<u8>, donor: &[u8], dict: &[&[u8]]) {
    match rng.below(11) {
        0 if !data.is_empty() => {
            let i = rng.below(data.len());
            data[i] ^= 1 << rng.below(8);
        }
        1 if !data.is_empty() => {
            let i = rng.below(data.len());
            data[i] = rng.u64() as u8;
        }
        2 => write_interesting(rng, data),
        3 => add_to_field(rng, data),
        4 => cut(rng, data),
        5 => {
            let at = rng.below(data.len() + 1);
            let n = 1 + rng.below(16);
            let fresh: Vec<u8> = (0..n).map(|_| rng.u64() as u8).collect();
            data.splice(at..at, fresh);
        }
        6 => duplicate(rng, data),
        7 => splice(rng, data, donor),
        8 if !dict.is_empty() => {
            let token = dict[rng.below(dict.len())];
            let at = rng.below(data.len() + 1);
            data.splice(at..at, token.iter().copied());
        }
        9 => {
            // A long run of one byte: huge numbers in text, long strings, zero-filled tables.
            let at = rng.below(data.len() + 1);
            let byte = [b'9', b'0', b'A', 0, 0xff, b'['][rng.below(6)];
            let n = 1 << rng.below(13);
            data.splice(at..at, std::iter::repeat_n(byte, n));
        }
        _ => {
            let at = rng.below(data.len() + 1);
            data.truncate(at);
        }
    }
}

/// Overwrites a 1/2/4/8-byte field with an interesting value, little-endian mostly.
fn write_interesting(rng: &mut Rng, data: &mut Vec<u8>) {
    let width = 1 << rng.below(4);
    let v = rng.interesting();
    let le = !rng.one_in(4);
    let bytes = if le { v.to_le_bytes() } else { v.to_be_bytes() };
    let field = if le {
        &bytes[..width]
    } else {
        &bytes[8 - width..]
    };
    put(rng, data, field);
}

/// Adds or subtracts a small delta to a little-endian field: off-by-one lengths and counts.
fn add_to_field(rng: &mut Rng, data: &mut [u8]) {
    let width = 1 << rng.below(4);
    if data.len() < width {
        return;
    }
    let at = rng.below(data.len() - width + 1);
    let mut buf = [0u8; 8];
    buf[..width].copy_from_slice(&data[at..at + width]);
    let delta = 1 + rng.below(35) as u64;
    let v = u64::from_le_bytes(buf);
    let v = if rng.one_in(2) {
        v.wrapping_add(delta)
    } else {
        v.wrapping_sub(delta)
    };
    data[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
}

/// Writes `field` at a random offset (appending when the input is too short).
fn put(rng: &mut Rng, data: &mut Vec<u8>, field: &[u8]) {
    if data.len() < field.len() {
        data.extend_from_slice(field);
        return;
    }
    let at = rng.below(data.len() - field.len() + 1);
    data[at..at + field.len()].copy_from_slice(field);
}

fn cut(rng: &mut Rng, data: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    let (start, len) = range(rng, data.len());
    data.drain(start..start + len);
}

/// A non-empty range of a non-empty input, mostly short.
fn range(rng: &mut Rng, len: usize) -> (usize, usize) {
    let start = rng.below(len);
    let max = 1 << rng.below(12);
    (start, 1 + rng.below((len - start).min(max)))
}

/// Copies a range of the input elsewhere into it: repeated records, keys, tensors.
fn duplicate(rng: &mut Rng, data: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    let (start, len) = range(rng, data.len());
    let chunk = data[start..start + len].to_vec();
    let at = rng.below(data.len() + 1);
    data.splice(at..at, chunk);
}

/// The head of this input and the tail of another.
fn splice(rng: &mut Rng, data: &mut Vec<u8>, donor: &[u8]) {
    let at = rng.below(data.len() + 1);
    let from = rng.below(donor.len() + 1);
    data.truncate(at);
    data.extend_from_slice(&donor[from..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_are_bounded_and_replay_per_seed() {
        let run = |seed| {
            let mut rng = Rng::new(seed);
            let mut data = b"{\"a\": [1, 2, 3]}".to_vec();
            for _ in 0..2000 {
                bytes(&mut rng, &mut data, b"donor bytes", &[b"[P:"]);
                assert!(data.len() <= MAX_INPUT);
            }
            data
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }
}
