//! `close_all` always empties the map, even when a dispatcher panics while being dropped;
//! a stale token closes nothing; `Context::close_all` from a hook closes every channel,
//! its own included, and no hook runs afterwards.

use crate::util;

use std::cell::Cell;
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::rc::Rc;

use crate::util::{listener, read_available, run_until, step, unix_channel, Log};
use sockloop::{Backend, Context, Dispatcher, EventLoop};

/// Counts drops; panics in `drop` if told to.
struct Dropper {
    panic: bool,
    drops: Rc<Cell<usize>>,
}

impl Dispatcher for Dropper {}

impl Drop for Dropper {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
        if self.panic {
            panic!("dispatcher panics while dropped");
        }
    }
}

/// True once every peer has seen end of file (its channel's fd is closed).
fn all_eof(peers: &mut [UnixStream]) -> bool {
    let mut sink = Vec::new();
    peers.iter_mut().all(|p| read_available(p, &mut sink))
}

fn close_all_despite_panicking_drop(backend: Backend) {
    let drops = Rc::new(Cell::new(0));
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let mut peers = Vec::new();
    for i in 0..6 {
        let (ch, peer) = unix_channel();
        ev.add(
            ch,
            Dropper {
                panic: i % 2 == 1,
                drops: drops.clone(),
            },
        )
        .unwrap();
        peers.push(peer);
    }
    let (l, _) = listener("127.0.0.1:0");
    ev.add(
        l,
        Dropper {
            panic: true,
            drops: drops.clone(),
        },
    )
    .unwrap();
    step(&mut ev, 2);
    assert_eq!(ev.len(), 7);

    ev.close_all();
    assert!(ev.is_empty(), "close_all left {} channels", ev.len());
    assert_eq!(ev.len(), 0);
    assert_eq!(drops.get(), 7, "every dispatcher was dropped");
    assert!(all_eof(&mut peers), "every channel's fd was closed");
    // An empty map: run returns at once.
    ev.run(None, None).unwrap();
}

fn stale_token_closes_nothing(backend: Backend) {
    let drops = Rc::new(Cell::new(0));
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let (ch, _peer) = unix_channel();
    let old = ev
        .add(
            ch,
            Dropper {
                panic: false,
                drops: drops.clone(),
            },
        )
        .unwrap();
    step(&mut ev, 1);
    assert!(ev.close(old));
    assert!(!ev.close(old), "closing twice");
    assert!(!ev.contains(old));
    // The slot is reused from the next iteration, under a new generation.
    step(&mut ev, 1);
    let (ch, mut peer) = unix_channel();
    let new = ev
        .add(
            ch,
            Dropper {
                panic: false,
                drops: drops.clone(),
            },
        )
        .unwrap();
    assert_eq!(new.index(), old.index(), "the slot was reused");
    assert_ne!(new.generation(), old.generation());
    assert!(
        !ev.close(old),
        "a stale token must not close the slot's new channel"
    );
    assert!(ev.channel(old).is_none() && ev.channel_mut(old).is_none());
    assert!(ev.contains(new));
    step(&mut ev, 1);
    assert!(
        !read_available(&mut peer, &mut Vec::new()),
        "the new channel is still open"
    );
    assert_eq!(drops.get(), 1);
    assert!(ev.close(new));
}

/// The first of them to run closes everything; every hook is recorded.
struct Closer {
    name: String,
    log: Log,
    done: Rc<Cell<bool>>,
}

impl Dispatcher for Closer {
    fn readable(&self, _: &sockloop::Channel) -> bool {
        if self.done.get() {
            self.log
                .push(format!("{}:readable after close_all", self.name));
        }
        true
    }
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push(format!("{}:read", self.name));
        if !self.done.get() {
            self.done.set(true);
            ctx.close_all();
            self.log.push(format!("closed:{}", ctx.is_closed()));
        }
        Ok(())
    }
    fn handle_write(&mut self, _: &mut Context<'_>) -> io::Result<()> {
        self.log.push(format!("{}:write", self.name));
        Ok(())
    }
    fn handle_accept(&mut self, _: &mut Context<'_>) -> io::Result<()> {
        self.log.push(format!("{}:accept", self.name));
        Ok(())
    }
    fn handle_close(&mut self, _: &mut Context<'_>) -> io::Result<()> {
        self.log.push(format!("{}:close", self.name));
        Ok(())
    }
}

fn close_all_from_hook(backend: Backend) {
    let log = Log::default();
    let done = Rc::new(Cell::new(false));
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let mut peers = Vec::new();
    // Every channel is ready in the same iteration: input waiting, and for some, output
    // queued that the socket can take.
    for i in 0..5 {
        let (ch, mut peer) = unix_channel();
        peer.write_all(b"wake up").unwrap();
        let token = ev
            .add(
                ch,
                Closer {
                    name: format!("c{i}"),
                    log: log.clone(),
                    done: done.clone(),
                },
            )
            .unwrap();
        if i % 2 == 0 {
            ev.channel_mut(token).unwrap().push(b"queued").unwrap();
        }
        peers.push(peer);
    }
    let (l, addr) = listener("127.0.0.1:0");
    ev.add(
        l,
        Closer {
            name: "listener".into(),
            log: log.clone(),
            done: done.clone(),
        },
    )
    .unwrap();
    let _client = std::net::TcpStream::connect(addr.as_socket().unwrap()).unwrap();

    ev.run(Some(util::STEP), Some(10)).unwrap();
    assert!(ev.is_empty(), "{} channels left", ev.len());
    let entries = log.entries();
    assert_eq!(entries.len(), 2, "one hook ran, then nothing: {entries:?}");
    assert!(entries[0].ends_with(":read"), "{entries:?}");
    assert_eq!(
        entries[1], "closed:true",
        "the caller's own channel is closed too"
    );
    run_until(&mut ev, "every peer saw end of file", |_| {
        all_eof(&mut peers)
    });
}

backend_tests!(
    close_all_despite_panicking_drop,
    stale_token_closes_nothing,
    close_all_from_hook
);
