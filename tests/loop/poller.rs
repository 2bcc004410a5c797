//! The public `Poller`: registration bookkeeping, what each backend reports, and the order
//! select reports in. Every test runs on every backend.

use std::io::{ErrorKind, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::Duration;

use sockloop::{Backend, Interest, PollEvent, Poller};

const WAIT: Option<Duration> = Some(Duration::from_secs(5));

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

fn registration_errors_name_the_mistake(backend: Backend) {
    let (a, b) = pair();
    let mut poller = Poller::new(backend).unwrap();
    poller.register(a.as_fd(), 1, Interest::READABLE).unwrap();
    let again = poller
        .register(b.as_fd(), 1, Interest::READABLE)
        .unwrap_err();
    assert_eq!(again.kind(), ErrorKind::AlreadyExists);
    let other_fd = poller.modify(b.as_fd(), 1, Interest::WRITABLE).unwrap_err();
    assert_eq!(other_fd.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        poller.interest(1),
        Some(Interest::READABLE),
        "unchanged after an error"
    );
    let missing = poller.deregister(a.as_fd(), 2).unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    poller.deregister(a.as_fd(), 1).unwrap();
    assert!(poller.is_empty());
}

fn readable_and_writable_by_key(backend: Backend) {
    let (mut a, b) = pair();
    let mut poller = Poller::new(backend).unwrap();
    poller.register(b.as_fd(), 4, Interest::READABLE).unwrap();
    poller.register(a.as_fd(), 9, Interest::WRITABLE).unwrap();
    a.write_all(b"x").unwrap();
    let mut events = Vec::new();
    let mut seen = (false, false);
    for _ in 0..50 {
        poller.wait(&mut events, WAIT).unwrap();
        for e in &events {
            match e.key() {
                4 => seen.0 |= e.is_readable() && !e.is_writable(),
                9 => seen.1 |= e.is_writable() && !e.is_readable(),
                k => panic!("event for unknown key {k}: {e:?}"),
            }
        }
        if seen == (true, true) {
            return;
        }
    }
    panic!("missing events: {seen:?}");
}

fn empty_interest_reports_nothing(backend: Backend) {
    let (a, b) = pair();
    drop(a); // b now has end of file and, on poll and epoll, a hang-up pending
    let mut poller = Poller::new(backend).unwrap();
    poller.register(b.as_fd(), 0, Interest::NONE).unwrap();
    let mut events = Vec::new();
    poller
        .wait(&mut events, Some(Duration::from_millis(20)))
        .unwrap();
    assert!(events.is_empty(), "{events:?}");
    poller.modify(b.as_fd(), 0, Interest::READABLE).unwrap();
    poller.wait(&mut events, WAIT).unwrap();
    assert!(
        events.iter().any(|e| e.key() == 0 && e.is_readable()),
        "{events:?}"
    );
}

fn select_reports_reads_then_writes(backend: Backend) {
    let (mut a, b) = pair();
    let mut poller = Poller::new(backend).unwrap();
    poller
        .register(b.as_fd(), 0, Interest::READABLE | Interest::WRITABLE)
        .unwrap();
    a.write_all(b"x").unwrap();
    let mut events: Vec<PollEvent> = Vec::new();
    for _ in 0..50 {
        poller.wait(&mut events, WAIT).unwrap();
        if events.iter().any(|e| e.is_readable()) {
            break;
        }
    }
    if backend == Backend::Select {
        // One event per phase, reads first (asyncore.poll's order).
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(events[0].is_readable() && !events[0].is_writable());
        assert!(events[1].is_writable() && !events[1].is_readable());
    } else {
        // One combined event per key (asyncore.poll2's readwrite flags).
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(events[0].is_readable() && events[0].is_writable());
    }
}

backend_tests!(
    registration_errors_name_the_mistake,
    readable_and_writable_by_key,
    empty_interest_reports_nothing,
    select_reports_reads_then_writes,
);
