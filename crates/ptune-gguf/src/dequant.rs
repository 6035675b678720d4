//! Dequantization of ggml blocks to f32, following ggml's `dequantize_row_*` reference code
//! (ggml-quants.c) operation for operation, so results equal gguf-py's and llama.cpp's bit for bit.

use ptune_host::{bf16_le, f16_le, f32_le};
use rayon::prelude::*;

use crate::ggml_type::GgmlType;

/// Blocks per parallel task: large enough that scheduling costs nothing next to the work.
const BLOCKS_PER_TASK: usize = 512;

/// Decodes `bytes` (whole blocks of `ty`) into `out` (their elements). The caller guarantees
/// that `ty` is supported and that the lengths match the block layout.
pub(crate) fn dequantize(ty: GgmlType, bytes: &[u8], out: &mut [f32]) {
    let (Some(block), Some(size)) = (ty.block_size(), ty.type_size()) else {
        return;
    };
    let decode = block_decoder(ty);
    out.par_chunks_mut(block * BLOCKS_PER_TASK)
        .zip(bytes.par_chunks(size * BLOCKS_PER_TASK))
        .for_each(|(out, bytes)| {
            for (o, b) in out.chunks_exact_mut(block).zip(bytes.chunks_exact(size)) {
                decode(b, o);
            }
        });
}

type BlockDecoder = fn(&[u8], &mut [f32]);

fn block_decoder(ty: GgmlType) -> BlockDecoder {
    match ty {
        GgmlType::F32 => |b, o| o[0] = f32_le(b),
        GgmlType::F16 => |b, o| o[0] = f16_le(b),
        GgmlType::Bf16 => |b, o| o[0] = bf16_le(b),
        GgmlType::Q4_0 => q4_0,
        GgmlType::Q4_1 => q4_1,
        GgmlType::Q5_0 => q5_0,
        GgmlType::Q5_1 => q5_1,
        GgmlType::Q8_0 => q8_0,
        GgmlType::Q2K => q2_k,
        GgmlType::Q3K => q3_k,
        GgmlType::Q4K => q4_k,
        GgmlType::Q5K => q5_k,
        GgmlType::Q6K => q6_k,
        _ => |_, o| o.fill(f32::NAN),
    }
}

/// Q4_0: f16 scale, 32 4-bit values offset by 8; low nibbles first, then high nibbles.
fn q4_0(b: &[u8], o: &mut [f32]) {
    let d = f16_le(b);
    let qs = &b[2..18];
    for (j, &q) in qs.iter().enumerate() {
        o[j] = (i32::from(q & 0x0F) - 8) as f32 * d;
        o[j + 16] = (i32::from(q >> 4) - 8) as f32 * d;
    }
}

/// Q4_1: f16 scale and min, 32 unsigned 4-bit values.
fn q4_1(b: &[u8], o: &mut [f32]) {
    let (d, m) = (f16_le(b), f16_le(&b[2..]));
    let qs = &b[4..20];
    for (j, &q) in qs.iter().enumerate() {
        o[j] = f32::from(q & 0x0F) * d + m;
        o[j + 16] = f32::from(q >> 4) * d + m;
    }
}

/// The 5-bit value `j` of a Q5 block: a nibble from `qs` plus one high bit from `qh`.
fn q5_value(qh: u32, qs: &[u8], j: usize) -> u8 {
    let low = if j < 16 {
        qs[j] & 0x0F
    } else {
        qs[j - 16] >> 4
    };
    low | ((((qh >> j) & 1) as u8) << 4)
}

/// Q5_0: f16 scale, 32 5-bit values offset by 16.
fn q5_0(b: &[u8], o: &mut [f32]) {
    let d = f16_le(b);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let qs = &b[6..22];
    for (j, y) in o.iter_mut().enumerate() {
        *y = (i32::from(q5_value(qh, qs, j)) - 16) as f32 * d;
    }
}

/// Q5_1: f16 scale and min, 32 unsigned 5-bit values.
fn q5_1(b: &[u8], o: &mut [f32]) {
    let (d, m) = (f16_le(b), f16_le(&b[2..]));
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let qs = &b[8..24];
    for (j, y) in o.iter_mut().enumerate() {
        *y = f32::from(q5_value(qh, qs, j)) * d + m;
    }
}

/// Q8_0: f16 scale, 32 signed bytes.
fn q8_0(b: &[u8], o: &mut [f32]) {
    let d = f16_le(b);
    for (y, &q) in o.iter_mut().zip(&b[2..34]) {
        *y = f32::from(q as i8) * d;
    }
}

