//! Running an example binary as a black box: start it, read its `listening on <addr>`
//! line, collect its stderr, signal it, and kill it if the test fails first. The binaries
//! are the ones `cargo test` builds into target/<profile>/examples.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

/// The path of example `name` built by `cargo test`.
pub fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/<this test> → target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds the examples",
        path.display()
    );
    path
}

/// A running example; killed when dropped.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts example `name` with `args` and waits for its `listening on` line.
    pub fn start(name: &str, args: &[&str]) -> Server {
        Server::start_logging(name, args, "info")
    }

    /// [`start`](Server::start) with `RUST_LOG` set to `log`.
    pub fn start_logging(name: &str, args: &[&str], log: &str) -> Server {
        let (child, stderr, stderr_reader, line) = Server::spawn(name, args, log);
        let mut server = Server {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            stderr,
            stderr_reader: Some(stderr_reader),
        };
        let line = line.unwrap_or_else(|| {
            let status = server.wait_exit(Duration::from_secs(5));
            panic!("{name} exited ({status}): {}", server.stderr())
        });
        server.addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .trim()
            .parse()
            .unwrap();
        server
    }

    /// Runs example `name` expecting it to fail before listening: its status and stderr.
    pub fn fail(name: &str, args: &[&str]) -> (ExitStatus, String) {
        let (child, stderr, stderr_reader, line) = Server::spawn(name, args, "info");
        let mut server = Server {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            stderr,
            stderr_reader: None,
        };
        assert!(line.is_none(), "{name} started: {line:?}");
        let status = server.wait_exit(Duration::from_secs(5));
        stderr_reader.join().unwrap(); // to its end of file: all of it
        (status, server.stderr())
    }

    #[allow(clippy::type_complexity)]
    fn spawn(
        name: &str,
        args: &[&str],
        log: &str,
    ) -> (Child, Arc<Mutex<String>>, JoinHandle<()>, Option<String>) {
        let mut child = Command::new(example(name))
            .args(args)
            .env("RUST_LOG", log)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let collected = Arc::clone(&stderr);
        let stderr_reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                collected
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let got = stdout.read_line(&mut line).unwrap_or(0) > 0;
        (child, stderr, stderr_reader, got.then_some(line))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until its stderr contains `text`; fails the test after `within`.
    pub fn wait_stderr(&self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let log = self.stderr();
            if log.contains(text) {
                return log;
            }
            assert!(Instant::now() < deadline, "no {text:?} on stderr: {log}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends `signal`.
    pub fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(self.child.id() as i32).unwrap();
        kill_process(pid, signal).unwrap();
    }

    /// True while it runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for it to exit; fails the test after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit within {within:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
