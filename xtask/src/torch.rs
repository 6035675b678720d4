//! The PyTorch a Python already has, as libtorch for burn's `tch` backend: torch-sys is told to
//! use it (`LIBTORCH_USE_PYTORCH`), its version check is bypassed when it is not the 2.9.0 that
//! burn-tch 0.22 binds, and the binaries get its `lib/` on their loader path.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The libtorch version burn-tch 0.22 (torch-sys 0.22) is written against.
pub const BOUND_VERSION: &str = "2.9.0";

/// One Python's torch: its version, its shared libraries and the CUDA it was built for.
pub struct Torch {
    pub python: PathBuf,
    /// The virtualenv the Python runs in, if any (`sys.prefix` when it is not the base one).
    pub venv: Option<PathBuf>,
    pub version: String,
    pub lib: PathBuf,
    pub cuda: Option<String>,
}

const PROBE: &str = "import os, sys, torch\n\
print(sys.executable)\n\
print(sys.prefix if sys.prefix != sys.base_prefix else '')\n\
print(torch.__version__.split('+')[0])\n\
print(os.path.join(os.path.dirname(torch.__file__), 'lib'))\n\
print(torch.version.cuda or '')";

impl Torch {
    /// Asks `python` for its torch; one sentence when it has none.
    pub fn find(python: &str) -> Result<Torch> {
        let out = Command::new(python)
            .args(["-c", PROBE])
            .output()
            .with_context(|| format!("could not run `{python}`"))?;
        if !out.status.success() {
            bail!(
                "`{python}` cannot import torch: install PyTorch into it (pip install torch) or \
                 name another with --python"
            );
        }
        let text = String::from_utf8(out.stdout)?;
        let lines: Vec<&str> = text.lines().collect();
        let [executable, venv, version, lib, cuda] = lines[..] else {
            bail!("`{python}` printed something unexpected for its torch: {text:?}");
        };
        Ok(Torch {
            python: PathBuf::from(executable),
            venv: (!venv.is_empty()).then(|| PathBuf::from(venv)),
            version: version.to_string(),
            lib: PathBuf::from(lib),
            cuda: (!cuda.is_empty()).then(|| cuda.to_string()),
        })
    }

    /// Whether this is the libtorch burn-tch was written against (no bypass needed).
    pub fn is_bound_version(&self) -> bool {
        self.version == BOUND_VERSION
    }

    /// Sets `command` up to build or run against this torch. torch-sys runs `python` when
    /// `VIRTUAL_ENV` is set and `python3` otherwise, from PATH, so the Python's own folder comes
    /// first on PATH (a link elsewhere would not find its virtualenv); the torch's lib folder
    /// is the value of the variables torch-sys tracks, so switching to another torch rebuilds
    /// torch-sys rather than reusing the old one.
    pub fn configure(&self, command: &mut Command) {
        let dir = self.python.parent().unwrap_or(Path::new("/"));
        let path = std::env::var("PATH").unwrap_or_default();
        command.env("PATH", format!("{}:{path}", dir.display()));
        match &self.venv {
            Some(venv) => command.env("VIRTUAL_ENV", venv),
            None => command.env_remove("VIRTUAL_ENV"),
        };
        command.env("LIBTORCH_USE_PYTORCH", &self.lib);
        command.env_remove("LIBTORCH");
        if self.is_bound_version() {
            command.env_remove("LIBTORCH_BYPASS_VERSION_CHECK");
        } else {
            command.env("LIBTORCH_BYPASS_VERSION_CHECK", &self.version);
        }
        self.on_loader_path(command);
    }

    /// Puts this torch's libraries first on `command`'s loader path (for binaries built without
    /// the rpath ptune-train's build script adds: other crates' test binaries).
    pub fn on_loader_path(&self, command: &mut Command) {
        let path = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
        command.env("LD_LIBRARY_PATH", format!("{}:{path}", self.lib.display()));
    }

    /// "2.11.0 (CUDA 13.0)" or "2.9.0 (CPU only)".
    pub fn describe(&self) -> String {
        match &self.cuda {
            Some(cuda) => format!("{} (CUDA {cuda})", self.version),
            None => format!("{} (CPU only)", self.version),
        }
    }
}
