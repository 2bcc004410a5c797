//! Descriptors at or above `FD_SETSIZE` (1024): a connected socket duplicated to fd 1100 or
//! higher echoes through the loop on every backend, select included (its sets are sized
//! to the highest descriptor, so there is no 1024 cap on Linux).

mod util;

use std::io::Write;
use std::os::fd::AsFd;

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use sockloop::{Backend, Channel, EventLoop};
use util::{read_available, run_until, tcp_pair, Echo, Log};

const HIGH_FD: i32 = 1100;
const WANT: u64 = 2048;

/// Raises the soft descriptor limit to at least [`WANT`]; false if the hard limit is lower.
fn raise_fd_limit() -> bool {
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_none_or(|c| c >= WANT) {
        return true;
    }
    if limit.maximum.is_some_and(|m| m < WANT) {
        return false;
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(WANT),
            maximum: limit.maximum,
        },
    )
    .is_ok()
}

fn high_fd_echoes(backend: Backend) {
    if !raise_fd_limit() {
        util::skip(&format!("the hard RLIMIT_NOFILE is below {WANT}"));
        return;
    }
    let (server, mut client) = tcp_pair();
    let high = rustix::io::fcntl_dupfd_cloexec(server.as_fd(), HIGH_FD).unwrap();
    drop(server);
    let ch = Channel::from_socket(socket2::Socket::from(high)).unwrap();
    let fd = ch.raw_fd().unwrap();
    assert!(fd >= HIGH_FD, "fd {fd}");
    assert!(ch.is_connected());

    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let token = ev
        .add(
            ch,
            Echo {
                log: log.clone(),
                name: "high",
            },
        )
        .unwrap();
    client.set_nonblocking(true).unwrap();
    for round in 0..3 {
        let msg = format!("round {round} through fd {fd}");
        client.write_all(msg.as_bytes()).unwrap();
        let mut got = Vec::new();
        run_until(&mut ev, "the echo", |_| {
            read_available(&mut client, &mut got);
            got.len() >= msg.len()
        });
        assert_eq!(got, msg.as_bytes());
    }
    drop(client);
    run_until(&mut ev, "the channel closed at end of file", |ev| {
        !ev.contains(token)
    });
    assert_eq!(log.count("high:close"), 1);
    assert!(
        !log.entries().iter().any(|e| e.contains("error")),
        "{:?}",
        log.entries()
    );
}

backend_tests!(high_fd_echoes);
