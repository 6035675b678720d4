//! GELU (erf) and SiLU over `f32` slices, forward and backward, in branch-free arithmetic the
//! compiler vectorizes. flex computes them with a scalar `libm` call per element, on one core;
//! these run several times faster (`cargo bench -p ptune-backbone --bench activation`).
//!
//! `erf` is Abramowitz and Stegun's 7.1.26 (absolute error under 1.5e-7), the approximation
//! PyTorch's own vectorized CPU `erf` uses, so GELU here lands where transformers' does on a CPU.

use rayon::prelude::*;

/// Elements per parallel chunk: enough to amortise a task, small enough to spread a layer's
/// activations over every core.
const CHUNK: usize = 1 << 14;

/// ln 2 split in a part exact in `f32` and the rest (Cody and Waite), for `exp`'s reduction.
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
/// 1.5 × 2^23: added and subtracted, rounds an `f32` below 2^22 to the nearest integer.
const ROUND: f32 = 12_582_912.0;
/// 1/√(2π), the normal density's constant.
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// `e^x` for `x ≤ 0` (held at −87, where `f32` stays normal), within 2 ulp.
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    let x = x.max(-87.0);
    let k = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - k * LN2_HI - k * LN2_LO;
    // Taylor to r^7: |r| ≤ ln2/2 leaves a relative error under 6e-9.
    let mut p = 1.0 / 5040.0;
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    p * f32::from_bits(((k as i32 + 127) << 23) as u32)
}

/// The normal CDF `Φ(x) = (1 + erf(x/√2)) / 2` and `e^(−x²/2)`, which its density needs too.
#[inline(always)]
fn normal_cdf(x: f32) -> (f32, f32) {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        1.061_405_4,
        -1.453_152_1,
        1.421_413_8,
        -0.284_496_74,
        0.254_829_6,
    ];
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + P * z);
    let mut poly = A[0];
    for a in &A[1..] {
        poly = poly * t + a;
    }
    let gauss = exp_nonpositive(-z * z);
    let erf = (1.0 - poly * t * gauss).copysign(x);
    (0.5 + 0.5 * erf, gauss)
}

/// The logistic function `σ(x)` and `1 − σ(x) = σ(−x)`, both from `e^(−|x|)`: it never
/// overflows, and the smaller of the two keeps its relative precision.
#[inline(always)]
fn sigmoid_pair(x: f32) -> (f32, f32) {
    let e = exp_nonpositive(-x.abs());
    let big = 1.0 / (1.0 + e);
    let small = e * big;
    if x >= 0.0 { (big, small) } else { (small, big) }
}

/// `x Φ(x)` in place.
pub fn gelu(xs: &mut [f32]) {
    map(xs, |x| x * normal_cdf(x).0);
}

/// `grad (Φ(x) + x φ(x))` into `grads`.
pub fn gelu_backward(xs: &[f32], grads: &mut [f32]) {
    zip_map(xs, grads, |x, g| {
        let (cdf, gauss) = normal_cdf(x);
        g * (cdf + x * INV_SQRT_2PI * gauss)
    });
}

/// `x σ(x)` in place.
pub fn silu(xs: &mut [f32]) {
    map(xs, |x| x * sigmoid_pair(x).0);
}

/// `grad σ(x) (1 + x (1 − σ(x)))` into `grads`.
pub fn silu_backward(xs: &[f32], grads: &mut [f32]) {
    zip_map(xs, grads, |x, g| {
        let (s, one_minus_s) = sigmoid_pair(x);
        g * s * (1.0 + x * one_minus_s)
    });
}

/// `silu(gate) · up` (SwiGLU's product) into `ups`.
pub fn swiglu(gates: &[f32], ups: &mut [f32]) {
    zip_map(gates, ups, |g, u| g * sigmoid_pair(g).0 * u);
}

/// SwiGLU's two gradients in one pass: `grad · up · silu'(gate)` into `grads` (the gate's) and
/// `grad · silu(gate)` into `ups` (the up projection's), each element read before it is
/// overwritten.
pub fn swiglu_backward(gates: &[f32], ups: &mut [f32], grads: &mut [f32]) {
    assert!(gates.len() == ups.len() && ups.len() == grads.len());
    let chunks = (
        gates.par_chunks(CHUNK),
        ups.par_chunks_mut(CHUNK),
        grads.par_chunks_mut(CHUNK),
    );
    chunks.into_par_iter().for_each(|(gates, ups, grads)| {
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            return unsafe { swiglu_backward_avx2(gates, ups, grads) };
        }
        swiglu_backward_chunk(gates, ups, grads);
    });
}

#[inline(always)]
fn swiglu_backward_chunk(gates: &[f32], ups: &mut [f32], grads: &mut [f32]) {
    for ((&g, u), d) in gates.iter().zip(ups).zip(grads) {
        // Rounded as the separate ops round: `silu_backward` of `grad · up`, and `grad · silu`.
        let (s, one_minus_s) = sigmoid_pair(g);
        (*d, *u) = (*d * *u * s * (1.0 + g * one_minus_s), *d * (g * s));
    }
}

fn map(xs: &mut [f32], f: impl Fn(f32) -> f32 + Sync + Copy) {
    xs.par_chunks_mut(CHUNK).for_each(|chunk| {
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            return unsafe { map_avx2(chunk, f) };
        }
        map_chunk(chunk, f);
    });
}

