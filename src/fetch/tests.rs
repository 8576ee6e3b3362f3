//! Downloads against a real HTTP server on 127.0.0.1 that the test starts, with scripted faults.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;

fn fetch_silently(
    requests: &[ArtifactRequest],
    options: &FetchOptions,
) -> Result<Vec<FetchedArtifact>, FetchError> {
    fetch_all(requests, options, &NoDownloadProgress)
}

/// Sums what a fetch reports.
#[derive(Default)]
struct Recorded {
    started: Mutex<(usize, u64)>,
    bytes: std::sync::atomic::AtomicI64,
    files: Mutex<Vec<String>>,
}

impl DownloadProgress for Recorded {
    fn start(&self, files: usize, bytes: u64) {
        *self.started.lock().unwrap() = (files, bytes);
    }
    fn bytes(&self, count: i64) {
        self.bytes
            .fetch_add(count, std::sync::atomic::Ordering::SeqCst);
    }
    fn file_done(&self, filename: &str) {
        self.files.lock().unwrap().push(filename.to_string());
    }
}

/// What the server answers to one request for a path.
#[derive(Clone)]
enum Reply {
    Body(Vec<u8>),
    Status(u16),
    /// 429 with `Retry-After: 0`.
    TooManyRequests,
    /// Announces the whole length, sends this many bytes, then closes the connection.
    CutAfter(Vec<u8>, usize),
    /// No length; zeros until the client hangs up.
    Endless,
    /// One byte every this long, at most 200 bytes (a hostile slow server).
    Trickle(Duration),
    /// 302 to this location.
    Redirect(String),
}

struct Server {
    base: String,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    /// The `Authorization` header of each request, by path.
    authorizations: Arc<Mutex<HashMap<String, Option<String>>>>,
}

