//! Backend selection: the one place that knows which burn backends this binary was built with.

use anyhow::{Result, bail};
use burn::tensor::Device;
use ptune_backbone::{Backbone, ModelBundle, Precision};

/// Backends a user can name with `--backend`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// burn's pure-Rust CPU backend (always built).
    Flex,
    /// libtorch on the CPU: the fastest CPU path (cargo feature `tch`).
    Tch,
    /// libtorch on the first CUDA GPU (cargo feature `tch`, a CUDA build of libtorch).
    TchCuda,
    /// GPUs via Vulkan/Metal/DX12 (cargo feature `wgpu`).
    Wgpu,
}

impl Backend {
    /// The name `--backend` takes (`tch-cuda`, not the variant's `TchCuda`).
    pub fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self)
            .expect("every backend has a command-line name")
            .get_name()
            .to_string()
    }
}

/// Where the frozen model runs and in what precision: `--backend` and `--precision`, the same
/// on every command.
#[derive(Debug, Clone, Copy, clap::Args, serde::Serialize, serde::Deserialize)]
pub struct Compute {
    #[arg(long, value_enum, default_value = "flex")]
    pub backend: Backend,
    /// The frozen model's weight matrices: `f32` (matches transformers to 1e-4), or `bf16`:
    /// half their memory, and 2-3x faster matmuls where the hardware multiplies bf16 (x86 CPUs
    /// with AVX512-BF16 or AMX under `--backend tch`, recent GPUs; slower on flex; f32's speed
    /// under `--backend tch` on CPUs without AVX-512, which multiply the bf16 weights in f32).
    /// Activations and the prompt encoder stay f32; log-probs move by up to ~0.2 nats, as with
    /// PyTorch's bf16.
    #[arg(long, default_value = "f32", value_parser = |s: &str| s.parse::<Precision>())]
    #[serde(default)]
    pub precision: Precision,
    /// CPU worker threads (flex's rayon pool, libtorch's intra-op pool) [default: every core;
    /// flex also honours RAYON_NUM_THREADS, libtorch OMP_NUM_THREADS].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    #[serde(skip)]
    pub threads: Option<u32>,
}

impl Compute {
    /// The device to compute on, after checking the backend can hold this precision.
    pub fn device(&self) -> Result<Device> {
        if self.precision == Precision::Bf16 && self.backend == Backend::Wgpu {
            bail!(
                "--precision bf16 needs --backend flex, tch or tch-cuda: wgpu's shaders have no bf16 type"
            );
        }
        // Before any thread starts: glibc fixes its arena limit when a thread first needs one.
        #[cfg(all(not(feature = "jemalloc"), target_os = "linux", target_env = "gnu"))]
        one_malloc_arena();
        self.set_threads()?;
        #[cfg(feature = "tch")]
        if self.backend == Backend::Tch {
            libtorch_workers_alone();
        }
        #[cfg(all(feature = "jemalloc", target_os = "linux", target_env = "gnu"))]
        crate::alloc::keep_freed_pages();
        let bf16_on_tch = self.backend == Backend::Tch && self.precision == Precision::Bf16;
        let widen = bf16_on_tch && !libtorch_cpu_multiplies_bf16();
        if widen {
            eprintln!(
                "note: libtorch has no fast bf16 matmul on this CPU ({MISSING_BF16_FEATURE}; there it is 26-60x slower than f32), so the bf16 weights are multiplied in f32; --precision f32 runs as fast and training peaks lower"
            );
        }
        ptune_backbone::precision::widen_bf16_matmuls(widen);
        device(self.backend)
    }

    /// Sizes the CPU thread pools once, before the first tensor op starts them.
    fn set_threads(&self) -> Result<()> {
        let Some(n) = self.threads else {
            return Ok(());
        };
        rayon::ThreadPoolBuilder::new()
            .num_threads(n as usize)
            .build_global()
            .map_err(|e| anyhow::anyhow!("--threads {n}: {e}"))?;
        #[cfg(feature = "tch")]
        tch::set_num_threads(n as i32);
        Ok(())
    }

    /// The bundle's frozen backbone on `device`, in this precision.
    pub fn backbone(&self, bundle: &ModelBundle, device: &Device) -> Result<Backbone> {
        Ok(bundle.backbone_as(device, self.precision)?)
    }
}

/// One libtorch thread on each of rayon's workers, where `model::row_groups` computes a batch's
/// groups at once: each group's ops then run on its own core, with no wait for the others at
/// each op's end, while the calling thread keeps libtorch's whole pool for what is not grouped.
/// libtorch sets a thread's count from a global at the thread's first op, so each is started
/// first, then given its own.
#[cfg(feature = "tch")]
fn libtorch_workers_alone() {
    let pool = tch::get_num_threads();
    rayon::broadcast(|_| {
        tch::get_num_threads();
        tch::set_num_threads(1);
    });
    tch::set_num_threads(pool);
}