fn zip_map(xs: &[f32], out: &mut [f32], f: impl Fn(f32, f32) -> f32 + Sync + Copy) {
    (xs.par_chunks(CHUNK).zip(out.par_chunks_mut(CHUNK))).for_each(|(xs, out)| {
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            return unsafe { zip_map_avx2(xs, out, f) };
        }
        zip_map_chunk(xs, out, f);
    });
}

#[inline(always)]
fn map_chunk(xs: &mut [f32], f: impl Fn(f32) -> f32) {
    for x in xs {
        *x = f(*x);
    }
}

#[inline(always)]
fn zip_map_chunk(xs: &[f32], out: &mut [f32], f: impl Fn(f32, f32) -> f32) {
    for (x, o) in xs.iter().zip(out) {
        *o = f(*x, *o);
    }
}

/// Whether this x86 CPU has AVX2 and FMA (detected once, then cached by std): the baseline
/// target has SSE2 only, so the loops are compiled a second time for them.
#[cfg(target_arch = "x86_64")]
fn avx2() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn map_avx2(xs: &mut [f32], f: impl Fn(f32) -> f32) {
    map_chunk(xs, f);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn zip_map_avx2(xs: &[f32], out: &mut [f32], f: impl Fn(f32, f32) -> f32) {
    zip_map_chunk(xs, out, f);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn swiglu_backward_avx2(gates: &[f32], ups: &mut [f32], grads: &mut [f32]) {
    swiglu_backward_chunk(gates, ups, grads);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points across the range activations take, the tails and zero included.
    fn grid() -> Vec<f32> {
        (-20_000..=20_000).map(|i| i as f32 * 1e-3).collect()
    }

    fn erf64(x: f64) -> f64 {
        libm::erf(x)
    }

    #[test]
    fn exp_is_within_two_ulp_down_to_minus_87() {
        for i in 0..=86_900 {
            let x = -(i as f32) * 1e-3;
            let want = (x as f64).exp();
            let got = exp_nonpositive(x) as f64;
            assert!(
                (got - want).abs() <= 2.0 * f32::EPSILON as f64 * want,
                "{x}"
            );
        }
        assert!(exp_nonpositive(-1e4) < 1e-37);
    }

    #[test]
    fn gelu_and_its_gradient_match_the_exact_function() {
        let xs = grid();
        let mut ys = xs.clone();
        gelu(&mut ys);
        let mut grads = vec![1.0; xs.len()];
        gelu_backward(&xs, &mut grads);
        for ((&x, &y), &d) in xs.iter().zip(&ys).zip(&grads) {
            let x64 = x as f64;
            let cdf = 0.5 * (1.0 + erf64(x64 / std::f64::consts::SQRT_2));
            let pdf = (-0.5 * x64 * x64).exp() / (2.0 * std::f64::consts::PI).sqrt();
            // erf's 1.5e-7 (half of it in Φ), scaled by x, and f32 rounding.
            let tol = 3e-7 * (1.0 + x64.abs());
            assert!((y as f64 - x64 * cdf).abs() <= tol, "gelu({x}) = {y}");
            assert!(
                (d as f64 - (cdf + x64 * pdf)).abs() <= tol,
                "gelu'({x}) = {d}, want {}",
                cdf + x64 * pdf
            );
        }
    }

    #[test]
    fn silu_and_its_gradient_match_the_exact_function() {
        let xs: Vec<f32> = grid().iter().map(|x| x * 5.0).collect();
        let mut ys = xs.clone();
        silu(&mut ys);
        let mut grads: Vec<f32> = vec![0.5; xs.len()];
        silu_backward(&xs, &mut grads);
        for ((&x, &y), &d) in xs.iter().zip(&ys).zip(&grads) {
            let x64 = x as f64;
            let s = 1.0 / (1.0 + (-x64).exp());
            let near = |got: f32, want: f64, abs: f64| {
                (got as f64 - want).abs() <= 5e-7 * want.abs() + abs
            };
            assert!(near(y, x64 * s, 1e-30), "silu({x}) = {y}");
            assert!(
                near(d, 0.5 * s * (1.0 + x64 * (1.0 - s)), 1e-7),
                "silu'({x}) = {d}, want {}",
                0.5 * s * (1.0 + x64 * (1.0 - s))
            );
        }
    }

    #[test]
    fn swiglu_and_both_its_gradients_match_the_exact_function() {
        let gates: Vec<f32> = grid().iter().map(|x| x * 5.0).collect();
        // Up projections of both signs and several sizes, against every gate.
        let ups: Vec<f32> = (0..gates.len())
            .map(|i| ((i % 7) as f32 - 3.0) * 0.75)
            .collect();
        let mut ys = ups.clone();
        swiglu(&gates, &mut ys);
        let (mut d_ups, mut d_gates) = (ups.clone(), vec![0.5; gates.len()]);
        swiglu_backward(&gates, &mut d_ups, &mut d_gates);
        for i in 0..gates.len() {
            let (g, u) = (gates[i] as f64, ups[i] as f64);
            let s = 1.0 / (1.0 + (-g).exp());
            let near = |got: f32, want: f64| (got as f64 - want).abs() <= 1e-6 * want.abs() + 1e-7;
            assert!(near(ys[i], g * s * u), "swiglu({g}, {u}) = {}", ys[i]);
            assert!(
                near(d_gates[i], 0.5 * u * s * (1.0 + g * (1.0 - s))),
                "d gate at {g}, {u}"
            );
            assert!(near(d_ups[i], 0.5 * g * s), "d up at {g}, {u}");
        }
    }
}