impl Server {
    /// Serve `routes`: each path answers its replies in order, the last one repeating.
    fn start(routes: Vec<(&str, Vec<Reply>)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let routes: HashMap<String, Vec<Reply>> = routes
            .into_iter()
            .map(|(path, replies)| (path.to_string(), replies))
            .collect();
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let counter = Arc::clone(&hits);
        let authorizations = Arc::new(Mutex::new(HashMap::new()));
        let seen_authorizations = Arc::clone(&authorizations);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                // Read the headers, keeping only Authorization.
                let mut authorization = None;
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|read| read > 2) {
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("authorization")
                    {
                        authorization = Some(value.trim().to_string());
                    }
                    line.clear();
                }
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("/")
                    .to_string();
                seen_authorizations
                    .lock()
                    .unwrap()
                    .insert(path.clone(), authorization);
                let count = {
                    let mut hits = counter.lock().unwrap();
                    let count = hits.entry(path.clone()).or_insert(0);
                    *count += 1;
                    *count
                };
                let reply = routes
                    .get(&path)
                    .map(|replies| replies[(count - 1).min(replies.len() - 1)].clone())
                    .unwrap_or(Reply::Status(404));
                let _ = match reply {
                    Reply::Body(body) => write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .and_then(|()| stream.write_all(&body)),
                    Reply::Status(code) => write!(
                        stream,
                        "HTTP/1.1 {code} Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    ),
                    Reply::TooManyRequests => write!(
                        stream,
                        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    ),
                    Reply::CutAfter(body, sent) => write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .and_then(|()| stream.write_all(&body[..sent])),
                    Reply::Endless => {
                        write!(stream, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").and_then(
                            |()| {
                                let chunk = vec![0u8; 64 * 1024];
                                // Bounded, so a client that never stops cannot keep the test alive.
                                for _ in 0..(64 * 1024) {
                                    stream.write_all(&chunk)?;
                                }
                                Ok(())
                            },
                        )
                    }
                    Reply::Trickle(interval) => {
                        write!(stream, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").and_then(
                            |()| {
                                for _ in 0..200 {
                                    stream.write_all(b"x")?;
                                    stream.flush()?;
                                    std::thread::sleep(interval);
                                }
                                Ok(())
                            },
                        )
                    }
                    Reply::Redirect(location) => write!(
                        stream,
                        "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    ),
                };
            }
        });
        Server {
            base,
            hits,
            authorizations,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

fn request(name: &str, content: &[u8], url: String) -> ArtifactRequest {
    ArtifactRequest {
        name: name.to_string(),
        version: "1.0".to_string(),
        filename: format!("{name}-1.0-py3-none-any.whl").parse().unwrap(),
        url: Some(url),
        sha256: crate::identity::Sha256::of_bytes(content),
        size: Some(content.len() as u64),
    }
}

fn options(cache: &Path) -> FetchOptions {
    FetchOptions {
        network: crate::http::HttpOptions {
            retry_delay: Duration::from_millis(10),
            retries: 3,
            ..crate::http::HttpOptions::default()
        },
        ..FetchOptions::new(crate::cache::Cache::new(cache))
    }
}

/// Files in the artifact directory, temporaries included.
fn stored(cache: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs_err::read_dir(cache.join("artifacts-v1/sha256"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn downloads_are_verified_stored_by_hash_and_reused() {
    let server = Server::start(vec![
        ("/a.whl", vec![Reply::Body(b"alpha".to_vec())]),
        ("/b.whl", vec![Reply::Body(b"beta".to_vec())]),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let requests = [
        request("a", b"alpha", server.url("/a.whl")),
        request("b", b"beta", server.url("/b.whl")),
    ];
    let fetched = fetch_silently(&requests, &options(cache.path())).unwrap();
    assert!(fetched.iter().all(|artifact| artifact.downloaded));
    assert_eq!(fs_err::read(&fetched[0].path).unwrap(), b"alpha");
    assert_eq!(
        fetched[1].path,
        cache
            .path()
            .join("artifacts-v1/sha256")
            .join(crate::digest::sha256_hex(b"beta"))
    );

    let again = fetch_silently(&requests, &options(cache.path())).unwrap();
    assert!(again.iter().all(|artifact| !artifact.downloaded));
    assert_eq!((server.hits("/a.whl"), server.hits("/b.whl")), (1, 1));
}

#[test]
fn wrong_bytes_are_discarded_and_never_retried() {
    let server = Server::start(vec![("/x.whl", vec![Reply::Body(b"tampere".to_vec())])]);
    let cache = tempfile::tempdir().unwrap();
    let error = fetch_silently(
        &[request("x", b"genuine", server.url("/x.whl"))],
        &options(cache.path()),
    )
    .unwrap_err();
    let message = error
        .to_string()
        .replace(&server.base, "http://127.0.0.1:PORT");
    insta::assert_snapshot!(message, @"`x` 1.0: http://127.0.0.1:PORT/x.whl has the wrong content (sha256 1b0dc93c85a2f74b5ca592a4a907d1eec7ac75e70eb263a466b32a9133234b48, the lock expects dfec22473777f0ddaea98d74045c22ae9029a8e3b75aa8fcce941aa29e5b073b); the file was discarded");
    assert_eq!(server.hits("/x.whl"), 1);
    assert!(
        stored(cache.path()).is_empty(),
        "no file and no temporary left: {:?}",
        stored(cache.path())
    );
}

#[test]
fn transient_failures_are_retried() {
    let body = b"eventually".to_vec();
    let server = Server::start(vec![
        (
            "/busy.whl",
            vec![
                Reply::Status(503),
                Reply::Status(503),
                Reply::Body(body.clone()),
            ],
        ),
        (
            "/cut.whl",
            vec![Reply::CutAfter(body.clone(), 4), Reply::Body(body.clone())],
        ),
        (
            "/limited.whl",
            vec![Reply::TooManyRequests, Reply::Body(body.clone())],
        ),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let requests = [
        request("busy", &body, server.url("/busy.whl")),
        ArtifactRequest {
            name: "cut".into(),
            ..request("busy", &body, server.url("/cut.whl"))
        },
        ArtifactRequest {
            name: "limited".into(),
            ..request("busy", &body, server.url("/limited.whl"))
        },
    ];
    // The three share a hash: fetch them one by one so each URL is really used. The progress
    // counts each file's bytes once, also when an attempt was cut short and retried.
    for request in &requests {
        let progress = Recorded::default();
        let fetched = fetch_all(
            std::slice::from_ref(request),
            &options(cache.path()),
            &progress,
        )
        .unwrap();
        assert_eq!(fs_err::read(&fetched[0].path).unwrap(), body);
        fs_err::remove_file(&fetched[0].path).unwrap();
        assert_eq!(
            progress.bytes.load(std::sync::atomic::Ordering::SeqCst),
            body.len() as i64
        );
        assert_eq!(
            progress.files.lock().unwrap().as_slice(),
            std::slice::from_ref(&request.filename)
        );
        assert_eq!(progress.started.lock().unwrap().0, 1);
    }
    assert_eq!(server.hits("/busy.whl"), 3);
    assert_eq!(server.hits("/cut.whl"), 2);
    assert_eq!(server.hits("/limited.whl"), 2);
    assert!(stored(cache.path()).is_empty());
}

#[test]
fn missing_files_and_endless_errors_fail_clearly() {
    let server = Server::start(vec![("/down.whl", vec![Reply::Status(500)])]);
    let cache = tempfile::tempdir().unwrap();
    let redact = |error: FetchError| {
        error
            .to_string()
            .replace(&server.base, "http://127.0.0.1:PORT")
    };

    let error = fetch_silently(
        &[request("gone", b"x", server.url("/gone.whl"))],
        &options(cache.path()),
    )
    .unwrap_err();
    insta::assert_snapshot!(redact(error), @"`gone` 1.0: http://127.0.0.1:PORT/gone.whl answered 404");
    assert_eq!(server.hits("/gone.whl"), 1, "a 404 is not retried");

    let error = fetch_silently(
        &[request("down", b"x", server.url("/down.whl"))],
        &options(cache.path()),
    )
    .unwrap_err();
    insta::assert_snapshot!(redact(error), @"`down` 1.0: downloading http://127.0.0.1:PORT/down.whl failed after 4 attempts: the server answered 500 Internal Server Error. Check the network and proxy, or give the file another way (--mirror, --index-url, --find-links or --bundle)");
    assert_eq!(server.hits("/down.whl"), 4);
}

#[test]
fn netrc_credentials_are_sent_to_their_host() {
    let server = Server::start(vec![(
        "/private.whl",
        vec![Reply::Body(b"private".to_vec())],
    )]);
    let cache = tempfile::tempdir().unwrap();
    let mut options = options(cache.path());
    options.network.netrc =
        crate::http::Netrc::parse("machine 127.0.0.1 login builder password s3cret\n");
    let requests = [request("private", b"private", server.url("/private.whl"))];
    fetch_silently(&requests, &options).unwrap();
    // Basic base64("builder:s3cret")
    assert_eq!(
        server.authorizations.lock().unwrap()["/private.whl"].as_deref(),
        Some("Basic YnVpbGRlcjpzM2NyZXQ=")
    );
}

#[test]
fn offline_lists_every_missing_artifact() {
    let cache = tempfile::tempdir().unwrap();
    let requests = [
        request("first", b"1", "https://files.example/first.whl".into()),
        request("second", b"2", "https://files.example/second.whl".into()),
    ];
    let error = fetch_silently(
        &requests,
        &FetchOptions {
            offline: true,
            ..options(cache.path())
        },
    )
    .unwrap_err();
    insta::assert_snapshot!(error.to_string(), @"
    2 artifacts are not in the cache and --offline forbids downloading them:
      first 1.0 (first-1.0-py3-none-any.whl)
      second 1.0 (second-1.0-py3-none-any.whl)
    ");
}

#[test]
fn mirrors_rewrite_url_prefixes() {
    let server = Server::start(vec![(
        "/pypi/packages/m.whl",
        vec![Reply::Body(b"mirrored".to_vec())],
    )]);
    let cache = tempfile::tempdir().unwrap();
    let mirrors = vec![Mirror {
        from: "https://files.pythonhosted.org/".into(),
        to: format!("{}/pypi/", server.base),
    }];
    let requests = [request(
        "m",
        b"mirrored",
        "https://files.pythonhosted.org/packages/m.whl".into(),
    )];
    fetch_silently(
        &requests,
        &FetchOptions {
            mirrors,
            ..options(cache.path())
        },
    )
    .unwrap();
    assert_eq!(server.hits("/pypi/packages/m.whl"), 1);
}

#[test]
fn plain_http_is_refused_off_loopback_and_credentials_are_redacted() {
    let cache = tempfile::tempdir().unwrap();
    let requests = [request(
        "p",
        b"p",
        "http://user:secret@mirror.internal/simple/p.whl".into(),
    )];
    let error = fetch_silently(&requests, &options(cache.path()))
        .unwrap_err()
        .to_string();
    insta::assert_snapshot!(error, @"`p` 1.0: refusing plain HTTP for http://***@mirror.internal/simple/p.whl; use HTTPS, or --allow-insecure-host mirror.internal if this network is trusted");
    assert!(!error.contains("secret"));
    assert_eq!(redacted("https://a:b@h:8080/x?y"), "https://***@h:8080/x?y");
    assert_eq!(redacted("https://h/x@y"), "https://h/x@y");
}

/// One artifact `name` with `body`, downloaded from a local server into a new cache.
fn fetched_into_a_cache(name: &str, body: &[u8]) -> (tempfile::TempDir, Vec<FetchedArtifact>) {
    let path = format!("/{name}.whl");
    let server = Server::start(vec![(path.as_str(), vec![Reply::Body(body.to_vec())])]);
    let cache = tempfile::tempdir().unwrap();
    let fetched = fetch_silently(
        &[request(name, body, server.url(&path))],
        &options(cache.path()),
    )
    .unwrap();
    (cache, fetched)
}

#[test]
fn a_file_changed_in_the_cache_is_caught_when_read() {
    let (cache, fetched) = fetched_into_a_cache("c", b"pinned");
    let store = ArtifactCache::new(&crate::cache::Cache::new(cache.path()));
    assert_eq!(store.check(&fetched[0].request).unwrap(), fetched[0].path);
    fs_err::write(&fetched[0].path, b"bit rot").unwrap();
    let error = store
        .check(&fetched[0].request)
        .unwrap_err()
        .to_string()
        .replace(&cache.path().display().to_string(), "[CACHE]");
    insta::assert_snapshot!(error, @"`c` 1.0: [CACHE]/artifacts-v1/sha256/3fab5c181bd28a09b64397df76ae2bfaf1eac182979b5fdb7a342858004f36af changed in the cache: its bytes now hash to sha256 28d39a93160599ba951ef3430709d416c9ff1e7812c55088fc0c4ece31efac0e, not to the pinned hash it is named after. It was removed, so the next run downloads it again (`akpkg cache verify` checks every file)");
    assert!(!fetched[0].path.exists(), "the changed file was removed");
}

#[test]
fn a_download_cut_short_every_time_fails_after_the_retries() {
    let body = b"0123456789".to_vec();
    let server = Server::start(vec![("/cut.whl", vec![Reply::CutAfter(body.clone(), 3)])]);
    let cache = tempfile::tempdir().unwrap();
    let error = fetch_silently(
        &[request("cut", &body, server.url("/cut.whl"))],
        &options(cache.path()),
    )
    .unwrap_err();
    let message = error
        .to_string()
        .replace(&server.base, "http://127.0.0.1:PORT");
    insta::assert_snapshot!(message, @"`cut` 1.0: downloading http://127.0.0.1:PORT/cut.whl failed after 4 attempts: the connection broke after 3 of 10 bytes (request or response body error). Check the network and proxy, or give the file another way (--mirror, --index-url, --find-links or --bundle)");
    assert_eq!(server.hits("/cut.whl"), 4);
    assert!(
        stored(cache.path()).is_empty(),
        "nothing half-written is kept"
    );
}

#[test]
fn cache_verify_removes_corrupt_entries() {
    let (cache, fetched) = fetched_into_a_cache("v", b"valid");
    let store = ArtifactCache::new(&crate::cache::Cache::new(cache.path()));
    assert_eq!(store.verify().unwrap(), (1, Vec::new()));
    fs_err::write(&fetched[0].path, b"bit rot").unwrap();
    assert_eq!(store.verify().unwrap(), (1, vec![fetched[0].path.clone()]));
    assert!(!fetched[0].path.exists());
}

#[test]
fn an_endless_body_stops_at_the_locked_size_and_is_never_retried() {
    let server = Server::start(vec![("/x.whl", vec![Reply::Endless])]);
    let cache = tempfile::tempdir().unwrap();
    let error = fetch_silently(
        &[request("x", b"ten bytes!", server.url("/x.whl"))],
        &options(cache.path()),
    )
    .unwrap_err()
    .to_string()
    .replace(&server.base, "http://127.0.0.1:PORT");
    insta::assert_snapshot!(error, @"`x` 1.0: http://127.0.0.1:PORT/x.whl sent more than 10 bytes (11 so far), the size the lock gives; the download was stopped and discarded");
    assert_eq!(server.hits("/x.whl"), 1);
    assert!(
        stored(cache.path()).is_empty(),
        "{:?}",
        stored(cache.path())
    );
}

#[test]
fn an_endless_body_of_unknown_size_stops_at_the_cap() {
    let server = Server::start(vec![("/x.whl", vec![Reply::Endless])]);
    let cache = tempfile::tempdir().unwrap();
    let mut options = options(cache.path());
    options.network.limits.download_bytes = 1024 * 1024;
    let mut size_unknown = request("x", b"whatever", server.url("/x.whl"));
    size_unknown.size = None;
    let error = fetch_silently(&[size_unknown], &options)
        .unwrap_err()
        .to_string();
    assert!(error.contains("sent more than 1048576 bytes"), "{error}");
    assert!(error.contains("--max-download-size"), "{error}");
    assert!(
        stored(cache.path()).is_empty(),
        "{:?}",
        stored(cache.path())
    );
}

#[test]
fn a_trickling_server_is_given_up_on() {
    let server = Server::start(vec![(
        "/x.whl",
        vec![Reply::Trickle(Duration::from_millis(200))],
    )]);
    let cache = tempfile::tempdir().unwrap();
    let mut options = options(cache.path());
    options.network.retries = 1;
    options.network.limits.stall_timeout = Duration::from_secs(1);
    let mut size_unknown = request("x", b"whatever", server.url("/x.whl"));
    size_unknown.size = None;
    let started = std::time::Instant::now();
    let error = fetch_silently(&[size_unknown], &options)
        .unwrap_err()
        .to_string();
    assert!(error.contains("stalled"), "{error}");
    assert!(error.contains("after 2 attempts"), "{error}");
    // Two attempts of about a second each, not the 40 s the server would take.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(
        stored(cache.path()).is_empty(),
        "{:?}",
        stored(cache.path())
    );
}

#[test]
fn the_deadline_bounds_a_download_and_its_retries() {
    let server = Server::start(vec![(
        "/x.whl",
        vec![Reply::Trickle(Duration::from_millis(100))],
    )]);
    let cache = tempfile::tempdir().unwrap();
    let mut options = options(cache.path());
    options.network.retries = 10;
    options.network.limits.download_deadline = Duration::from_secs(1);
    let mut size_unknown = request("x", b"whatever", server.url("/x.whl"));
    size_unknown.size = None;
    let error = fetch_silently(&[size_unknown], &options)
        .unwrap_err()
        .to_string();
    assert!(error.contains("took longer than 1 s"), "{error}");
    assert!(error.contains("--download-deadline"), "{error}");
}

#[test]
fn every_redirect_hop_is_checked_against_the_plain_http_rule() {
    let server = Server::start(vec![(
        "/x.whl",
        vec![Reply::Redirect(
            "http://files.example.invalid/x.whl".to_string(),
        )],
    )]);
    let cache = tempfile::tempdir().unwrap();
    let error = fetch_silently(
        &[request("x", b"genuine", server.url("/x.whl"))],
        &options(cache.path()),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("redirect to plain HTTP on files.example.invalid"),
        "{error}"
    );
    // Refused, not retried: a redirect is the server's answer, not a passing fault.
    assert_eq!(server.hits("/x.whl"), 1);
}

#[test]
fn index_pages_are_read_up_to_their_cap() {
    let page = format!("<html>{}</html>", "<a href='x'>x</a>".repeat(200_000));
    let server = Server::start(vec![("/simple/big/", vec![Reply::Body(page.into_bytes())])]);
    let cache = tempfile::tempdir().unwrap();
    let mut options = options(cache.path());
    options.network.limits.index_page_bytes = 1024 * 1024;
    let error = index::project_files(
        options.http().unwrap(),
        &server.url("/simple"),
        "big",
        &options,
    )
    .unwrap_err();
    assert!(error.contains("larger than 1048576 bytes"), "{error}");
    assert!(error.contains("--max-index-page-size"), "{error}");
    // Too large is final: not worth another try.
    assert_eq!(server.hits("/simple/big/"), 1);
}

#[test]
fn index_pages_are_retried_when_transient_and_read_once_per_run() {
    let page = "<html><a href='../../f/x-1.0-py3-none-any.whl#sha256=00'>x-1.0-py3-none-any.whl</a></html>";
    let server = Server::start(vec![
        (
            "/simple/x/",
            vec![
                Reply::Status(503),
                Reply::TooManyRequests,
                Reply::Body(page.as_bytes().to_vec()),
            ],
        ),
        ("/simple/gone/", vec![Reply::Status(404)]),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let options = options(cache.path());
    // Clones share the one service and its page cache.
    let clone = options.clone();
    let files = index::project_files(
        options.http().unwrap(),
        &server.url("/simple"),
        "X",
        &options,
    )
    .unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].filename, "x-1.0-py3-none-any.whl");
    let again =
        index::project_files(clone.http().unwrap(), &server.url("/simple"), "x", &clone).unwrap();
    assert_eq!(again, files);
    assert_eq!(
        server.hits("/simple/x/"),
        3,
        "two retries, then one read for the run"
    );
    let error = index::project_files(
        options.http().unwrap(),
        &server.url("/simple"),
        "gone",
        &options,
    )
    .unwrap_err();
    assert!(error.contains("404"), "{error}");
    assert_eq!(server.hits("/simple/gone/"), 1, "a 404 is final");
}

#[test]
fn the_download_limit_holds_for_the_whole_process() {
    let cache = tempfile::tempdir().unwrap();
    let mut options = options(cache.path());
    options.network.concurrency = 2;
    let http = options.http().unwrap();
    let running = std::sync::atomic::AtomicUsize::new(0);
    let most = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        http.run_downloads(|| {
            use rayon::prelude::*;
            (0..8).into_par_iter().for_each(|_| {
                let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            });
        })
    };
    // Two stages downloading at the same time, as the web UI and the Go server do.
    std::thread::scope(|scope| {
        scope.spawn(work);
        scope.spawn(work);
    });
    assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[test]
fn a_bundle_carries_only_artifacts_rehashed_on_the_way() {
    let server = Server::start(vec![("/x.whl", vec![Reply::Body(b"genuine".to_vec())])]);
    let cache = tempfile::tempdir().unwrap();
    let fetched = fetch_silently(
        &[request("x", b"genuine", server.url("/x.whl"))],
        &options(cache.path()),
    )
    .unwrap();
    // Poisoned in the cache after it was verified.
    fs_err::write(&fetched[0].path, b"poison!").unwrap();
    let bundle = tempfile::tempdir().unwrap();
    let error = write_bundle(&fetched, &[], bundle.path()).unwrap_err();
    assert!(
        matches!(error, FetchError::ChangedInCache { .. }),
        "{error}"
    );
    assert!(
        !bundle
            .path()
            .join("artifacts/x-1.0-py3-none-any.whl")
            .exists()
    );
    assert!(!bundle.path().join(BUNDLE_MANIFEST).exists());
    assert!(
        !fetched[0].path.exists(),
        "the poisoned file left the cache"
    );
}

#[test]
fn abandoned_downloads_are_cleaned_by_the_next_run() {
    let cache = tempfile::tempdir().unwrap();
    let artifacts = ArtifactCache::new(&crate::cache::Cache::new(cache.path()));
    fs_err::create_dir_all(artifacts.directory()).unwrap();
    let old = artifacts.directory().join(".incoming-old");
    let fresh = artifacts.directory().join(".incoming-fresh");
    fs_err::write(&old, b"half").unwrap();
    fs_err::write(&fresh, b"in progress").unwrap();
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    let removed = artifacts.remove_abandoned(&crate::limits::Limits::default());
    assert_eq!(removed, 1);
    assert!(!old.exists());
    assert!(fresh.exists(), "a live download is left alone");
}
