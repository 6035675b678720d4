//! `cargo xtask fetch lama`: the P-tuning authors' LAMA data pack (Zenodo record 5578210),
//! downloaded or taken from a local file, checksum-verified, unpacked beside the download and
//! renamed into `$PTUNE_DATA/lama` in one step, so a failed run leaves nothing half-written.

mod checksum;
mod http;
#[cfg(test)]
mod tests;
mod unpack;

use anyhow::{Context, Result, bail};
pub use checksum::{Checksum, Digests};
use std::fs;
use std::path::{Path, PathBuf};

/// The archive's name in the Zenodo record.
pub const FILE_NAME: &str = "P-tune_LAMA.tar.gz";
const DOWNLOAD_URL: &str = "https://zenodo.org/records/5578210/files/P-tune_LAMA.tar.gz?download=1";
/// Lists each file of the record with its `size` and `checksum` (`md5:HEX`).
const RECORD_API: &str = "https://zenodo.org/api/records/5578210";
/// Where the archive comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Url(String),
    File(PathBuf),
}

/// One `fetch lama`: the source, the checksum it must have, and where to look the checksum up
/// when none is known yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub source: Source,
    pub expected: Option<Checksum>,
    pub record_api: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    AlreadyThere(PathBuf),
    Fetched(PathBuf),
}

/// `$PTUNE_DATA`, else `~/.cache/ptune/data`.
pub fn data_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PTUNE_DATA") {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME").context("neither PTUNE_DATA nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cache/ptune/data"))
}

/// `fetch lama`'s flags: where the archive comes from and the checksum it must have. With none,
/// the record's own address is downloaded and checked against the MD5 its API publishes.
#[derive(clap::Args, Debug, Default)]
pub struct Flags {
    /// fetch lama: download from a mirror instead of the record's own address.
    #[arg(long, value_name = "URL", conflicts_with = "from")]
    url: Option<String>,
    /// fetch lama: unpack a P-tune_LAMA.tar.gz you downloaded yourself.
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    /// fetch lama: the MD5 the archive must have.
    #[arg(long, value_name = "HEX", conflicts_with = "sha256",
          value_parser = |hex: &str| Checksum::parse("md5", hex))]
    md5: Option<Checksum>,
    /// fetch lama: the SHA-256 the archive must have.
    #[arg(long, value_name = "HEX", value_parser = |hex: &str| Checksum::parse("sha256", hex))]
    sha256: Option<Checksum>,
}

impl Flags {
    pub fn is_empty(&self) -> bool {
        self.url.is_none() && self.from.is_none() && self.md5.is_none() && self.sha256.is_none()
    }

    /// The request these flags make: a given checksum is checked for every source; with no
    /// source and no checksum, the record API is asked for the published one.
    pub fn request(&self) -> Request {
        let expected = self.md5.clone().or_else(|| self.sha256.clone());
        let ask_record = self.url.is_none() && self.from.is_none() && expected.is_none();
        let source = match (&self.from, &self.url) {
            (Some(file), _) => Source::File(file.clone()),
            (None, url) => Source::Url(url.clone().unwrap_or_else(|| DOWNLOAD_URL.to_string())),
        };
        Request {
            source,
            expected,
            record_api: ask_record.then(|| RECORD_API.to_string()),
        }
    }
}

/// `cargo xtask fetch lama [--url URL | --from FILE] [--md5 HEX | --sha256 HEX]`.
pub fn run(flags: &Flags) -> Result<()> {
    match fetch(&data_dir()?, &flags.request())? {
        Outcome::AlreadyThere(dir) => println!("lama: already in {}", dir.display()),
        Outcome::Fetched(dir) => println!("lama: {}", dir.display()),
    }
    Ok(())
}

/// Puts the LAMA folder at `root/lama` unless it is already there.
pub fn fetch(root: &Path, request: &Request) -> Result<Outcome> {
    let dest = root.join("lama");
    if unpack::is_lama_dir(&dest) {
        return Ok(Outcome::AlreadyThere(dest));
    }
    if dest.exists() {
        bail!(
            "{} exists but is not a complete LAMA folder; move it away and re-run",
            dest.display()
        );
    }
    let created = !root.exists();
    fs::create_dir_all(root).with_context(|| format!("could not create {}", root.display()))?;
    let result = fetch_into(root, &dest, request);
    if result.is_err() && created {
        // Only succeeds while empty: a failed first run leaves no trace at all.
        let _ = fs::remove_dir(root);
    }
    result.map(|()| Outcome::Fetched(dest))
}

/// Stages, verifies and unpacks beside `dest`, then renames into it; the staging folder goes
/// whatever happens.
fn fetch_into(root: &Path, dest: &Path, request: &Request) -> Result<()> {
    let staging = Staging::create(root.join(format!(".lama.partial-{}", std::process::id())))?;
    let archive = obtain(request, &staging.0)?;
    eprintln!("unpacking {}", archive.display());
    let found = unpack::unpack(&archive, &staging.0.join("unpacked"))?;
    fs::rename(&found, dest).with_context(|| format!("could not move into {}", dest.display()))
}

/// Returns the verified archive: the `--from` file itself, or a download into `work`.
fn obtain(request: &Request, work: &Path) -> Result<PathBuf> {
    match &request.source {
        Source::File(path) => {
            if !path.is_file() {
                bail!("{} is not a file", path.display());
            }
            let digests = Digests::of_file(path)?;
            verify(
                &digests,
                request.expected.as_ref(),
                &path.display().to_string(),
            )?;
            Ok(path.clone())
        }
        Source::Url(url) => {
            let (expected, size) = expected_for_download(request)?;
            let path = work.join(FILE_NAME);
            eprintln!("downloading {url}");
            let digests = http::download(url, &path, size)?;
            verify(&digests, expected.as_ref(), url)?;
            Ok(path)
        }
    }
}

/// The checksum a download must have, and its size if the record API told it.
fn expected_for_download(request: &Request) -> Result<(Option<Checksum>, Option<u64>)> {
    let (Some(api), None) = (&request.record_api, &request.expected) else {
        return Ok((request.expected.clone(), None));
    };
    let record = http::record_file(api)?;
    if record.checksum.is_none() {
        bail!(
            "{api} lists no checksum for {FILE_NAME}; pass --md5 or --sha256 with a value you trust"
        );
    }
    Ok((record.checksum, record.size))
}

fn verify(digests: &Digests, expected: Option<&Checksum>, what: &str) -> Result<()> {
    match expected {
        Some(checksum) => {
            digests.check(checksum, what)?;
            let kind = checksum.kind();
            eprintln!(
                "verified {kind}; the archive's SHA-256 is {}",
                digests.sha256
            );
        }
        None => eprintln!(
            "note: no checksum known for {what}, so it is not verified (pass --md5 or --sha256 to check it); SHA-256 {}",
            digests.sha256
        ),
    }
    Ok(())
}

/// A scratch folder beside the destination, removed however the fetch ends.
struct Staging(PathBuf);

impl Staging {
    fn create(path: PathBuf) -> Result<Self> {
        if path.exists() {
            fs::remove_dir_all(&path)
                .with_context(|| format!("could not remove stale {}", path.display()))?;
        }
        fs::create_dir(&path).with_context(|| format!("could not create {}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
