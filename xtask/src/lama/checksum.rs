//! Expected checksums (MD5 as Zenodo publishes them, or one given with `--md5`/`--sha256`) and the
//! digests computed while the archive streams past, so the file is read only once.

use anyhow::{Context, Result, bail};
use md5::Md5;
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::path::Path;

/// A digest the archive must have, as lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    Md5(String),
    Sha256(String),
}

impl Checksum {
    /// Reads `--md5 HEX` / `--sha256 HEX`, refusing anything that is not a digest of that kind.
    pub fn parse(kind: &str, hex: &str) -> Result<Self> {
        let hex = hex.trim().to_ascii_lowercase();
        let (want, checksum) = match kind.to_ascii_lowercase().as_str() {
            "md5" => (32, Checksum::Md5(hex.clone())),
            "sha256" | "sha-256" => (64, Checksum::Sha256(hex.clone())),
            other => bail!("unknown checksum kind `{other}`: use md5 or sha256"),
        };
        if hex.len() != want || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!(
                "`{hex}` is not {} {} digest ({want} hex digits expected)",
                if want == 32 { "an" } else { "a" },
                checksum.kind()
            );
        }
        Ok(checksum)
    }

    /// Reads Zenodo's `"md5:HEX"` form.
    pub fn parse_prefixed(text: &str) -> Result<Self> {
        let (kind, hex) = text
            .split_once(':')
            .with_context(|| format!("checksum `{text}` has no `kind:` prefix"))?;
        Self::parse(kind, hex)
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Checksum::Md5(_) => "MD5",
            Checksum::Sha256(_) => "SHA-256",
        }
    }

    fn hex(&self) -> &str {
        match self {
            Checksum::Md5(h) | Checksum::Sha256(h) => h,
        }
    }
}

/// MD5 and SHA-256 fed together, so either kind of expected value can be checked afterwards.
#[derive(Default)]
pub struct Hasher {
    md5: Md5,
    sha256: Sha256,
}

impl Hasher {
    pub fn finish(self) -> Digests {
        Digests {
            md5: format!("{:x}", self.md5.finalize()),
            sha256: format!("{:x}", self.sha256.finalize()),
        }
    }
}

/// Digesting is writing: a file or a download is streamed through with `io::copy`.
impl Write for Hasher {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.md5.update(bytes);
        self.sha256.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The digests of one file, as lowercase hex.
#[derive(Debug, Clone)]
pub struct Digests {
    pub md5: String,
    pub sha256: String,
}

impl Digests {
    /// Streams a file through both digests.
    pub fn of_file(path: &Path) -> Result<Self> {
        let mut file =
            fs::File::open(path).with_context(|| format!("could not open {}", path.display()))?;
        let mut hasher = Hasher::default();
        std::io::copy(&mut file, &mut hasher)
            .with_context(|| format!("could not read {}", path.display()))?;
        Ok(hasher.finish())
    }

    /// Fails with one sentence when `expected` does not match; `what` names the file.
    pub fn check(&self, expected: &Checksum, what: &str) -> Result<()> {
        let actual = match expected {
            Checksum::Md5(_) => &self.md5,
            Checksum::Sha256(_) => &self.sha256,
        };
        if actual != expected.hex() {
            bail!(
                "{what} has {kind} {actual}, expected {}: the download is corrupt or the file is not the published LAMA pack",
                expected.hex(),
                kind = expected.kind(),
            );
        }
        Ok(())
    }
}
