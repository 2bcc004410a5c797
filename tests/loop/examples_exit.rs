//! Every example exits with status 0 within a second of SIGINT or SIGTERM, on every
//! backend, with a client connected (or, for echo_client, mid-run against echo_server).
//! The example binaries are the ones `cargo test` builds into target/<profile>/examples.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};
use sockloop::Backend;

use crate::util::blocking_client;

/// How long an example may take to exit after the signal.
const GRACE: Duration = Duration::from_secs(1);

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/<this test> → target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds the examples",
        path.display()
    );
    path
}

/// A child process that is killed if the test fails before it exits.
struct Running {
    child: Child,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn start(name: &str, args: &[&str]) -> Running {
        let mut child = Command::new(example(name))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Running { child, stdout }
    }

    /// Reads the `listening on <addr>` line.
    fn listening_addr(&mut self) -> SocketAddr {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .split_whitespace()
            .next()
            .unwrap();
        addr.parse().unwrap()
    }

    /// Sends `signal` and returns how long the exit took; fails if the status is not 0.
    fn signal_and_wait(self, signal: Signal) -> Duration {
        self.signal_and_output(signal).0
    }

    /// Waits (bounded) until the child has used `ticks` clock ticks of CPU time (utime +
    /// stime in `/proc/<pid>/stat`; 100 per second) and is still running: for
    /// echo_client, which prints nothing until it ends, the sign that it has set up (its
    /// setup takes well under a tick) and is exchanging messages.
    fn wait_for_cpu(&mut self, ticks: u64, what: &str) {
        let path = format!("/proc/{}/stat", self.child.id());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "{what}: the child exited early"
            );
            let stat = std::fs::read_to_string(&path).unwrap();
            // Fields 14 and 15 (utime, stime) are 12 and 13 after the parenthesised name.
            let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
                .split_whitespace()
                .collect();
            let used: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
            if used >= ticks {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: only {used} ticks of CPU after 10 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// [`signal_and_wait`](Running::signal_and_wait), also returning what the child
    /// printed after its first line.
    fn signal_and_output(mut self, signal: Signal) -> (Duration, String) {
        let pid = Pid::from_raw(self.child.id() as i32).unwrap();
        let sent = Instant::now();
        kill_process(pid, signal).unwrap();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let took = sent.elapsed();
                let mut rest = String::new();
                let _ = self.stdout.read_to_string(&mut rest);
                assert!(status.success(), "exit status {status}; output {rest:?}");
                return (took, rest);
            }
            assert!(
                sent.elapsed() < Duration::from_secs(5),
                "no exit 5 s after {signal:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn echo_once(addr: SocketAddr) -> TcpStream {
    let mut s = blocking_client(addr);
    s.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    s
}

fn check(name: &str, took: Duration, signal: Signal) {
    assert!(
        took < GRACE,
        "{name} took {took:?} to exit after {signal:?}"
    );
}

const SIGNALS: [Signal; 2] = [Signal::INT, Signal::TERM];

fn echo_server_exits(backend: Backend) {
    for threads in ["1", "2"] {
        for signal in SIGNALS {
            let args = [
                "--addr",
                "127.0.0.1:0",
                "--backend",
                backend.name(),
                "--threads",
                threads,
            ];
            let mut server = Running::start("echo_server", &args);
            let addr = server.listening_addr();
            let _client = echo_once(addr);
            check("echo_server", server.signal_and_wait(signal), signal);
        }
    }
}

fn relay_exits(backend: Backend) {
    for signal in SIGNALS {
        let mut upstream = Running::start(
            "echo_server",
            &["--addr", "127.0.0.1:0", "--backend", backend.name()],
        );
        let up = upstream.listening_addr().to_string();
        let args = [
            "--addr",
            "127.0.0.1:0",
            "--to",
            &up,
            "--backend",
            backend.name(),
        ];
        let mut relay = Running::start("relay", &args);
        let addr = relay.listening_addr();
        let _client = echo_once(addr); // through the relay to the echo server and back
        check("relay", relay.signal_and_wait(signal), signal);
        check("echo_server", upstream.signal_and_wait(signal), signal);
    }
}

fn chat_server_exits(backend: Backend) {
    for signal in SIGNALS {
        let mut server = Running::start(
            "chat_server",
            &["--addr", "127.0.0.1:0", "--backend", backend.name()],
        );
        let addr = server.listening_addr();
        let client = blocking_client(addr);
        let mut welcome = String::new();
        BufReader::new(&client).read_line(&mut welcome).unwrap();
        assert!(welcome.starts_with("welcome"), "{welcome:?}");
        check("chat_server", server.signal_and_wait(signal), signal);
    }
}

fn smtp_sink_exits(backend: Backend) {
    let maildir = std::env::temp_dir().join(format!(
        "sockloop-exit-{}-{}",
        std::process::id(),
        backend.name()
    ));
    for signal in SIGNALS {
        let mut server = Running::start(
            "smtp_sink",
            &[
                "--addr",
                "127.0.0.1:0",
                "--backend",
                backend.name(),
                "--maildir",
                maildir.to_str().unwrap(),
            ],
        );
        let addr = server.listening_addr();
        let client = blocking_client(addr);
        let mut greeting = String::new();
        BufReader::new(&client).read_line(&mut greeting).unwrap();
        assert!(greeting.starts_with("220"), "{greeting:?}");
        check("smtp_sink", server.signal_and_wait(signal), signal);
    }
    let _ = std::fs::remove_dir_all(&maildir);
}

fn udp_echo_exits(backend: Backend) {
    for signal in SIGNALS {
        let mut server = Running::start(
            "udp_echo",
            &["--addr", "127.0.0.1:0", "--backend", backend.name()],
        );
        let addr = server.listening_addr();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client.send_to(b"ping", addr).unwrap();
        let mut buf = [0u8; 8];
        let (n, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ping");
        check("udp_echo", server.signal_and_wait(signal), signal);
    }
}

fn echo_client_exits(backend: Backend) {
    let mut server = Running::start("echo_server", &["--addr", "127.0.0.1:0"]);
    let addr = server.listening_addr().to_string();
    for signal in SIGNALS {
        // Far more messages than it can finish before the signal.
        let args = [
            "--addr",
            addr.as_str(),
            "--backend",
            backend.name(),
            "--clients",
            "4",
            "--messages",
            "100000000",
        ];
        let mut client = Running::start("echo_client", &args);
        // Running, observed: 50 ms of CPU (its signal handlers are installed before its
        // loop runs, and setting up takes well under that).
        client.wait_for_cpu(5, "echo_client running");
        let (took, output) = client.signal_and_output(signal);
        check("echo_client", took, signal);
        // It was interrupted mid-run: messages were exchanged, no client had finished.
        assert!(output.contains("interrupted"), "{output:?}");
        assert!(
            output.contains(": 0 done,"),
            "no client had finished: {output:?}"
        );
        let messages: u64 = output
            .split(", ")
            .find_map(|part| part.strip_suffix(" messages"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no message count in {output:?}"));
        assert!(messages > 0, "messages were exchanged: {output:?}");
    }
    let _ = server.child.kill();
}

fn line_echo_exits(backend: Backend) {
    for signal in SIGNALS {
        let mut server = Running::start(
            "line_echo",
            &[
                "--addr",
                "127.0.0.1:0",
                "--backend",
                backend.name(),
                "--max-line",
                "8",
            ],
        );
        let addr = server.listening_addr();
        let mut client = blocking_client(addr);
        // An LF line, a CRLF line, two lines over the limit (each refused, the connection
        // stays), a last line.
        client
            .write_all(b"one\r\ntwo\n0123456789abc\nlong line again\r\nok\n")
            .unwrap();
        let mut reader = BufReader::new(&client);
        let mut got = Vec::new();
        for _ in 0..5 {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            got.push(line);
        }
        let err = "ERR line too long\r\n";
        assert_eq!(got, ["one\r\n", "two\n", err, err, "ok\n"]);
        check("line_echo", server.signal_and_wait(signal), signal);
    }
}

fn http_file_server_exits(backend: Backend) {
    let root = std::env::temp_dir().join(format!(
        "sockloop-exit-http-{}-{}",
        std::process::id(),
        backend.name()
    ));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("f.txt"), b"file\n").unwrap();
    for signal in SIGNALS {
        let mut server = Running::start(
            "http_file_server",
            &[
                "--addr",
                "127.0.0.1:0",
                "--backend",
                backend.name(),
                "--root",
                root.to_str().unwrap(),
            ],
        );
        let addr = server.listening_addr();
        // A kept-alive connection stays open while the signal arrives.
        let mut client = blocking_client(addr);
        client
            .write_all(b"GET /f.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap();
        let mut reader = BufReader::new(&client);
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert_eq!(status, "HTTP/1.0 200 OK\r\n");
        check("http_file_server", server.signal_and_wait(signal), signal);
    }
    let _ = std::fs::remove_dir_all(&root);
}

backend_tests!(
    echo_server_exits,
    relay_exits,
    chat_server_exits,
    smtp_sink_exits,
    udp_echo_exits,
    echo_client_exits,
    line_echo_exits,
    http_file_server_exits,
);
