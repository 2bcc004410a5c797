//! A listening channel: it is accepting and never connected, it is never watched for
//! writing whatever its `writable()` says, and its accept path adds channels.

mod util;

use std::cell::Cell;
use std::io::{self, Write};
use std::net::TcpStream;
use std::rc::Rc;

use sockloop::{Backend, Channel, Context, Dispatcher, EventLoop, Mode, SockAddr, State};
use util::{listener, read_available, run_until, step, Echo, Log};

/// A listener whose `writable()` always says yes; counts every hook that must not run.
struct Eager {
    log: Log,
    writes: Rc<Cell<usize>>,
    accepted: Rc<Cell<usize>>,
}

impl Dispatcher for Eager {
    fn writable(&self, _: &Channel) -> bool {
        true
    }
    fn handle_write(&mut self, _: &mut Context<'_>) -> io::Result<()> {
        self.writes.set(self.writes.get() + 1);
        Ok(())
    }
    fn handle_read(&mut self, _: &mut Context<'_>) -> io::Result<()> {
        self.log.push("listener:read");
        Ok(())
    }
    fn handle_connect(&mut self, _: &mut Context<'_>) -> io::Result<()> {
        self.log.push("listener:connect");
        Ok(())
    }
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        channel: Channel,
        _: SockAddr,
    ) -> io::Result<()> {
        assert!(ctx.is_accepting() && !ctx.is_connected());
        let ch = channel;
        assert_eq!(
            ch.state(),
            State::Connected,
            "an accepted socket is connected"
        );
        ctx.handle().add(
            ch,
            Echo {
                log: self.log.clone(),
                name: "conn",
            },
        )?;
        self.accepted.set(self.accepted.get() + 1);
        Ok(())
    }
}

/// The event masks every epoll instance of this process holds for `fd`, read from
/// `/proc/self/fdinfo` (Linux). Linux never reports a listening socket writable, so a
/// write-set entry cannot show up as a write event; this shows the registration itself.
fn epoll_masks(fd: i32) -> Vec<u32> {
    let mut masks = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let is_epoll = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy() == "anon_inode:[eventpoll]");
        if !is_epoll {
            continue;
        }
        let info_path = format!("/proc/self/fdinfo/{}", entry.file_name().to_string_lossy());
        let Ok(info) = std::fs::read_to_string(info_path) else {
            continue;
        };
        for line in info.lines() {
            // "tfd:        7 events:       1b data: ..."
            let mut words = line.split_whitespace();
            if words.next() != Some("tfd:") || words.next() != Some(&fd.to_string()) {
                continue;
            }
            if let (Some("events:"), Some(mask)) = (words.next(), words.next()) {
                masks.push(u32::from_str_radix(mask, 16).unwrap());
            }
        }
    }
    masks
}

/// On the epoll backend, checks the listener is registered for input only.
fn check_not_watched_for_writing(backend: Backend, ch: &Channel) {
    if backend != Backend::Epoll {
        return;
    }
    let masks = epoll_masks(ch.raw_fd().unwrap());
    assert!(!masks.is_empty(), "the listener is registered for input");
    const EPOLLOUT: u32 = 0x4;
    assert!(
        masks.iter().all(|m| m & EPOLLOUT == 0),
        "listener watched for writing: {masks:x?}"
    );
}

fn check_listener(ch: &Channel) {
    assert_eq!(ch.state(), State::Accepting);
    assert!(ch.is_accepting());
    assert!(!ch.is_connected(), "a listener is never connected");
    assert!(!ch.is_connecting());
}

fn never_in_the_write_set(backend: Backend, mode: Mode) {
    let (ch, addr) = listener("127.0.0.1:0");
    check_listener(&ch);
    let log = Log::default();
    let writes = Rc::new(Cell::new(0));
    let accepted = Rc::new(Cell::new(0));
    let mut ev = EventLoop::with_backend(backend).unwrap();
    // The hooks assert: let a failure reach the test instead of closing the channel.
    ev.set_catch_panics(false);
    ev.set_mode(mode);
    let token = ev
        .add(
            ch,
            Eager {
                log: log.clone(),
                writes: writes.clone(),
                accepted: accepted.clone(),
            },
        )
        .unwrap();

    // Idle: a listener is always "writable" to the OS, so a write-set entry would fire.
    step(&mut ev, 5);
    assert_eq!(writes.get(), 0, "handle_write ran on an idle listener");
    check_not_watched_for_writing(backend, ev.channel(token).unwrap());

    // Clients connect and talk while the loop runs: every one is accepted and echoed.
    let mut clients: Vec<TcpStream> = (0..3)
        .map(|_| {
            let c = TcpStream::connect(addr.as_socket().unwrap()).unwrap();
            c.set_nonblocking(true).unwrap();
            c
        })
        .collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.write_all(format!("ping {i}").as_bytes()).unwrap();
    }
    let mut got = vec![Vec::new(); clients.len()];
    run_until(&mut ev, "every client got its echo", |_| {
        for (c, g) in clients.iter_mut().zip(&mut got) {
            read_available(c, g);
        }
        got.iter()
            .enumerate()
            .all(|(i, g)| g == format!("ping {i}").as_bytes())
    });
    assert_eq!(accepted.get(), 3);
    assert_eq!(ev.len(), 4, "the accept path added one channel per client");
    step(&mut ev, 5);

    assert_eq!(writes.get(), 0, "handle_write ran on a listener");
    assert!(
        !log.has("listener:read") && !log.has("listener:connect"),
        "{:?}",
        log.entries()
    );
    check_listener(ev.channel(token).unwrap());
    check_not_watched_for_writing(backend, ev.channel(token).unwrap());
    ev.close_all();
}

fn scalable(backend: Backend) {
    never_in_the_write_set(backend, Mode::Scalable);
}

fn exact(backend: Backend) {
    never_in_the_write_set(backend, Mode::Exact);
}

/// A listener made from a std `TcpListener` and one from a Unix listener are accepting
/// and accept through the loop too.
fn wrapped_std_listeners(backend: Backend) {
    let log = Log::default();
    let writes = Rc::new(Cell::new(0));
    let accepted = Rc::new(Cell::new(0));
    let mut ev = EventLoop::with_backend(backend).unwrap();

    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_addr = tcp.local_addr().unwrap();
    let tcp = Channel::from_socket(tcp).unwrap();
    check_listener(&tcp);
    let path = util::unix_path(&format!("listener-{}", backend.name()));
    let unix =
        Channel::from_socket(std::os::unix::net::UnixListener::bind(&path).unwrap()).unwrap();
    check_listener(&unix);
    for ch in [tcp, unix] {
        ev.add(
            ch,
            Eager {
                log: log.clone(),
                writes: writes.clone(),
                accepted: accepted.clone(),
            },
        )
        .unwrap();
    }
    let _a = TcpStream::connect(tcp_addr).unwrap();
    let _b = std::os::unix::net::UnixStream::connect(&path).unwrap();
    run_until(&mut ev, "both connections accepted", |_| {
        accepted.get() == 2
    });
    step(&mut ev, 3);
    assert_eq!(ev.len(), 4);
    assert_eq!(writes.get(), 0);
    ev.close_all();
    let _ = std::fs::remove_file(&path);
}

backend_tests!(scalable, exact, wrapped_std_listeners);
