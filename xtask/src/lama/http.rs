//! The two HTTP calls: Zenodo's record API (for the published MD5 and size) and the streamed
//! download itself, hashed and counted on a progress bar as it is written to disk.

use super::FILE_NAME;
use super::checksum::{Checksum, Digests, Hasher};
use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// What the record API says about the archive.
#[derive(Debug, Default)]
pub struct RecordFile {
    pub checksum: Option<Checksum>,
    pub size: Option<u64>,
}

/// Asks the record API for the archive's checksum and size.
pub fn record_file(api: &str) -> Result<RecordFile> {
    let response = get(api)?;
    let json: serde_json::Value = response
        .into_json()
        .map_err(|e| anyhow!("{api} did not answer with JSON ({e})"))?;
    let files = json["files"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let entry = files
        .iter()
        .find(|f| f["key"] == FILE_NAME || f["filename"] == FILE_NAME)
        .with_context(|| format!("{api} does not list {FILE_NAME}"))?;
    let checksum = entry["checksum"].as_str().map(Checksum::parse_prefixed);
    Ok(RecordFile {
        checksum: checksum.transpose()?,
        size: entry["size"].as_u64().or(entry["filesize"].as_u64()),
    })
}

/// Streams `url` into `dest`, never holding more than a buffer in memory.
pub fn download(url: &str, dest: &Path, size_hint: Option<u64>) -> Result<Digests> {
    let response = get(url)?;
    let length = response
        .header("Content-Length")
        .and_then(|v| v.parse::<u64>().ok())
        .or(size_hint);
    let bar = progress_bar(length);
    let file =
        fs::File::create(dest).with_context(|| format!("could not create {}", dest.display()))?;
    let mut tee = Tee {
        file,
        hasher: Hasher::default(),
        written: 0,
        write_failed: false,
    };
    if let Err(e) = std::io::copy(&mut bar.wrap_read(response.into_reader()), &mut tee) {
        if tee.write_failed {
            return Err(e).with_context(|| format!("could not write {}", dest.display()));
        }
        return Err(broke_off(url, tee.written, &e));
    }
    bar.finish_and_clear();
    let total = tee.written;
    tee.file
        .sync_all()
        .with_context(|| format!("could not write {}", dest.display()))?;
    if let Some(expected) = length.filter(|&l| l != total) {
        bail!(
            "the download from {url} ended after {total} of {expected} bytes; re-run to try again"
        );
    }
    Ok(tee.hasher.finish())
}

/// The download's one pass: each buffer goes to the file and the digests.
struct Tee {
    file: fs::File,
    hasher: Hasher,
    written: u64,
    /// Tells a full disk from a broken connection when the copy fails.
    write_failed: bool,
}

impl Write for Tee {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.file
            .write_all(bytes)
            .inspect_err(|_| self.write_failed = true)?;
        self.hasher.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

fn get(url: &str) -> Result<ureq::Response> {
    let host = host_of(url);
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(20))
        .timeout_read(Duration::from_secs(60))
        // ureq has no NO_PROXY support, so a loopback mirror never goes through a proxy.
        .try_proxy_from_env(!is_loopback(host))
        .build();
    match agent.get(url).call() {
        Ok(response) => Ok(response),
        Err(ureq::Error::Status(code, _)) => Err(anyhow!(
            "{host} answered HTTP {code} for {url}; download {FILE_NAME} yourself and pass --from FILE, or use --data with your own copy"
        )),
        Err(ureq::Error::Transport(t)) => Err(anyhow!(
            "could not reach {host} to download the LAMA data ({}); download {FILE_NAME} yourself and pass --from FILE, or use --data with your own copy",
            transport_detail(&t)
        )),
    }
}

/// The transport failure in a few words: its kind and the innermost cause.
fn transport_detail(t: &ureq::Transport) -> String {
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(t);
    while let Some(next) = cause.and_then(|c| c.source()) {
        cause = Some(next);
    }
    match (cause, t.message()) {
        (Some(c), _) => format!("{}: {c}", t.kind()),
        (None, Some(m)) => format!("{}: {m}", t.kind()),
        (None, None) => t.kind().to_string(),
    }
}

fn broke_off(url: &str, total: u64, e: &std::io::Error) -> anyhow::Error {
    anyhow!(
        "the download from {} broke off after {total} bytes ({e}); re-run to try again, or download {FILE_NAME} yourself and pass --from FILE",
        host_of(url)
    )
}

fn progress_bar(length: Option<u64>) -> ProgressBar {
    let Some(length) = length else {
        return ProgressBar::new_spinner().with_message("downloading");
    };
    let style =
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(length).with_style(style)
}

/// `host[:port]` of a URL, for messages and the proxy decision.
pub fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit('@').next().unwrap_or(authority)
}

fn is_loopback(host: &str) -> bool {
    let name = host
        .strip_prefix('[')
        .and_then(|h| h.split_once(']'))
        .map_or_else(|| host.split(':').next().unwrap_or(host), |(h, _)| h);
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
