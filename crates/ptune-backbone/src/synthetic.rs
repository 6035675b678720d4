//! Random weights of any configured shape, for benchmarks of realistic sizes without
//! downloading a checkpoint. Every optional tensor "exists", so heads come out untied.

use crate::error::Result;
use crate::weights::{HostTensor, TensorSource};

/// A checkpoint that invents each tensor, seeded, in whatever shape the model asks for.
pub struct RandomWeights {
    pub seed: u64,
    /// Uniform values in `[-scale, scale]`.
    pub scale: f32,
}

impl RandomWeights {
    pub fn new(seed: u64) -> Self {
        Self { seed, scale: 0.05 }
    }
}

impl TensorSource for RandomWeights {
    fn names(&self) -> Vec<String> {
        vec![]
    }

    /// Claims every tensor exists (its shape is decided by the reader).
    fn shape(&self, _name: &str) -> Option<Vec<usize>> {
        Some(vec![])
    }

    fn read(&self, _name: &str) -> Result<Option<HostTensor>> {
        Ok(None)
    }

    fn describe(&self) -> String {
        format!("random weights (seed {})", self.seed)
    }

    fn read_expect(&self, name: &str, expected: &[usize]) -> Result<HostTensor> {
        let mut state = self.seed ^ fnv1a(name.as_bytes());
        let n: usize = expected.iter().product();
        let data = (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * self.scale
            })
            .collect();
        Ok(HostTensor {
            shape: expected.to_vec(),
            data,
        })
    }
}

/// A stable per-name seed so each tensor differs.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    }) | 1
}
