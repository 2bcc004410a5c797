//! Iteration order when several channels are ready for several things in one wait.
//! Select is asyncore's `poll`: every read event, then every write event, then every
//! exceptional event. Poll and epoll are asyncore's `poll2`: per channel, read, then
//! write, then priority.

use std::io::{self, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::util::{tcp_pair, Log};
use rustix::event::{PollFd, PollFlags};
use sockloop::{Backend, Channel, Context, Dispatcher, EventLoop};

/// Always wants to read and write; records each hook as `<name>:<hook>`.
struct Recorder {
    name: &'static str,
    log: Log,
}

impl Dispatcher for Recorder {
    fn writable(&self, _: &Channel) -> bool {
        true
    }
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 64];
        ctx.recv(&mut buf)?;
        self.log.push(format!("{}:read", self.name));
        Ok(())
    }
    fn handle_write(&mut self, _: &mut Context<'_>) -> io::Result<()> {
        self.log.push(format!("{}:write", self.name));
        Ok(())
    }
    fn handle_expt(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 8];
        ctx.recv_oob(&mut buf)?;
        self.log.push(format!("{}:expt", self.name));
        Ok(())
    }
    fn handle_error(&mut self, _: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        panic!("{}: unexpected error {err}", self.name);
    }
}

/// A server-side socket with normal and urgent data waiting (checked with poll(2), bounded
/// in time, so the loop sees both in its one wait), and the peer that sent them.
fn ready_pair() -> (TcpStream, TcpStream) {
    let (server, mut client) = tcp_pair();
    client.write_all(b"data").unwrap();
    socket2::SockRef::from(&client)
        .send_out_of_band(b"!")
        .unwrap();
    let want = PollFlags::IN | PollFlags::PRI | PollFlags::OUT;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut fds = [PollFd::new(&server, want)];
        rustix::event::poll(&mut fds, None).unwrap();
        if fds[0].revents().contains(want) {
            return (server, client);
        }
        assert!(
            Instant::now() < deadline,
            "data and urgent data never arrived"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Two channels, each readable, writable and with urgent data in the same wait: one
/// iteration dispatches all six events, in the backend's documented order.
fn reads_writes_then_exceptional(backend: Backend) {
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (a, _pa) = ready_pair();
    let (b, _pb) = ready_pair();
    for (name, sock) in [("a", a), ("b", b)] {
        let rec = Recorder {
            name,
            log: log.clone(),
        };
        ev.add(Channel::from_socket(sock).unwrap(), rec).unwrap();
    }
    let n = ev.poll_once(Some(Duration::from_secs(5))).unwrap();
    assert!(n >= 2, "{n} readiness reports");
    let entries = log.entries();
    assert_eq!(
        entries.len(),
        6,
        "every event in one iteration: {entries:?}"
    );
    let hook = |e: &String| e.split(':').nth(1).unwrap().to_string();
    let name = |e: &String| e.split(':').next().unwrap().to_string();
    let hooks: Vec<String> = entries.iter().map(hook).collect();
    match backend {
        Backend::Select => {
            // asyncore.poll: all reads, then all writes, then all exceptional events.
            assert_eq!(
                hooks,
                ["read", "read", "write", "write", "expt", "expt"],
                "{entries:?}"
            );
        }
        _ => {
            // asyncore.poll2: one channel's read, write and priority, then the other's.
            assert_eq!(
                hooks,
                ["read", "write", "expt", "read", "write", "expt"],
                "{entries:?}"
            );
            assert!(
                entries[..3].iter().all(|e| name(e) == name(&entries[0])),
                "{entries:?}"
            );
            assert_ne!(name(&entries[0]), name(&entries[3]), "{entries:?}");
        }
    }
}

backend_tests!(reads_writes_then_exceptional);
