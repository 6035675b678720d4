//! ggml tensor element types: ids, names and block layouts.

/// A ggml tensor type as stored in a tensor info. Ids this reader does not know are kept as
/// `Unknown` so that the file still opens and only reading that tensor fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
    Q8K,
    Iq2Xxs,
    Iq2Xs,
    Iq3Xxs,
    Iq1S,
    Iq4Nl,
    Iq3S,
    Iq2S,
    Iq4Xs,
    I8,
    I16,
    I32,
    I64,
    F64,
    Iq1M,
    Bf16,
    Tq1_0,
    Tq2_0,
    Mxfp4,
    Unknown(u32),
}

/// Elements per super-block of the K-quants.
pub(crate) const QK_K: usize = 256;

/// One known type: ggml id, variant, ggml name, elements per block, bytes per block.
struct Layout(u32, GgmlType, &'static str, usize, usize);

/// ggml's type traits (ggml.c), for every type a GGUF file may name.
const LAYOUTS: &[Layout] = &[
    Layout(0, GgmlType::F32, "F32", 1, 4),
    Layout(1, GgmlType::F16, "F16", 1, 2),
    Layout(2, GgmlType::Q4_0, "Q4_0", 32, 18),
    Layout(3, GgmlType::Q4_1, "Q4_1", 32, 20),
    Layout(6, GgmlType::Q5_0, "Q5_0", 32, 22),
    Layout(7, GgmlType::Q5_1, "Q5_1", 32, 24),
    Layout(8, GgmlType::Q8_0, "Q8_0", 32, 34),
    Layout(9, GgmlType::Q8_1, "Q8_1", 32, 36),
    Layout(10, GgmlType::Q2K, "Q2_K", QK_K, 84),
    Layout(11, GgmlType::Q3K, "Q3_K", QK_K, 110),
    Layout(12, GgmlType::Q4K, "Q4_K", QK_K, 144),
    Layout(13, GgmlType::Q5K, "Q5_K", QK_K, 176),
    Layout(14, GgmlType::Q6K, "Q6_K", QK_K, 210),
    Layout(15, GgmlType::Q8K, "Q8_K", QK_K, 292),
    Layout(16, GgmlType::Iq2Xxs, "IQ2_XXS", QK_K, 66),
    Layout(17, GgmlType::Iq2Xs, "IQ2_XS", QK_K, 74),
    Layout(18, GgmlType::Iq3Xxs, "IQ3_XXS", QK_K, 98),
    Layout(19, GgmlType::Iq1S, "IQ1_S", QK_K, 50),
    Layout(20, GgmlType::Iq4Nl, "IQ4_NL", 32, 18),
    Layout(21, GgmlType::Iq3S, "IQ3_S", QK_K, 110),
    Layout(22, GgmlType::Iq2S, "IQ2_S", QK_K, 82),
    Layout(23, GgmlType::Iq4Xs, "IQ4_XS", QK_K, 136),
    Layout(24, GgmlType::I8, "I8", 1, 1),
    Layout(25, GgmlType::I16, "I16", 1, 2),
    Layout(26, GgmlType::I32, "I32", 1, 4),
    Layout(27, GgmlType::I64, "I64", 1, 8),
    Layout(28, GgmlType::F64, "F64", 1, 8),
    Layout(29, GgmlType::Iq1M, "IQ1_M", QK_K, 56),
    Layout(30, GgmlType::Bf16, "BF16", 1, 2),
    Layout(34, GgmlType::Tq1_0, "TQ1_0", QK_K, 54),
    Layout(35, GgmlType::Tq2_0, "TQ2_0", QK_K, 66),
    Layout(39, GgmlType::Mxfp4, "MXFP4", 32, 17),
];

impl GgmlType {
    /// The types `read_f32` can dequantize, as named in error messages.
    pub const SUPPORTED_NAMES: &'static str =
        "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K";

    pub fn from_id(id: u32) -> Self {
        LAYOUTS
            .iter()
            .find(|l| l.0 == id)
            .map_or(GgmlType::Unknown(id), |l| l.1)
    }

    /// The numeric id stored in the file.
    pub fn id(self) -> u32 {
        match self {
            GgmlType::Unknown(id) => id,
            known => known.layout().map_or(u32::MAX, |l| l.0),
        }
    }

    /// ggml's name for the type, as llama.cpp and gguf-py print it.
    pub fn name(self) -> String {
        match self.layout() {
            Some(l) => l.2.to_string(),
            None => format!("unknown type id {}", self.id()),
        }
    }

    /// Elements per block (1 for plain types); `None` for unknown ids.
    pub fn block_size(self) -> Option<usize> {
        self.layout().map(|l| l.3)
    }

    /// Bytes per block; `None` for unknown ids.
    pub fn type_size(self) -> Option<usize> {
        self.layout().map(|l| l.4)
    }

    /// Whether `read_f32` can dequantize this type.
    pub fn is_supported(self) -> bool {
        use GgmlType::*;
        matches!(
            self,
            F32 | F16 | Bf16 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q2K | Q3K | Q4K | Q5K | Q6K
        )
    }

    fn layout(self) -> Option<&'static Layout> {
        LAYOUTS.iter().find(|l| l.1 == self)
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}
