//! The SMTP sink example (`examples/smtp_sink/session.rs`): its state machine driven by a scripted
//! transport (no socket), real clients over loopback on every backend, and Python's
//! smtplib over concurrent connections (ignored by default: needs python3).

use crate::util;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::example_proc::Server;
// The example's session (examples/smtp_sink/session.rs), loaded once, by fuzz_checks.
use crate::fuzz_checks::smtp_sink;
use crate::util::run_until;
use rustix::process::Signal;
use smtp_sink::{Config, Session, Sink};
use sockloop::chat::Scripted;
use sockloop::{Backend, EventLoop};

/// A fresh, empty directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sockloop-smtp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The messages delivered to the Maildir at `dir` (from `new/`), sorted; fails on files
/// left in `tmp/`, anything in `cur/`, or a file readable by others.
fn stored(dir: &Path) -> Vec<Vec<u8>> {
    use std::os::unix::fs::PermissionsExt;
    for sub in ["tmp", "cur"] {
        let left: Vec<_> = std::fs::read_dir(dir.join(sub)).unwrap().collect();
        assert!(left.is_empty(), "files left in {sub}/: {left:?}");
    }
    let mut files: Vec<Vec<u8>> = std::fs::read_dir(dir.join("new"))
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{} has mode {mode:o}", path.display());
            std::fs::read(&path).unwrap()
        })
        .collect();
    files.sort();
    files
}

/// The files in a plain directory, sorted.
fn flat(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    files.sort();
    files
}

fn config(dir: &Path, max_size: usize) -> Config {
    Config {
        max_size,
        ..Config::new(dir)
    }
}

fn session(dir: &Path, max_size: usize) -> Scripted<Session, Sink> {
    let sink = Sink::inline(config(dir, max_size)).unwrap();
    Scripted::with_state(Session::chat().unwrap(), sink)
}

/// Feeds `input`, returns the reply codes sent (one per final reply line).
fn codes(s: &mut Scripted<Session, Sink>, input: &[u8]) -> Vec<u16> {
    s.feed(input).unwrap();
    let out = String::from_utf8(s.take_output()).unwrap();
    out.split("\r\n")
        .filter(|l| l.len() >= 4 && &l[3..4] == " ")
        .map(|l| l[..3].parse().unwrap())
        .collect()
}

fn file(from: &str, rcpts: &str, body: &[u8]) -> Vec<u8> {
    let mut f = format!("X-Mail-From: {from}\r\nX-Rcpt-To: {rcpts}\r\n").into_bytes();
    f.extend_from_slice(body);
    f
}

#[test]
fn greeting_helo_ehlo() {
    let dir = temp_dir("greeting");
    let mut s = session(&dir, 1000);
    let greeting = String::from_utf8(s.state().greeting()).unwrap();
    assert!(
        greeting.starts_with("220 ") && greeting.ends_with("\r\n"),
        "{greeting:?}"
    );
    s.feed(b"EHLO client.example\r\n").unwrap();
    let ehlo = String::from_utf8(s.take_output()).unwrap();
    assert_eq!(
        ehlo,
        "250-localhost\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250 HELP\r\n"
    );
    assert_eq!(
        codes(&mut s, b"HELO\r\nEHLO\r\nHELO x\r\nEHLO x\r\n"),
        [501, 501, 250, 250]
    );
}

#[test]
fn bad_sequence_is_503() {
    let dir = temp_dir("sequence");
    let mut s = session(&dir, 1000);
    assert_eq!(
        codes(&mut s, b"MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n"),
        [503, 503, 503],
        "before HELO"
    );
    assert_eq!(
        codes(&mut s, b"HELO me\r\nRCPT TO:<b@x>\r\nDATA\r\n"),
        [250, 503, 503]
    );
    assert_eq!(
        codes(&mut s, b"MAIL FROM:<a@x>\r\nDATA\r\nMAIL FROM:<c@x>\r\n"),
        [250, 503, 503],
        "DATA without RCPT, nested MAIL"
    );
    assert_eq!(
        codes(&mut s, b"RSET\r\nDATA\r\n"),
        [250, 503],
        "RSET forgets MAIL"
    );
    assert!(stored(&dir).is_empty());
}

