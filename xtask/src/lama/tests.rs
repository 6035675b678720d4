//! Offline tests: small archives built here, served (when needed) from a loopback HTTP server.

use super::*;
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const RELATIONS: &str =
    "{\"relation\": \"P17\", \"template\": \"[X] is located in [Y] .\", \"label\": \"country\"}\n";
const FACT: &str = "{\"sub_label\": \"Paris\", \"obj_label\": \"France\"}\n";

/// The members of a LAMA-like archive, nested the way the P-tuning code keeps it.
fn members(prefix: &str, with_relations: bool) -> Vec<(String, Vec<u8>)> {
    let mut files = vec![
        ("fact-retrieval/original/P17/train.jsonl", FACT),
        ("fact-retrieval/original/P17/dev.jsonl", FACT),
        ("fact-retrieval/original/P17/test.jsonl", FACT),
        ("29k-vocab.json", "{\"gpt2-xl\": [\"\u{120}France\"]}"),
        ("34k-vocab.json", "{\"gpt2-xl\": [\"\u{120}France\"]}"),
    ];
    if with_relations {
        files.push(("relations.jsonl", RELATIONS));
    }
    files
        .into_iter()
        .map(|(p, c)| (format!("{prefix}{p}"), c.as_bytes().to_vec()))
        .collect()
}

fn build_archive(dir: &Path, members: &[(String, Vec<u8>)]) -> PathBuf {
    let path = dir.join(FILE_NAME);
    let gz = GzEncoder::new(fs::File::create(&path).unwrap(), Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, bytes) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, bytes.as_slice())
            .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
    path
}

fn lama_archive(dir: &Path) -> PathBuf {
    build_archive(dir, &members("P-tune_LAMA/data/LAMA/", true))
}

fn md5_of(path: &Path) -> Checksum {
    Checksum::Md5(Digests::of_file(path).unwrap().md5)
}

/// Serves `routes` (path, body) on loopback for `requests` connections; 404 for other paths.
fn serve(routes: Vec<(String, Vec<u8>)>, requests: usize) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        for _ in 0..requests {
            let mut stream = accept(&listener);
            let path = read_request_path(&mut stream);
            let body = routes.iter().find(|(p, _)| *p == path).map(|(_, b)| b);
            let (status, body) = body.map_or(("404 Not Found", &b""[..]), |b| ("200 OK", b));
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(body).unwrap();
        }
    });
    (base, handle)
}

/// The next connection, or a panic after 30 s: a client that cannot connect (a loopback that is
/// down) fails the test instead of leaving it waiting forever.
fn accept(listener: &TcpListener) -> TcpStream {
    let limit = Duration::from_secs(30);
    let deadline = Instant::now() + limit;
    listener.set_nonblocking(true).unwrap();
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                stream.set_read_timeout(Some(limit)).unwrap();
                stream.set_write_timeout(Some(limit)).unwrap();
                return stream;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("no client reached the loopback test server within 30 s: {e}"),
        }
    }
}

fn read_request_path(stream: &mut std::net::TcpStream) -> String {
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
        seen.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&seen);
    text.split_whitespace().nth(1).unwrap_or("").to_string()
}

/// `fetch lama`'s flags as clap reads them from the command line.
fn parse_flags(args: &[&str]) -> Result<Flags, clap::Error> {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        flags: Flags,
    }
    let argv = std::iter::once("fetch").chain(args.iter().copied());
    <Cli as clap::Parser>::try_parse_from(argv).map(|cli| cli.flags)
}

fn request(source: Source, expected: Option<Checksum>) -> Request {
    Request {
        source,
        expected,
        record_api: None,
    }
}

fn assert_layout(lama: &Path) {
    for rel in [
        "fact-retrieval/original/P17/train.jsonl",
        "fact-retrieval/original/P17/dev.jsonl",
        "fact-retrieval/original/P17/test.jsonl",
        "relations.jsonl",
        "29k-vocab.json",
        "34k-vocab.json",
    ] {
        assert!(lama.join(rel).is_file(), "missing {rel}");
    }
}

