//! A duration too large for the clock is "never", not a panic: idle and connect timeouts,
//! one-shot and periodic timers, and the wait of `run` / `poll_once`.

use crate::example_proc;
use crate::util;

use std::io::Write;
use std::time::Duration;

use crate::util::{run_until, Echo, Log};
use sockloop::{Backend, Channel, EventLoop, LoopHandle};

fn huge_idle_and_connect_timeouts_never_fire(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let log = Log::default();
    let (mut ch, mut peer) = util::unix_channel();
    ch.set_idle_timeout(Some(Duration::MAX));
    ch.set_connect_timeout(Some(Duration::MAX));
    let token = ev
        .add(
            ch,
            Echo {
                log: log.clone(),
                name: "conn",
            },
        )
        .unwrap();
    peer.write_all(b"ping").unwrap();
    let mut got = Vec::new();
    run_until(&mut ev, "the echo", |_| {
        util::read_available(&mut peer, &mut got);
        got == b"ping"
    });
    util::step(&mut ev, 3);
    assert!(ev.contains(token), "the channel is still open");

    // A connect with a huge connect timeout completes normally.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client =
        Channel::create_socket(sockloop::Domain::IPV4, sockloop::Type::STREAM).unwrap();
    client.set_connect_timeout(Some(Duration::MAX));
    client.set_idle_timeout(Some(Duration::MAX));
    client.connect(listener.local_addr().unwrap()).unwrap();
    let client = ev
        .add(
            client,
            Echo {
                log: log.clone(),
                name: "client",
            },
        )
        .unwrap();
    run_until(&mut ev, "connected", |ev| {
        ev.channel(client).is_some_and(|c| c.is_connected())
    });
    assert!(!log.has("client:close"), "{:?}", log.entries());
}

fn huge_timers_never_fire_and_can_be_cancelled(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let once = ev.call_later(Duration::MAX, |_: &mut LoopHandle, _| panic!("fired"));
    let every = ev.call_every(Duration::MAX, |_: &mut LoopHandle, _| panic!("fired"));
    ev.call_at(
        std::time::Instant::now() + Duration::from_secs(3600 * 24 * 365 * 50),
        |_: &mut LoopHandle, _| panic!("fired"),
    );
    ev.set_catch_panics(false);
    ev.poll_once(Some(Duration::from_millis(1))).unwrap();
    assert_eq!(ev.timers(), 3);
    assert!(ev.cancel(once));
    assert!(ev.cancel(every));
}

fn huge_wait_returns_when_something_is_ready(backend: Backend) {
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let log = Log::default();
    let (ch, mut peer) = util::unix_channel();
    ev.add(
        ch,
        Echo {
            log: log.clone(),
            name: "conn",
        },
    )
    .unwrap();
    peer.write_all(b"x").unwrap();
    ev.run(Some(Duration::MAX), Some(1)).unwrap();
    assert!(log.has("conn:read"));
    peer.write_all(b"y").unwrap();
    assert_eq!(ev.poll_once(Some(Duration::MAX)).unwrap(), 1);
}

backend_tests!(
    huge_idle_and_connect_timeouts_never_fire,
    huge_timers_never_fire_and_can_be_cancelled,
    huge_wait_returns_when_something_is_ready,
);

/// The examples' `--idle-timeout` flag with the largest value it parses: the server
/// starts, answers, and is still serving (it used to exit with status 101 at the first
/// connection). Black box, on every backend.
#[test]
fn examples_take_a_huge_idle_timeout() {
    use std::io::{BufRead, BufReader};
    let maildir = std::env::temp_dir().join(format!("sockloop-huge-{}", std::process::id()));
    let huge = u64::MAX.to_string();
    for backend in Backend::ALL {
        let cases: [(&str, Vec<&str>, &[u8], &str); 2] = [
            ("chat_server", vec![], b"/nick alice\r\n", ""),
            (
                "smtp_sink",
                vec!["--maildir", maildir.to_str().unwrap()],
                b"NOOP\r\n",
                "220",
            ),
        ];
        for (name, extra, request, greeting) in cases {
            let mut args = vec!["--addr", "127.0.0.1:0", "--backend", backend.name()];
            args.extend(["--idle-timeout", &huge]);
            args.extend(extra);
            let mut server = example_proc::Server::start(name, &args);
            let addr = server.addr;
            let mut conn = crate::util::blocking_client(addr);
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            if !greeting.is_empty() {
                let mut first = String::new();
                reader.read_line(&mut first).unwrap();
                assert!(first.starts_with(greeting), "{name}: {first:?}");
            }
            conn.write_all(request).unwrap();
            let mut reply = String::new();
            reader.read_line(&mut reply).unwrap();
            assert!(!reply.is_empty(), "{name} on {backend}: no reply");
            assert!(server.is_running(), "{name} on {backend} exited");
        }
    }
    let _ = std::fs::remove_dir_all(&maildir);
}