/// Q2_K: 16 sub-blocks of 16 with 4-bit scale and min each; 2-bit values, four per byte.
fn q2_k(b: &[u8], o: &mut [f32]) {
    let (scales, qs) = (&b[..16], &b[16..80]);
    let (d, dmin) = (f16_le(&b[80..]), f16_le(&b[82..]));
    for (e, y) in o.iter_mut().enumerate() {
        let sc = scales[e / 16];
        let (dl, ml) = (d * f32::from(sc & 0x0F), dmin * f32::from(sc >> 4));
        let q = (qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3;
        *y = dl * f32::from(q) - ml;
    }
}

/// The 6-bit scale of Q3_K sub-block `s`: 4 low bits from bytes 0..8, 2 high bits from 8..12.
fn q3_k_scale(scales: &[u8], s: usize) -> i8 {
    let low = if s < 8 {
        scales[s] & 0x0F
    } else {
        scales[s - 8] >> 4
    };
    let high = (scales[8 + s % 4] >> (2 * (s / 4))) & 3;
    ((low | (high << 4)) as i8) - 32
}

/// Q3_K: 16 sub-blocks of 16 with signed 6-bit scales; 2 low bits plus an inverted high bit.
fn q3_k(b: &[u8], o: &mut [f32]) {
    let (hmask, qs, scales) = (&b[..32], &b[32..96], &b[96..108]);
    let d = f16_le(&b[108..]);
    let mut dl = [0f32; 16];
    for (s, dl) in dl.iter_mut().enumerate() {
        *dl = d * f32::from(q3_k_scale(scales, s));
    }
    for (e, y) in o.iter_mut().enumerate() {
        let low = (qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3;
        let high_clear = (hmask[e % 32] >> (e / 32)) & 1 == 0;
        let q = low as i8 - if high_clear { 4 } else { 0 };
        *y = dl[e / 16] * f32::from(q);
    }
}

/// The 6-bit scale and min of K-quant sub-block `j` (ggml's `get_scale_min_k4`).
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Per-sub-block (scale, min) of a Q4_K/Q5_K super-block, already multiplied by d and dmin.
fn k4_scales(b: &[u8]) -> [(f32, f32); 8] {
    let (d, dmin) = (f16_le(b), f16_le(&b[2..]));
    let scales = &b[4..16];
    std::array::from_fn(|j| {
        let (sc, m) = scale_min_k4(j, scales);
        (d * f32::from(sc), dmin * f32::from(m))
    })
}

/// Q4_K: 8 sub-blocks of 32 with 6-bit scale and min; 4-bit values, two sub-blocks per 32 bytes.
fn q4_k(b: &[u8], o: &mut [f32]) {
    let sm = k4_scales(b);
    let qs = &b[16..144];
    for (e, y) in o.iter_mut().enumerate() {
        let (d, m) = sm[e / 32];
        let q = (qs[(e / 64) * 32 + e % 32] >> (4 * ((e / 32) % 2))) & 0x0F;
        *y = d * f32::from(q) - m;
    }
}

/// Q5_K: Q4_K plus one high bit per value from `qh`.
fn q5_k(b: &[u8], o: &mut [f32]) {
    let sm = k4_scales(b);
    let (qh, qs) = (&b[16..48], &b[48..176]);
    for (e, y) in o.iter_mut().enumerate() {
        let (d, m) = sm[e / 32];
        let low = (qs[(e / 64) * 32 + e % 32] >> (4 * ((e / 32) % 2))) & 0x0F;
        let high = (qh[e % 32] >> (e / 32)) & 1;
        *y = d * f32::from(low | (high << 4)) - m;
    }
}

/// Q6_K: 16 sub-blocks of 16 with signed 8-bit scales; 4 low bits in `ql`, 2 high bits in `qh`.
fn q6_k(b: &[u8], o: &mut [f32]) {
    let (ql, qh, scales) = (&b[..128], &b[128..192], &b[192..208]);
    let d = f16_le(&b[208..]);
    for (e, y) in o.iter_mut().enumerate() {
        let (half, within) = (e / 128, e % 128);
        let low = (ql[half * 64 + within % 64] >> (4 * (within / 64))) & 0x0F;
        let high = (qh[half * 32 + within % 32] >> (2 * (within / 32))) & 3;
        let q = (low | (high << 4)) as i8 - 32;
        *y = d * f32::from(scales[e / 16] as i8) * f32::from(q);
    }
}
