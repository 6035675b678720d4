//! Seeded initial weights with PyTorch's default distributions.
//!
//! burn's own initialisers draw from a process-global RNG (`Device::seed` sets it) and run
//! lazily, when a parameter is first read: the values then depend on which thread or test drew
//! first. Here every tensor gets its own SplitMix64 stream derived from `(seed, name)`, so the
//! same config and seed give the same weights on any backend, thread or call order.

use crate::tensors::HostTensor;

/// SplitMix64: tiny, fast, and good enough for weight initialisation.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The stream for tensor `name` under `seed` (FNV-1a of the name mixed into the seed).
fn stream(seed: u64, name: &str) -> SplitMix64 {
    let hash = name.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    });
    SplitMix64(seed ^ hash.rotate_left(17))
}

/// `U(-bound, bound)`, as PyTorch initialises `nn.Linear` (bound `1/sqrt(fan_in)`) and
/// `nn.LSTM` (bound `1/sqrt(hidden)`).
pub(crate) fn uniform(seed: u64, name: &str, shape: Vec<usize>, bound: f64) -> HostTensor {
    let mut rng = stream(seed, name);
    let n = shape.iter().product();
    let data = (0..n)
        .map(|_| ((rng.next_f64() * 2.0 - 1.0) * bound) as f32)
        .collect();
    HostTensor::new(shape, data)
}

/// `N(0, 1)`, as PyTorch initialises `nn.Embedding` (Box–Muller).
pub(crate) fn normal(seed: u64, name: &str, shape: Vec<usize>) -> HostTensor {
    let mut rng = stream(seed, name);
    let n = shape.iter().product();
    let data = (0..n)
        .map(|_| {
            let u1 = 1.0 - rng.next_f64();
            let u2 = rng.next_f64();
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect();
    HostTensor::new(shape, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a = uniform(7, "w", vec![64], 1.0);
        assert_eq!(a, uniform(7, "w", vec![64], 1.0));
        assert_ne!(a, uniform(8, "w", vec![64], 1.0));
        assert_ne!(a, uniform(7, "v", vec![64], 1.0));
        assert!(a.data.iter().all(|v| v.abs() <= 1.0));
    }

    #[test]
    fn normal_has_unit_moments() {
        let t = normal(1, "e", vec![20_000]);
        let n = t.data.len() as f64;
        let mean = t.data.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = t
            .data
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
    }
}