#[test]
fn bad_syntax_is_501_and_unknown_parameters_555() {
    let dir = temp_dir("syntax");
    let mut s = session(&dir, 1000);
    assert_eq!(codes(&mut s, b"HELO me\r\n"), [250]);
    for bad in [
        &b"MAIL FROM:bob@x"[..],
        b"MAIL TO:<bob@x>",
        b"MAIL FROM:<bob x>",
        b"MAIL FROM:<bob@x",
        b"MAIL FROM:<a@x>SIZE=1",
        b"MAIL FROM:<a@x> SIZE=10", // parameters need EHLO
        b"MAIL",
    ] {
        let mut line = bad.to_vec();
        line.extend_from_slice(b"\r\n");
        assert_eq!(
            codes(&mut s, &line),
            [501],
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(
        codes(&mut s, b"EHLO me\r\nMAIL FROM:<a@x> SIZE=ten\r\n"),
        [250, 501]
    );
    assert_eq!(codes(&mut s, b"MAIL FROM:<a@x> BODY=9BIT\r\n"), [501]);
    assert_eq!(codes(&mut s, b"MAIL FROM:<a@x> FOO=1\r\n"), [555]);
    assert_eq!(
        codes(&mut s, b"mail from: <a@x> size=10 body=8bitmime\r\n"),
        [250]
    );
    assert_eq!(
        codes(
            &mut s,
            b"RCPT TO:<>\r\nRCPT TO:b@x\r\nRCPT TO:<b@x> NOTIFY=NEVER\r\n"
        ),
        [501, 501, 555]
    );
    assert_eq!(
        codes(
            &mut s,
            b"RCPT TO:<b@x>\r\nDATA now\r\nRSET x\r\nVRFY\r\nQUIT now\r\n"
        ),
        [250, 501, 501, 501, 501]
    );
}

#[test]
fn unknown_commands_and_long_lines_are_500() {
    let dir = temp_dir("long");
    let mut s = session(&dir, 1000);
    assert_eq!(
        codes(&mut s, b"FOO bar\r\n\r\nEXPN list\r\n"),
        [500, 500, 500]
    );
    // 512 bytes with the CRLF is the most a command line may have.
    let ok = format!("NOOP {}\r\n", "x".repeat(512 - 7));
    assert_eq!(ok.len(), 512);
    assert_eq!(codes(&mut s, ok.as_bytes()), [250]);
    let long = format!("NOOP {}\r\n", "x".repeat(512 - 6));
    assert_eq!(codes(&mut s, long.as_bytes()), [500]);
    // The rest of the long line is skipped, the session goes on: also byte by byte.
    let long = format!("HELO {}\r\nHELO me\r\n", "y".repeat(5000));
    for b in long.bytes() {
        s.feed(&[b]).unwrap();
    }
    let out = String::from_utf8(s.take_output()).unwrap();
    assert_eq!(out, "500 Error: line too long\r\n250 localhost\r\n");
    assert!(!s.is_closed());
}

#[test]
fn vrfy_noop_help_quit() {
    let dir = temp_dir("misc");
    let mut s = session(&dir, 1000);
    assert_eq!(
        codes(&mut s, b"VRFY bob\r\nNOOP\r\nNOOP anything\r\nHELP\r\n"),
        [252, 250, 250, 214]
    );
    assert_eq!(
        codes(&mut s, b"QUIT\r\nNOOP\r\n"),
        [221],
        "input after QUIT is dropped"
    );
    assert!(s.is_closed());
}

/// A message with every dot case, fed whole and in every chunk size.
#[test]
fn dot_unstuffing_and_exact_storage_for_any_reads() {
    let dir = temp_dir("dots");
    let mut sent = b"Subject: dots\r\n\r\n..\r\n...\r\n.hidden\r\n. x\r\n".to_vec();
    sent.extend_from_slice(b"a.b\r\n\r\n\xff\xfe8-bit \x00 bytes\r\nlast.\r\n.\r\n");
    let body = b"Subject: dots\r\n\r\n.\r\n..\r\nhidden\r\n x\r\na.b\r\n\r\n\xff\xfe8-bit \x00 bytes\r\nlast.\r\n";
    let mut input =
        b"EHLO me\r\nMAIL FROM:<a@x> BODY=8BITMIME\r\nRCPT TO:<b@x>\r\nRCPT TO:<c@y>\r\nDATA\r\n"
            .to_vec();
    input.extend_from_slice(&sent);
    let mut expect = Vec::new();
    for size in 1..=input.len() {
        let mut s = session(&dir, 1000);
        for chunk in input.chunks(size) {
            s.feed(chunk).unwrap();
        }
        let out = String::from_utf8(s.take_output()).unwrap();
        assert!(
            out.contains("\r\n354 ") && out.contains("\r\n250 OK: queued as "),
            "{out}"
        );
        expect.push(file("a@x", "b@x, c@y", body));
    }
    assert_eq!(stored(&dir), expect);
}

#[test]
fn empty_message_and_pipelining() {
    let dir = temp_dir("empty");
    let mut s = session(&dir, 1000);
    let input = b"HELO me\r\nMAIL FROM:<>\r\nRCPT TO:<b@x>\r\nDATA\r\n.\r\nMAIL FROM:<p@x>\r\nRCPT TO:<q@x>\r\nDATA\r\nRSET\r\nQUIT\r\n.\r\nNOOP\r\n";
    assert_eq!(
        codes(&mut s, input),
        [250, 250, 250, 354, 250, 250, 250, 354, 250, 250]
    );
    let mut want = vec![
        file("", "b@x", b""),
        file("p@x", "q@x", b"RSET\r\nQUIT\r\n"),
    ];
    want.sort();
    assert_eq!(stored(&dir), want, "commands inside DATA are data");
}

#[test]
fn rset_and_disconnect_mid_data_write_nothing() {
    let dir = temp_dir("abort");
    let mut s = session(&dir, 1000);
    assert_eq!(
        codes(
            &mut s,
            b"HELO me\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nRSET\r\n"
        ),
        [250, 250, 250, 250]
    );
    assert_eq!(
        codes(
            &mut s,
            b"MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nSubject: x\r\n\r\nhalf"
        ),
        [250, 250, 354]
    );
    s.feed_eof();
    assert!(s.is_closed());
    assert!(stored(&dir).is_empty());
}

#[test]
fn over_size_is_552_and_memory_stays_bounded() {
    let dir = temp_dir("size");
    let max = 10_000;
    let mut s = session(&dir, max);
    assert_eq!(
        codes(
            &mut s,
            b"EHLO me\r\nMAIL FROM:<a@x> SIZE=10001\r\nMAIL FROM:<a@x> SIZE=10000\r\n"
        ),
        [250, 552, 250]
    );
    assert_eq!(codes(&mut s, b"RCPT TO:<b@x>\r\nDATA\r\n"), [250, 354]);
    // A message of exactly max bytes (after unstuffing) is accepted.
    let mut exact = b"..".to_vec();
    exact.extend_from_slice(&[b'e'; 10_000 - 3]);
    exact.extend_from_slice(b"\r\n.\r\n");
    assert_eq!(codes(&mut s, &exact), [250]);
    // One byte more is not, and is never held in full.
    assert_eq!(
        codes(&mut s, b"MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n"),
        [250, 250, 354]
    );
    let line = [b'z'; 998];
    for _ in 0..1000 {
        s.feed(&line).unwrap();
        s.feed(b"\r\n").unwrap();
        assert!(
            s.handler().buffered() <= 2 * max,
            "holding {}",
            s.handler().buffered()
        );
    }
    // A line with no CRLF at all is bounded too.
    s.feed(&vec![b'w'; 1 << 20]).unwrap();
    assert!(s.handler().buffered() <= 2 * max);
    assert!(s.output().is_empty(), "no reply before the end of the data");
    assert_eq!(codes(&mut s, b"\r\n.\r\nNOOP\r\n"), [552, 250]);
    let mut body = b".".to_vec();
    body.extend_from_slice(&[b'e'; 10_000 - 3]);
    body.extend_from_slice(b"\r\n");
    assert_eq!(stored(&dir), [file("a@x", "b@x", &body)]);
}

// ---- Over real sockets, on every backend ---------------------------------------------------

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = crate::util::blocking_client(addr);
        let mut c = Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        assert_eq!(c.reply(), 220);
        c
    }

    fn reply(&mut self) -> u16 {
        self.reply_line()[..3].parse().unwrap()
    }

    /// The last line of the next reply, without CRLF.
    fn reply_line(&mut self) -> String {
        loop {
            let mut line = String::new();
            assert!(
                self.reader.read_line(&mut line).unwrap() > 0,
                "unexpected end of file"
            );
            if line.as_bytes()[3] == b' ' {
                return line.trim_end().to_string();
            }
        }
    }

    fn cmd(&mut self, line: &str, code: u16) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        assert_eq!(self.reply(), code, "{line}");
    }

    fn send(&mut self, data: &[u8]) {
        self.writer.write_all(data).unwrap();
    }
}