/// glibc's malloc with one arena. flex's row groups (`model::row_groups`) allocate on every
/// worker thread, and glibc gives each its own arena, each keeping its own freed pages: 45 MB
/// more at the peak of a bert-base step, at no gain in speed. `MALLOC_ARENA_MAX` still rules.
#[cfg(all(not(feature = "jemalloc"), target_os = "linux", target_env = "gnu"))]
fn one_malloc_arena() {
    /// glibc's `M_ARENA_MAX` (malloc.h).
    const M_ARENA_MAX: std::ffi::c_int = -8;
    unsafe extern "C" {
        fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
    }
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: glibc's mallopt takes any parameter and value and may run at any time.
        unsafe { mallopt(M_ARENA_MAX, 1) };
    }
}

/// What a CPU lacks when [`libtorch_cpu_multiplies_bf16`] says no, in the start-up note.
const MISSING_BF16_FEATURE: &str = if cfg!(target_arch = "x86_64") {
    "no AVX-512 BW/VL/DQ or AVX-NE-CONVERT"
} else if cfg!(target_arch = "aarch64") {
    "no ARM BF16 extension"
} else {
    "no bf16 kernels for this architecture"
};

/// Whether libtorch multiplies bf16 matrices on this CPU with oneDNN's kernels: it does with
/// AVX-512 (BW, VL, DQ) or AVX-NE-CONVERT on x86 and BF16 on ARM. Elsewhere its bf16 matmul is a
/// scalar loop: on a 2-core AVX2 EPYC, SmolLM2 trained 26× and evaluated 60× slower than in f32
/// (docs/backends.md), so ptune then multiplies bf16 weights in f32 instead.
fn libtorch_cpu_multiplies_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        (has!("avx512bw") && has!("avx512vl") && has!("avx512dq")) || has!("avxneconvert")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("bf16")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// The device for `backend`, or one sentence naming the cargo feature that provides it.
pub fn device(backend: Backend) -> Result<Device> {
    match backend {
        Backend::Flex => Ok(Device::flex()),
        Backend::Tch => tch_device(false),
        Backend::TchCuda => tch_device(true),
        Backend::Wgpu => wgpu_device(),
    }
}

#[cfg(feature = "tch")]
#[allow(deprecated)]
fn tch_device(cuda: bool) -> Result<Device> {
    if !cuda {
        return Ok(Device::libtorch());
    }
    let device = Device::libtorch_cuda(0);
    if !usable(&device) {
        bail!(
            "libtorch cannot use a CUDA GPU here (no GPU or driver, or a CPU-only libtorch): use --backend tch for the CPU"
        );
    }
    Ok(device)
}

/// Whether a one-element tensor can be made and read back on `device`. libtorch and wgpu report
/// a missing GPU by panicking inside the first operation, so the probe runs with a silent hook.
#[cfg(any(feature = "tch", feature = "wgpu"))]
fn usable(device: &Device) -> bool {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let ok = std::panic::catch_unwind(|| {
        burn::tensor::Tensor::<1>::zeros([1], device).into_data();
    })
    .is_ok();
    std::panic::set_hook(hook);
    ok
}

#[cfg(not(feature = "tch"))]
fn tch_device(_cuda: bool) -> Result<Device> {
    bail!(
        "the tch backend is not built into this binary: rebuild with `cargo build --release -p ptune-train --features tch` (see docs/backends.md)"
    )
}

#[cfg(feature = "wgpu")]
fn wgpu_device() -> Result<Device> {
    let device = Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
    if !usable(&device) {
        bail!(
            "wgpu found no usable GPU adapter (it needs a Vulkan, Metal or DX12 driver and its loader): use --backend flex"
        );
    }
    Ok(device)
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device() -> Result<Device> {
    bail!(
        "the wgpu backend is not built into this binary: rebuild with `cargo build --release -p ptune-train --features wgpu`"
    )
}

#[cfg(all(test, feature = "tch"))]
mod tests {
    use super::*;

    #[test]
    fn row_groups_workers_run_one_libtorch_thread_and_the_caller_keeps_its_pool() {
        let pool = tch::get_num_threads();
        let compute = Compute {
            backend: Backend::Tch,
            precision: Precision::F32,
            threads: None,
        };
        compute.device().expect("libtorch's CPU is always there");
        let workers = rayon::broadcast(|_| tch::get_num_threads());
        assert!(
            workers.iter().all(|&n| n == 1),
            "workers' threads: {workers:?}"
        );
        assert_eq!(tch::get_num_threads(), pool);
    }
}
