//! The http_file_server example, black box: the binary `cargo test` builds into
//! target/<profile>/examples, driven over loopback with raw sockets (pipelined requests,
//! a client that half-closes after its request, refused paths, counted bodies, a large
//! file byte-exact) on every backend, and with Python's `http.client` and `curl`
//! (ignored by default: they need python3 and curl; `./test.sh` runs them).

use crate::util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::example_proc::Server;
use sockloop::Backend;

/// A document root with a small file, a large one, a directory with and one without an
/// `index.html`, a symlink out of the root, and a secret beside the root.
struct Root {
    base: PathBuf,
    root: PathBuf,
    big: Vec<u8>,
}

impl Root {
    fn new(tag: &str) -> Root {
        let base = std::env::temp_dir().join(format!("sockloop-http-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        std::fs::create_dir_all(root.join("docs")).unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        std::fs::write(root.join("hello.txt"), b"hello, world\n").unwrap();
        std::fs::write(root.join("docs/index.html"), b"<h1>docs</h1>\n").unwrap();
        std::fs::write(root.join("with space.txt"), b"spaced\n").unwrap();
        let big = util::pattern(12_345_678);
        std::fs::write(root.join("big.bin"), &big).unwrap();
        std::fs::write(base.join("secret"), b"do not serve\n").unwrap();
        std::os::unix::fs::symlink(base.join("secret"), root.join("escape")).unwrap();
        Root { base, root, big }
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// The example serving `root` (killed when dropped).
fn start(root: &Root, backend: Backend) -> Server {
    let dir = root.root.to_str().unwrap();
    let args = [
        "--addr",
        "127.0.0.1:0",
        "--backend",
        backend.name(),
        "--root",
        dir,
    ];
    Server::start_logging("http_file_server", &args, "warn")
}

fn connect(server: &Server) -> TcpStream {
    let s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// One parsed response.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response from `r`; `head_only` for a response to HEAD (no body).
fn read_response(r: &mut impl BufRead, head_only: bool) -> Response {
    let mut status_line = String::new();
    r.read_line(&mut status_line).unwrap();
    assert!(
        status_line.starts_with("HTTP/1.0 "),
        "status line {status_line:?}"
    );
    let status = status_line[9..12].parse().unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let line = line.trim_end_matches("\r\n");
        if line.is_empty() {
            break;
        }
        let (n, v) = line.split_once(": ").unwrap();
        headers.push((n.to_string(), v.to_string()));
    }
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if !head_only {
        let len: usize = resp.header("Content-Length").unwrap().parse().unwrap();
        resp.body = vec![0; len];
        r.read_exact(&mut resp.body).unwrap();
    }
    resp
}

/// Expects end of file next (the server closed).
fn assert_eof(r: &mut impl Read) {
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(
        rest.is_empty(),
        "{} bytes after the last response",
        rest.len()
    );
}

/// Several requests in one write, answered in order on one connection; the last one
/// (HTTP/1.0 without keep-alive) closes it. A POST body read with a count terminator
/// does not desynchronise what follows.
fn pipelined_requests_are_answered_in_order(backend: Backend) {
    let root = Root::new(&format!("pipe-{}", backend.name()));
    let server = start(&root, backend);
    let mut s = connect(&server);
    s.write_all(
        b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n\
          HEAD /big.bin HTTP/1.0\r\nConnection: keep-alive\r\n\r\n\
          POST /hello.txt HTTP/1.1\r\nContent-Length: 11\r\n\r\nGET /x HTTP\
          GET /missing HTTP/1.1\r\n\r\n\
          GET /docs/ HTTP/1.1\r\n\r\n\
          GET /with%20space.txt HTTP/1.0\r\n\r\n\
          GET /hello.txt HTTP/1.1\r\n\r\n",
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let a = read_response(&mut r, false);
    assert_eq!((a.status, a.body.as_slice()), (200, &b"hello, world\n"[..]));
    assert_eq!(a.header("Connection"), Some("keep-alive"));
    let b = read_response(&mut r, true);
    assert_eq!(b.status, 200);
    assert_eq!(b.header("Content-Length"), Some("12345678"));
    let c = read_response(&mut r, false);
    assert_eq!(c.status, 405);
    assert_eq!(c.header("Allow"), Some("GET, HEAD"));
    assert_eq!(read_response(&mut r, false).status, 404);
    let d = read_response(&mut r, false);
    assert_eq!(
        (d.status, d.body.as_slice()),
        (200, &b"<h1>docs</h1>\n"[..])
    );
    let e = read_response(&mut r, false);
    assert_eq!((e.status, e.body.as_slice()), (200, &b"spaced\n"[..]));
    assert_eq!(e.header("Connection"), Some("close"));
    assert_eof(&mut r); // the request after the closing one is not answered
}

/// A client that sends its request and shuts down its writing side still gets the whole
/// response, a large file byte-exact, then end of file.
fn half_closed_client_gets_the_whole_file(backend: Backend) {
    let root = Root::new(&format!("half-{}", backend.name()));
    let server = start(&root, backend);
    for request in [
        &b"GET /big.bin HTTP/1.0\r\n\r\n"[..],
        b"GET /big.bin HTTP/1.1\r\n\r\n", // keep-alive, but the client is done
    ] {
        let mut s = connect(&server);
        s.write_all(request).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut r = BufReader::new(s);
        let resp = read_response(&mut r, false);
        assert_eq!(resp.status, 200);
        assert!(resp.body == root.big, "the large file arrived byte-exact");
        assert_eof(&mut r);
    }
}

/// Refused before any byte of a body: traversal, a symlink out of the root, a directory
/// without an index, bad requests, an over-long head, a body over the limit.
fn refused_requests(backend: Backend) {
    let root = Root::new(&format!("refuse-{}", backend.name()));
    let server = start(&root, backend);
    let cases: [(&[u8], u16, bool); 10] = [
        (b"GET /../secret HTTP/1.0\r\n\r\n", 403, false),
        (b"GET /%2e%2e/secret HTTP/1.0\r\n\r\n", 403, false),
        (b"GET /docs/../../secret HTTP/1.0\r\n\r\n", 403, false),
        (b"GET /escape HTTP/1.0\r\n\r\n", 404, false),
        (b"GET /empty/ HTTP/1.0\r\n\r\n", 403, false),
        (b"GET /empty HTTP/1.1\r\n\r\n", 403, true),
        (b"GET /hello.txt HTTP/2.0\r\n\r\n", 400, false),
        (b"GET /%zz HTTP/1.0\r\n\r\n", 400, false),
        (
            b"PUT /hello.txt HTTP/1.0\r\nContent-Length: 99999999\r\n\r\n",
            413,
            false,
        ),
        (
            b"GET /hello.txt HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
            false,
        ),
    ];
    for (request, status, keep_alive) in cases {
        let mut s = connect(&server);
        s.write_all(request).unwrap();
        let mut r = BufReader::new(s);
        let resp = read_response(&mut r, false);
        let what = String::from_utf8_lossy(request);
        assert_eq!(resp.status, status, "{what}");
        assert!(
            !resp.body.windows(6).any(|w| w == b"do not"),
            "{what}: the secret"
        );
        if !keep_alive {
            assert_eof(&mut r);
        }
    }
    // A head over 8 KiB: 400 and close, without waiting for its end.
    let mut s = connect(&server);
    let mut long = b"GET /hello.txt HTTP/1.0\r\nX: ".to_vec();
    long.resize(20_000, b'a');
    s.write_all(&long).unwrap();
    let mut r = BufReader::new(s);
    assert_eq!(read_response(&mut r, false).status, 400);
}

backend_tests!(
    pipelined_requests_are_answered_in_order,
    half_closed_client_gets_the_whole_file,
    refused_requests,
);

/// Python's http.client: keep-alive over one connection (GET, HEAD, 404, a POST with a
/// body answered 405), a large file byte-exact, HTTP/1.0 style close; then pipelined
/// requests from a client that half-closes after writing them, each response parsed by
/// `http.client.HTTPResponse`.
const PY_CLIENT: &str = r#"
import http.client, sys
host, port, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = http.client.HTTPConnection(host, port, timeout=10)
c.request("GET", "/hello.txt"); r = c.getresponse()
assert (r.status, r.read()) == (200, b"hello, world\n"), r.status
sock = c.sock
c.request("HEAD", "/big.bin"); r = c.getresponse()
assert r.status == 200 and r.getheader("Content-Length") == "12345678"
assert r.read() == b""
c.request("GET", "/nope"); r = c.getresponse(); r.read()
assert r.status == 404, r.status
c.request("POST", "/hello.txt", body=b"x" * 1000); r = c.getresponse(); r.read()
assert r.status == 405 and r.getheader("Allow") == "GET, HEAD", r.status
c.request("GET", "/big.bin"); r = c.getresponse()
body = r.read()
assert body == open(root + "/big.bin", "rb").read(), len(body)
assert c.sock is sock, "the connection was kept alive"
c.request("GET", "/docs/", headers={"Connection": "close"}); r = c.getresponse()
assert (r.status, r.read()) == (200, b"<h1>docs</h1>\n")
assert r.will_close

# Pipelined requests in one write from a client that then half-closes, each response
# parsed by http.client in turn from one buffered stream.
import socket
class Shared:
    """The one buffered reader every HTTPResponse reads from (and never closes)."""
    def __init__(self, f): self.f = f
    def makefile(self, mode): return self
    def __getattr__(self, name): return getattr(self.f, name)
    def close(self): pass
s = socket.create_connection((host, port), timeout=10)
s.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"
          b"HEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"
          b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
          b"GET /big.bin HTTP/1.0\r\n\r\n")
s.shutdown(socket.SHUT_WR)
shared = Shared(s.makefile("rb"))
expect = [("GET", 200, b"hello, world\n"), ("HEAD", 200, b""), ("GET", 404, b"404 Not Found\n"),
          ("GET", 200, open(root + "/big.bin", "rb").read())]
for method, status, body in expect:
    r = http.client.HTTPResponse(shared, method=method)
    r.begin()
    assert r.status == status, (method, r.status)
    assert r.read() == body, (method, status)
assert shared.f.read() == b"", "end of file after the last response"
print("ok")
"#;

#[test]
#[ignore = "needs python3; run by ./test.sh with --ignored"]
fn python_http_client_all_backends() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    for backend in Backend::ALL {
        let root = Root::new(&format!("py-{}", backend.name()));
        let server = start(&root, backend);
        let out = Command::new(&python)
            .args([
                "-c",
                PY_CLIENT,
                "127.0.0.1",
                &server.addr.port().to_string(),
            ])
            .arg(&root.root)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
        assert!(
            out.status.success() && out.stdout == b"ok\n",
            "{backend:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
#[ignore = "needs curl; run by ./test.sh with --ignored"]
fn curl_all_backends() {
    if Command::new("curl").arg("--version").output().is_err() {
        return util::skip("no curl on PATH (CI installs it)");
    }
    for backend in Backend::ALL {
        let root = Root::new(&format!("curl-{}", backend.name()));
        let server = start(&root, backend);
        let url = |p: &str| format!("http://{}{p}", server.addr);
        let out_file = root.base.join("downloaded");
        // Two transfers on one connection (curl reuses it: keep-alive), the large file
        // byte-exact, then the status codes of a HEAD and a 404.
        let out = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "20",
                "-w",
                "%{http_code} %{num_connects}\\n",
            ])
            .args(["-o", "/dev/null", &url("/hello.txt")])
            .arg("-o")
            .arg(&out_file)
            .arg(url("/big.bin"))
            .output()
            .expect("cannot run curl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{backend:?}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            text, "200 1\n200 0\n",
            "{backend:?}: the second transfer reused the connection"
        );
        assert!(
            std::fs::read(&out_file).unwrap() == root.big,
            "{backend:?}: big.bin byte-exact"
        );
        let head = Command::new("curl")
            .args(["-sS", "-I", "--max-time", "10", &url("/big.bin")])
            .output()
            .unwrap();
        let head = String::from_utf8_lossy(&head.stdout).to_string();
        assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
        assert!(head.contains("Content-Length: 12345678\r\n"), "{head}");
        let missing = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &url("/missing"),
            ])
            .output()
            .unwrap();
        assert_eq!(missing.stdout, b"404");
    }
}