fn sockets_concurrent_clients(backend: Backend) {
    let dir = temp_dir(&format!("sockets-{}", backend.name()));
    let sink = Sink::new(config(&dir, 1 << 20)).unwrap();
    let mut ev = EventLoop::with_backend_and_state(backend, sink).unwrap();
    let addr = smtp_sink::listen(&mut ev, "127.0.0.1:0".parse().unwrap()).unwrap();
    let clients: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                c.cmd("EHLO me", 250);
                for m in 0..3 {
                    c.cmd(&format!("MAIL FROM:<c{i}@x> SIZE=100"), 250);
                    c.cmd(&format!("RCPT TO:<m{m}@y>"), 250);
                    c.cmd("DATA", 354);
                    // Body in two writes, one ending in the middle of the terminator.
                    c.send(format!("Subject: {i}.{m}\r\n\r\n..dot\r\n\r").as_bytes());
                    c.send(b"\n.\r\n");
                    assert_eq!(c.reply(), 250);
                }
                if i == 3 {
                    // Walk away in the middle of a message.
                    c.cmd("MAIL FROM:<gone@x>", 250);
                    c.cmd("RCPT TO:<r@y>", 250);
                    c.cmd("DATA", 354);
                    c.send(b"Subject: never\r\n\r\npartial");
                } else {
                    c.cmd("QUIT", 221);
                }
            })
        })
        .collect();
    run_until(&mut ev, "clients done and sessions closed", |ev| {
        clients.iter().all(|c| c.is_finished()) && ev.len() == 1
    });
    for c in clients {
        c.join().unwrap();
    }
    let mut want: Vec<Vec<u8>> = (0..4)
        .flat_map(|i| {
            (0..3).map(move |m| {
                file(
                    &format!("c{i}@x"),
                    &format!("m{m}@y"),
                    format!("Subject: {i}.{m}\r\n\r\n.dot\r\n\r\n").as_bytes(),
                )
            })
        })
        .collect();
    want.sort();
    assert_eq!(stored(&dir), want);
    let _ = std::fs::remove_dir_all(&dir);
}