/// A failed first fetch leaves no trace: not even the data folder it created.
fn assert_nothing_left(root: &Path) {
    assert!(!root.exists(), "{} was left behind", root.display());
}

#[test]
fn from_a_local_archive_the_layout_lands_and_a_rerun_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = lama_archive(tmp.path());
    let root = tmp.path().join("data");
    let req = request(Source::File(archive.clone()), Some(md5_of(&archive)));
    let lama = root.join("lama");
    assert_eq!(fetch(&root, &req).unwrap(), Outcome::Fetched(lama.clone()));
    assert_layout(&lama);
    assert_nothing_left_but_lama(&root);
    assert!(archive.is_file(), "the user's archive must stay");
    assert_eq!(fetch(&root, &req).unwrap(), Outcome::AlreadyThere(lama));
}

fn assert_nothing_left_but_lama(root: &Path) {
    let names: Vec<_> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["lama"]);
}

#[test]
fn a_download_from_a_mirror_lands_the_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = lama_archive(tmp.path());
    let body = fs::read(&archive).unwrap();
    let (base, server) = serve(vec![(format!("/{FILE_NAME}"), body)], 1);
    let root = tmp.path().join("data");
    let url = format!("{base}/{FILE_NAME}");
    let md5 = md5_of(&archive);
    let md5 = format!("--md5={}", md5_hex(&md5));
    let req = parse_flags(&["--url", &url, &md5]).unwrap().request();
    fetch(&root, &req).unwrap();
    server.join().unwrap();
    assert_layout(&root.join("lama"));
    assert_nothing_left_but_lama(&root);
}

fn md5_hex(c: &Checksum) -> &str {
    match c {
        Checksum::Md5(h) | Checksum::Sha256(h) => h,
    }
}

#[test]
fn the_record_api_supplies_the_checksum_when_none_is_given() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = lama_archive(tmp.path());
    let body = fs::read(&archive).unwrap();
    let record = serde_json::json!({"files": [{
        "key": FILE_NAME,
        "size": body.len(),
        "checksum": format!("md5:{}", md5_hex(&md5_of(&archive))),
    }]});
    let routes = vec![
        ("/api".to_string(), record.to_string().into_bytes()),
        (format!("/{FILE_NAME}"), body),
    ];
    let (base, server) = serve(routes, 2);
    let root = tmp.path().join("data");
    let req = Request {
        source: Source::Url(format!("{base}/{FILE_NAME}")),
        expected: None,
        record_api: Some(format!("{base}/api")),
    };
    fetch(&root, &req).unwrap();
    server.join().unwrap();
    assert_layout(&root.join("lama"));
}

#[test]
fn a_wrong_checksum_fails_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = lama_archive(tmp.path());
    let body = fs::read(&archive).unwrap();
    let (base, server) = serve(vec![(format!("/{FILE_NAME}"), body)], 1);
    let root = tmp.path().join("data");
    let wrong = Checksum::parse("md5", &"0".repeat(32)).unwrap();
    let req = request(
        Source::Url(format!("{base}/{FILE_NAME}")),
        Some(wrong.clone()),
    );
    let err = fetch(&root, &req).unwrap_err().to_string();
    server.join().unwrap();
    assert!(err.contains("expected 000"), "{err}");
    assert_nothing_left(&root);
    let err = fetch(&root, &request(Source::File(archive), Some(wrong))).unwrap_err();
    assert!(err.to_string().contains("MD5"), "{err}");
    assert_nothing_left(&root);
}

#[test]
fn an_unreachable_host_is_one_sentence_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    let req = request(Source::Url("http://127.0.0.1:9/x".into()), None);
    let err = format!("{:#}", fetch(&root, &req).unwrap_err());
    assert!(
        err.starts_with("could not reach 127.0.0.1:9 to download the LAMA data ("),
        "{err}"
    );
    assert!(err.contains("pass --from FILE, or use --data"), "{err}");
    assert!(!err.contains('\n'), "{err}");
    assert_nothing_left(&root);
    // An existing data folder keeps what it had and gains nothing.
    fs::create_dir_all(root.join("other")).unwrap();
    fetch(&root, &req).unwrap_err();
    let names: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["other"]);
}

