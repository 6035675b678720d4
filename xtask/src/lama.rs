//! `cargo xtask fetch lama`: the P-tuning authors' LAMA data pack (Zenodo record 5578210),
//! downloaded or taken from a local file, checksum-verified, unpacked beside the download and
//! renamed into `$PTUNE_DATA/lama` in one step, so a failed run leaves nothing half-written.

mod checksum;
mod http;
#[cfg(test)]
mod tests;
mod unpack;

use anyhow::{Context, Result, bail};
pub use checksum::Checksum;
use checksum::Digests;
use std::fs;
use std::path::{Path, PathBuf};

/// The archive's name in the Zenodo record.
pub const FILE_NAME: &str = "P-tune_LAMA.tar.gz";
const DOWNLOAD_URL: &str = "https://zenodo.org/records/5578210/files/P-tune_LAMA.tar.gz?download=1";
/// Lists each file of the record with its `size` and `checksum` (`md5:HEX`).
const RECORD_API: &str = "https://zenodo.org/api/records/5578210";
/// SHA-256 of the published archive. Unset because the pack could not be downloaded where this
/// was written; meanwhile the record API's MD5 is checked. Once set, it is checked for every
/// source (download, `--url` mirror, `--from` file) unless `--md5`/`--sha256` is given, and the
/// record API is no longer asked. A run that verified the pack prints the value to put here.
const PINNED_SHA256: Option<&str> = None;

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

/// `cargo xtask fetch lama [--url URL | --from FILE] [--md5 HEX | --sha256 HEX]`.
pub fn run(args: &[String]) -> Result<()> {
    let request = parse_args(args)?;
    match fetch(&data_dir()?, &request)? {
        Outcome::AlreadyThere(dir) => println!("lama: already in {}", dir.display()),
        Outcome::Fetched(dir) => println!("lama: {}", dir.display()),
    }
    Ok(())
}

/// The flags `fetch lama` takes; each also accepts `--flag=VALUE`.
pub const FLAGS: &[&str] = &["--url", "--from", "--md5", "--sha256"];

pub fn parse_args(args: &[String]) -> Result<Request> {
    let (mut url, mut from, mut given) = (None, None, None);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .with_context(|| format!("{flag} needs a value"))
        };
        match flag {
            "--url" => url = Some(value()?),
            "--from" => from = Some(PathBuf::from(value()?)),
            "--md5" | "--sha256" if given.is_some() => bail!("give --md5 or --sha256, not both"),
            "--md5" | "--sha256" => given = Some(Checksum::parse(&flag[2..], &value()?)?),
            other => bail!(
                "unknown option `{other}` for `fetch lama`: use --url URL, --from FILE, --md5 HEX or --sha256 HEX"
            ),
        }
    }
    request(url, from, given)
}

fn request(url: Option<String>, from: Option<PathBuf>, given: Option<Checksum>) -> Result<Request> {
    let pinned = PINNED_SHA256
        .map(|hex| Checksum::parse("sha256", hex))
        .transpose()?;
    let expected = given.or(pinned);
    let ask_zenodo = url.is_none() && from.is_none() && expected.is_none();
    let source = match (url, from) {
        (Some(_), Some(_)) => bail!("--url and --from both name the archive; give one of them"),
        (_, Some(file)) => Source::File(file),
        (url, None) => Source::Url(url.unwrap_or_else(|| DOWNLOAD_URL.to_string())),
    };
    Ok(Request {
        source,
        expected,
        record_api: ask_zenodo.then(|| RECORD_API.to_string()),
    })
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