backend_tests!(sockets_concurrent_clients);

// ---- Python's smtplib ----------------------------------------------------------------------

fn python_smtplib(backend: Backend) {
    const MAX_SIZE: usize = 8 << 20;
    let dir = temp_dir(&format!("py-{}", backend.name()));
    let maildir = dir.join("maildir");
    let expectdir = dir.join("expect");
    std::fs::create_dir_all(&expectdir).unwrap();
    let sink = Sink::new(config(&maildir, MAX_SIZE)).unwrap();
    let mut ev = EventLoop::with_backend_and_state(backend, sink).unwrap();
    let addr = smtp_sink::listen(&mut ev, "127.0.0.1:0".parse().unwrap()).unwrap();
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/smtp_client.py");
    let mut child = Command::new(&python)
        .arg(script)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(&expectdir)
        .arg(MAX_SIZE.to_string())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    // Several MiB through a debug build: allow more than run_until's 5 seconds.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "{script} did not finish");
        ev.poll_once(Some(util::STEP)).unwrap();
    };
    assert!(
        status.success(),
        "{script} failed on {backend:?} ({status})"
    );
    run_until(&mut ev, "every session closed", |ev| ev.len() == 1);
    let expected = flat(&expectdir);
    assert_eq!(expected.len(), 12, "the script's expectations");
    let got = stored(&maildir);
    // A mail reader opens the folder: Python's own Maildir reader counts the messages.
    let count = Command::new(&python)
        .args([
            "-c",
            "import mailbox, sys; print(len(mailbox.Maildir(sys.argv[1], create=False)))",
        ])
        .arg(&maildir)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&count.stdout).trim(),
        got.len().to_string(),
        "mailbox.Maildir: {}",
        String::from_utf8_lossy(&count.stderr)
    );
    assert_eq!(got.len(), expected.len(), "number of stored messages");
    for (g, e) in got.iter().zip(&expected) {
        assert!(
            g == e,
            "stored message differs (first 200 bytes):\n{:?}\nvs\n{:?}",
            &g[..g.len().min(200)],
            &e[..e.len().min(200)]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs python3; run by .ci/run with --ignored"]
fn python_smtplib_all_backends() {
    for backend in Backend::ALL {
        python_smtplib(backend);
    }
}

// ---- The binary, black-box ----------------------------------------------------------------

/// A fresh directory for a black-box test (the sink makes it a Maildir).
fn sink_dir(name: &str) -> PathBuf {
    let dir = temp_dir(name);
    std::fs::remove_dir(&dir).unwrap();
    dir
}

fn start_sink(maildir: &Path, extra: &[&str]) -> Server {
    let mut args = vec![
        "--addr",
        "127.0.0.1:0",
        "--maildir",
        maildir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Server::start("smtp_sink", &args)
}

/// `n` pipelined messages (no reading in between), each `body`.
fn pipelined(n: usize, body: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.extend_from_slice(
            format!("MAIL FROM:<p{i}@x>\r\nRCPT TO:<q@y>\r\nDATA\r\n{body}\r\n.\r\n").as_bytes(),
        );
    }
    out
}

/// Reads the replies to [`pipelined`]: the names queued, in order.
fn queued_names(c: &mut Client, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            for code in [250, 250, 354] {
                assert_eq!(c.reply(), code, "message {i}");
            }
            let line = c.reply_line();
            line.strip_prefix("250 OK: queued as ")
                .unwrap_or_else(|| panic!("message {i}: {line}"))
                .to_string()
        })
        .collect()
}