#[test]
fn a_download_cut_short_fails_and_leaves_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/{FILE_NAME}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let mut stream = accept(&listener);
        read_request_path(&mut stream);
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n";
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&[0u8; 10]).unwrap();
    });
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    let err = fetch(&root, &request(Source::Url(url), None)).unwrap_err();
    server.join().unwrap();
    let err = err.to_string();
    assert!(err.contains("re-run to try again"), "{err}");
    assert_nothing_left(&root);
}

#[test]
fn an_http_error_names_the_status() {
    let tmp = tempfile::tempdir().unwrap();
    let (base, server) = serve(Vec::new(), 1);
    let root = tmp.path().join("data");
    let req = request(Source::Url(format!("{base}/missing")), None);
    let err = fetch(&root, &req).unwrap_err().to_string();
    server.join().unwrap();
    assert!(err.contains("HTTP 404"), "{err}");
    assert_nothing_left(&root);
}

#[test]
fn an_archive_without_relations_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = build_archive(tmp.path(), &members("data/LAMA/", false));
    let root = tmp.path().join("data");
    let err = fetch(&root, &request(Source::File(archive), None)).unwrap_err();
    let err = err.to_string();
    assert!(err.contains("relations.jsonl"), "{err}");
    assert!(err.contains("not the P-tuning LAMA pack"), "{err}");
    assert_nothing_left(&root);
}

#[test]
fn single_relations_files_become_relations_jsonl() {
    let tmp = tempfile::tempdir().unwrap();
    let mut files = members("", false);
    for id in ["P101", "P17"] {
        let line = format!("{{\"relation\": \"{id}\", \"template\": \"[X] [Y] .\"}}\n");
        files.push((format!("single_relations/{id}.jsonl"), line.into_bytes()));
    }
    let archive = build_archive(tmp.path(), &files);
    let root = tmp.path().join("data");
    fetch(&root, &request(Source::File(archive), None)).unwrap();
    let text = fs::read_to_string(root.join("lama/relations.jsonl")).unwrap();
    let ids: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["relation"].to_string())
        .collect();
    assert_eq!(ids, ["\"P17\"", "\"P101\""]);
}

#[test]
fn a_foreign_lama_folder_is_not_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = lama_archive(tmp.path());
    let root = tmp.path().join("data");
    fs::create_dir_all(root.join("lama")).unwrap();
    fs::write(root.join("lama/mine.txt"), "keep").unwrap();
    let err = fetch(&root, &request(Source::File(archive), None)).unwrap_err();
    assert!(
        err.to_string().contains("not a complete LAMA folder"),
        "{err}"
    );
    assert!(root.join("lama/mine.txt").is_file());
}

#[test]
fn flags_choose_the_source_and_checksum() {
    let args = |a: &[&str]| parse_flags(a).map(|f| f.request());
    let default = args(&[]).unwrap();
    assert_eq!(default.source, Source::Url(DOWNLOAD_URL.into()));
    assert_eq!(default.record_api.as_deref(), Some(RECORD_API));
    let from = args(&["--from", "x.tar.gz", "--sha256", &"a".repeat(64)]).unwrap();
    assert_eq!(from.source, Source::File("x.tar.gz".into()));
    assert_eq!(from.expected, Some(Checksum::Sha256("a".repeat(64))));
    assert_eq!(from.record_api, None);
    assert!(args(&["--url", "http://m/x", "--from", "y"]).is_err());
    assert!(args(&["--md5", "xyz"]).is_err());
    assert!(args(&["--url"]).is_err());
    assert!(args(&["--bogus"]).is_err());
}

#[test]
fn hosts_and_loopback_are_read_from_urls() {
    assert_eq!(http::host_of(DOWNLOAD_URL), "zenodo.org");
    assert_eq!(http::host_of("http://u:p@127.0.0.1:9/x"), "127.0.0.1:9");
}
