//! The ports of CPython's two asyncore documentation examples (examples/asyncore_*.rs),
//! run as black boxes on loopback: the echo server with real clients, the HTTP client
//! against a tiny HTTP server started here; both exit 0 on SIGINT / SIGTERM. The binaries
//! are the ones `cargo test` builds into target/<profile>/examples. Every test runs on
//! every backend (`--backend`, asyncore's `use_poll`).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::example_proc::{example, Server};
use rustix::process::{kill_process, Pid, Signal};

const LIMIT: Duration = Duration::from_secs(10);

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream
}

fn echo_server_echoes_and_keeps_half_closed_replies(backend: &str) {
    let mut server = Server::start(
        "asyncore_echo_server",
        &["--addr", "127.0.0.1:0", "--backend", backend],
    );
    let mut a = connect(&server);
    let mut b = connect(&server);
    for (client, word) in [(&mut a, b"one".as_slice()), (&mut b, b"two".as_slice())] {
        client.write_all(word).unwrap();
        let mut got = vec![0u8; word.len()];
        client.read_exact(&mut got).unwrap();
        assert_eq!(got, word);
    }
    // 1 MiB, then a half-close: the whole echo comes back, then end of file.
    let data: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let mut writer = a.try_clone().unwrap();
    let sent = data.clone();
    let send = std::thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    a.read_to_end(&mut got).unwrap();
    send.join().unwrap();
    assert!(
        got == data,
        "echo of {} bytes came back as {}",
        data.len(),
        got.len()
    );
    server.signal(Signal::INT);
    assert!(server.wait_exit(LIMIT).success(), "{}", server.stderr());
}

fn echo_server_exits_0_on_sigterm_with_a_client(backend: &str) {
    let mut server = Server::start(
        "asyncore_echo_server",
        &["--addr", "127.0.0.1:0", "--backend", backend],
    );
    let mut client = connect(&server);
    client.write_all(b"x").unwrap();
    let mut one = [0u8; 1];
    client.read_exact(&mut one).unwrap();
    server.signal(Signal::TERM);
    assert!(server.wait_exit(LIMIT).success(), "{}", server.stderr());
    assert_eq!(
        client.read(&mut one).unwrap_or(0),
        0,
        "the connection is closed"
    );
}

/// Runs the HTTP client example against `addr`; kills it if the test fails first.
struct Client(Child);

impl Client {
    fn start(port: u16, path: &str, backend: &str) -> Client {
        let child = Command::new(example("asyncore_http_client"))
            .args(["--addr", &format!("127.0.0.1:{port}"), "--path", path])
            .args(["--backend", backend])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Client(child)
    }

    /// Waits for the exit: success, stdout, stderr (read meanwhile: a full pipe would
    /// block the client).
    fn finish(mut self) -> (bool, Vec<u8>, String) {
        let mut stdout = self.0.stdout.take().unwrap();
        let mut stderr = self.0.stderr.take().unwrap();
        let out = std::thread::spawn(move || {
            let mut out = Vec::new();
            stdout.read_to_end(&mut out).map(|_| out)
        });
        let err = std::thread::spawn(move || {
            let mut err = String::new();
            stderr.read_to_string(&mut err).map(|_| err)
        });
        let deadline = Instant::now() + LIMIT;
        let status = loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the client did not exit");
            std::thread::sleep(Duration::from_millis(5));
        };
        let out = out.join().unwrap().unwrap();
        let err = err.join().unwrap().unwrap();
        (status.success(), out, err)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads an HTTP request head (up to the blank line).
fn read_head(conn: &mut TcpStream) -> Vec<u8> {
    conn.set_read_timeout(Some(LIMIT)).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            conn.read(&mut byte).unwrap(),
            1,
            "request ended early: {head:?}"
        );
        head.push(byte[0]);
    }
    head
}

fn http_client_prints_the_whole_response(backend: &str) {
    let http = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = http.local_addr().unwrap().port();
    // A response bigger than one 8192-byte read, sent in pieces.
    let body: Vec<u8> = (0..100_000).map(|i| b'a' + (i % 26) as u8).collect();
    let mut response =
        format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    response.extend_from_slice(&body);
    let expected = response.clone();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = http.accept().unwrap();
        let head = read_head(&mut conn);
        for piece in response.chunks(30_000) {
            conn.write_all(piece).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        head // dropping conn closes it: the end of the HTTP/1.0 response
    });
    let client = Client::start(port, "/index.html", backend);
    let (ok, out, err) = client.finish();
    assert_eq!(server.join().unwrap(), b"GET /index.html HTTP/1.0\r\n\r\n");
    assert!(ok, "exit status: {err}");
    assert!(
        out == expected,
        "stdout: {} bytes, expected {}",
        out.len(),
        expected.len()
    );
}

fn http_client_exits_0_on_sigint_while_waiting(backend: &str) {
    let http = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = http.local_addr().unwrap().port();
    let client = Client::start(port, "/", backend);
    // The client installs its signal handlers before it connects: once its request is
    // here, SIGINT is handled by the loop. The server never answers.
    let (mut conn, _) = http.accept().unwrap();
    read_head(&mut conn);
    kill_process(Pid::from_raw(client.0.id() as i32).unwrap(), Signal::INT).unwrap();
    let (ok, out, err) = client.finish();
    assert!(ok, "exit status: {err}");
    assert!(out.is_empty());
}

fn http_client_reports_a_refused_connect(backend: &str) {
    // A port nobody listens on: bind one, note it, close it.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (ok, out, err) = Client::start(port, "/", backend).finish();
    assert!(
        ok,
        "like the Python original, a refused connect is logged, not fatal"
    );
    assert!(out.is_empty());
    assert!(err.contains("refused"), "stderr: {err}");
}

/// One `#[test]` per scenario and backend.
macro_rules! on_every_backend {
    ($($scenario:ident),* $(,)?) => {
        mod select {
            $(#[test] fn $scenario() { super::$scenario("select") })*
        }
        mod poll {
            $(#[test] fn $scenario() { super::$scenario("poll") })*
        }
        mod epoll {
            $(#[test] fn $scenario() { super::$scenario("epoll") })*
        }
    };
}

on_every_backend!(
    echo_server_echoes_and_keeps_half_closed_replies,
    echo_server_exits_0_on_sigterm_with_a_client,
    http_client_prints_the_whole_response,
    http_client_exits_0_on_sigint_while_waiting,
    http_client_reports_a_refused_connect,
);