/// Item 8: 1,500 pipelined messages get 1,500 `250`s in order, each for a file already in
/// `new/`; another session is answered meanwhile; a later NOOP comes after them.
#[test]
fn pipelined_messages_are_acknowledged_in_order_once_stored() {
    let dir = sink_dir("pipelined");
    let server = start_sink(&dir, &[]);
    let mut a = Client::connect(server.addr);
    let mut b = Client::connect(server.addr);
    a.cmd("EHLO a", 250);
    let mut burst = pipelined(1500, "Subject: p\r\n\r\nbody");
    burst.extend_from_slice(b"NOOP\r\n");
    a.send(&burst);
    b.cmd("NOOP", 250);
    let names = queued_names(&mut a, 1500);
    assert_eq!(a.reply(), 250, "the NOOP after the messages");
    for name in &names {
        assert!(
            dir.join("new").join(name).exists(),
            "{name} acknowledged, not in new/"
        );
    }
    a.cmd("QUIT", 221);
    assert_eq!(stored(&dir).len(), 1500);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A client that pipelines, sends QUIT and half-closes gets every reply, in order, then
/// end of file: the session stays open for the replies still waiting for storage.
#[test]
fn half_close_after_pipelining_gets_every_reply() {
    let dir = sink_dir("halfclose");
    let server = start_sink(&dir, &[]);
    let mut c = Client::connect(server.addr);
    c.cmd("HELO me", 250);
    let mut burst = pipelined(200, "Subject: h\r\n\r\nbody");
    burst.extend_from_slice(b"QUIT\r\n");
    c.send(&burst);
    c.writer.shutdown(std::net::Shutdown::Write).unwrap();
    let names = queued_names(&mut c, 200);
    assert_eq!(c.reply(), 221);
    let mut rest = String::new();
    assert_eq!(
        c.reader.read_line(&mut rest).unwrap(),
        0,
        "then end of file: {rest:?}"
    );
    for name in &names {
        assert!(dir.join("new").join(name).exists(), "{name}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 9: after kill -9 in the middle of deliveries, a restart cleans tmp/ and every
/// acknowledged message is in new/.
#[test]
fn kill_mid_delivery_loses_nothing_acknowledged_and_restart_cleans_tmp() {
    let dir = sink_dir("kill9");
    let server = start_sink(&dir, &[]);
    let mut c = Client::connect(server.addr);
    c.cmd("HELO me", 250);
    let body = format!("Subject: k\r\n\r\n{}", "x".repeat(20_000));
    c.send(&pipelined(300, &body));
    let acked = queued_names(&mut c, 20);
    server.signal(Signal::KILL);
    drop(server);
    // A leftover of a writer that is gone (a pid that does not exist, our host's naming):
    // removed at start, as any such file in tmp/.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let dead = (1u32 << 22) - 7;
    assert!(!Path::new(&format!("/proc/{dead}")).exists());
    let stale = format!("1.M1P{dead}Q0.{}", host.trim());
    std::fs::write(dir.join("tmp").join(&stale), b"half").unwrap();
    let foreign = "1.M1P1Q0.another-host";
    std::fs::write(dir.join("tmp").join(foreign), b"someone else's").unwrap();
    let server = start_sink(&dir, &[]);
    let left: Vec<_> = std::fs::read_dir(dir.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(left, [foreign], "tmp/ after the restart");
    for name in &acked {
        assert!(
            dir.join("new").join(name).exists(),
            "{name} acknowledged, then lost"
        );
    }
    let mut c = Client::connect(server.addr);
    c.cmd("QUIT", 221);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 7: under RLIMIT_FSIZE a message over the limit is `552`, nothing is left in tmp/,
/// the error names the file, and the server goes on.
#[test]
fn file_size_limit_is_552_and_the_server_goes_on() {
    use rustix::process::{prlimit, Pid, Resource, Rlimit};
    let dir = sink_dir("fsize");
    let mut server = start_sink(&dir, &[]);
    let limit = Rlimit {
        current: Some(64 * 1024),
        maximum: None,
    };
    let pid = Pid::from_raw(server.pid() as i32).unwrap();
    prlimit(Some(pid), Resource::Fsize, limit).unwrap();
    let mut c = Client::connect(server.addr);
    let mut other = Client::connect(server.addr);
    c.cmd("HELO me", 250);
    c.cmd("MAIL FROM:<a@x>", 250);
    c.cmd("RCPT TO:<b@y>", 250);
    c.cmd("DATA", 354);
    c.send(format!("Subject: big\r\n\r\n{}\r\n.\r\n", "y".repeat(200_000)).as_bytes());
    assert_eq!(c.reply(), 552);
    other.cmd("NOOP", 250);
    c.cmd("MAIL FROM:<a@x>", 250);
    c.cmd("RCPT TO:<b@y>", 250);
    c.cmd("DATA", 354);
    c.send(b"Subject: small\r\n\r\nfits\r\n.\r\n");
    assert_eq!(c.reply(), 250);
    c.cmd("QUIT", 221);
    assert!(server.is_running());
    assert_eq!(
        stored(&dir).len(),
        1,
        "only the small message, and nothing in tmp/"
    );
    // The error names the file.
    server.wait_stderr(
        &dir.join("tmp").display().to_string(),
        Duration::from_secs(5),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 11: a maildir that cannot be created fails at start, naming the path.
#[test]
fn unusable_maildir_fails_at_start_naming_the_path() {
    let dir = temp_dir("unusable");
    let file = dir.join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let maildir = file.join("maildir");
    let (status, stderr) = Server::fail(
        "smtp_sink",
        &[
            "--addr",
            "127.0.0.1:0",
            "--maildir",
            maildir.to_str().unwrap(),
        ],
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&maildir.display().to_string()),
        "the error names the path: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 10: a bare CR or LF anywhere in DATA refuses the message with `550` (nothing is
/// stored, so no `<LF>.<LF>` reaches a file); the session goes on. In a command: `500`.
#[test]
fn bare_cr_or_lf_is_refused() {
    let dir = temp_dir("bare");
    let mut s = session(&dir, 1000);
    assert_eq!(codes(&mut s, b"HELO me\r\n"), [250]);
    for body in [
        &b"smuggled\n.\nMAIL FROM:<evil@x>\r\n"[..],
        b"a\rb\r\n",
        b"line\nmore\r\n",
        b"\r.\r\r\n",
        b".\n\r\n",
    ] {
        let mut input = b"MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n".to_vec();
        input.extend_from_slice(body);
        input.extend_from_slice(b".\r\n");
        // Whole and byte by byte: the same verdict wherever the reads split.
        assert_eq!(codes(&mut s, &input), [250, 250, 354, 550], "{body:?}");
        for b in &input {
            s.feed(std::slice::from_ref(b)).unwrap();
        }
        let out = String::from_utf8(s.take_output()).unwrap();
        assert!(
            out.ends_with(
                "\r\n550 5.5.2 Error: bare CR or LF in message data (RFC 5321 2.3.8)\r\n"
            ),
            "{out}"
        );
    }
    assert_eq!(codes(&mut s, b"NOOP\nQUIT\r\nNOOP x\ry\r\n"), [500, 500]);
    assert!(stored(&dir).is_empty());
    assert_eq!(
        codes(
            &mut s,
            b"MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nok\r\n.\r\n"
        ),
        [250, 250, 354, 250]
    );
    assert_eq!(stored(&dir), [file("a@x", "b@x", b"ok\r\n")]);
}
