//! `LoopGroup`: N loops on N threads sharing one port with SO_REUSEPORT, every backend.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use sockloop::{Backend, Channel, Context, Dispatcher, LoopGroup, LoopHandle, SockAddr};

/// Accepts into `Echo`, counting accepts per loop.
struct Server {
    accepted: Arc<AtomicUsize>,
}

impl Dispatcher for Server {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        channel: Channel,
        _: SockAddr,
    ) -> io::Result<()> {
        self.accepted.fetch_add(1, Ordering::SeqCst);
        ctx.handle().add(channel, Echo)?;
        Ok(())
    }
}

struct Echo;

impl<S: 'static> Dispatcher<S> for Echo {
    fn handle_read(&mut self, ctx: &mut Context<'_, S>) -> io::Result<()> {
        let mut buf = [0u8; 4096];
        let n = ctx.recv(&mut buf)?;
        ctx.push(&buf[..n])
    }
}

fn echo(addr: std::net::SocketAddr, msg: &[u8]) -> TcpStream {
    let mut s = crate::util::blocking_client(addr);
    s.write_all(msg).unwrap();
    let mut got = vec![0u8; msg.len()];
    s.read_exact(&mut got).unwrap();
    assert_eq!(got, msg);
    s
}

/// N loops serve: the factory runs once per index `0..N`, `len()` is N, every loop
/// accepts some of many connections (the kernel spreads them over the N listeners), each
/// loop runs on its own thread, and `stop` + `join` close every listener. Run with two
/// values of N (1 and 5), so a group that starts one loop per core instead of N fails
/// on any machine.
fn serves_on_n_loops_and_stops(backend: Backend, threads: usize) {
    let counts: Arc<Vec<Arc<AtomicUsize>>> =
        Arc::new((0..threads).map(|_| Arc::default()).collect());
    let built: Arc<Mutex<Vec<usize>>> = Arc::default();
    let (c, b) = (Arc::clone(&counts), Arc::clone(&built));
    let group = LoopGroup::listen(
        "127.0.0.1:0".parse().unwrap(),
        threads,
        backend,
        move |i, _| {
            b.lock().unwrap().push(i);
            Ok(Server {
                accepted: Arc::clone(c.get(i).expect("factory index below N")),
            })
        },
    )
    .unwrap();
    assert_eq!(group.len(), threads);
    let mut indices = built.lock().unwrap().clone();
    indices.sort_unstable();
    assert_eq!(
        indices,
        (0..threads).collect::<Vec<_>>(),
        "one factory call per loop"
    );
    let addr = group.local_addr();
    assert_ne!(addr.port(), 0);
    // Many connections from distinct source ports: every one is served, by some loop.
    const CLIENTS: usize = 80;
    let clients: Vec<TcpStream> = (0..CLIENTS as u8).map(|i| echo(addr, &[i; 100])).collect();
    let per_loop: Vec<usize> = counts.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    assert_eq!(per_loop.iter().sum::<usize>(), CLIENTS, "{per_loop:?}");
    // SO_REUSEPORT hashes the 4-tuple: 80 connections all missing one of 5 listeners has
    // a probability below 1e-7.
    assert!(
        per_loop.iter().all(|&n| n > 0),
        "a loop accepted nothing: {per_loop:?}"
    );
    // Each loop runs on its own thread.
    let (tx, rx) = mpsc::channel();
    let mut remotes = 0;
    for remote in group.remotes() {
        let tx = tx.clone();
        remote
            .call(move |_: &mut LoopHandle| tx.send(std::thread::current().id()).unwrap())
            .unwrap();
        remotes += 1;
    }
    assert_eq!(remotes, threads);
    let ids: HashSet<_> = (0..threads)
        .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
        .collect();
    assert_eq!(ids.len(), threads);
    assert!(!ids.contains(&std::thread::current().id()));
    group.stop();
    group.join().unwrap();
    drop(clients);
    // Every listener is closed with its loop.
    assert!(TcpStream::connect(addr).is_err());
}

fn one_loop_serves_and_stops(backend: Backend) {
    serves_on_n_loops_and_stops(backend, 1);
}

fn five_loops_serve_and_stop(backend: Backend) {
    serves_on_n_loops_and_stops(backend, 5);
}

fn zero_threads_is_an_error(backend: Backend) {
    let err = LoopGroup::listen("127.0.0.1:0".parse().unwrap(), 0, backend, |_, _| {
        Ok(Server {
            accepted: Arc::default(),
        })
    })
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

fn factory_error_is_returned(backend: Backend) {
    let built = Arc::new(AtomicUsize::new(0));
    let b = Arc::clone(&built);
    let err = LoopGroup::listen("127.0.0.1:0".parse().unwrap(), 3, backend, move |i, _| {
        b.fetch_add(1, Ordering::SeqCst);
        if i == 1 {
            Err(io::Error::new(io::ErrorKind::PermissionDenied, "no"))
        } else {
            Ok(Server {
                accepted: Arc::default(),
            })
        }
    })
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
    // Loop 0 was started and is stopped and joined again; loop 2 never started.
    assert_eq!(built.load(Ordering::SeqCst), 2);
}

fn dropping_the_group_stops_it(backend: Backend) {
    let group = LoopGroup::listen("127.0.0.1:0".parse().unwrap(), 2, backend, |_, _| {
        Ok(Server {
            accepted: Arc::default(),
        })
    })
    .unwrap();
    let addr = group.local_addr();
    drop(echo(addr, b"x"));
    let remotes: Vec<_> = group.remotes().cloned().collect();
    drop(group);
    for remote in remotes {
        assert_eq!(
            remote.wake().unwrap_err().kind(),
            io::ErrorKind::NotConnected
        );
    }
}

/// Per-loop state: each loop's state is made on its own thread from its index (an `Rc`,
/// so it could not have been sent there), its hooks count accepts in it, and a `Remote`
/// call reads it back.
struct Counting;

impl Dispatcher<(usize, std::rc::Rc<std::cell::Cell<usize>>)> for Counting {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_, (usize, std::rc::Rc<std::cell::Cell<usize>>)>,
        channel: Channel,
        _: SockAddr,
    ) -> io::Result<()> {
        let count = &ctx.state().1;
        count.set(count.get() + 1);
        ctx.handle().add(channel, Echo)?;
        Ok(())
    }
}

fn per_loop_state(backend: Backend) {
    let group = LoopGroup::listen_with_state(
        "127.0.0.1:0".parse().unwrap(),
        3,
        backend,
        |i| (i, std::rc::Rc::new(std::cell::Cell::new(0))),
        |_, _| Ok(Counting),
    )
    .unwrap();
    let addr = group.local_addr();
    let clients: Vec<_> = (0..30)
        .map(|i| echo(addr, format!("{i}").as_bytes()))
        .collect();
    let (tx, rx) = mpsc::channel();
    for remote in group.remotes() {
        let tx = tx.clone();
        remote
            .call(move |lp| {
                let (index, count) = lp.state();
                tx.send((*index, count.get())).unwrap();
            })
            .unwrap();
    }
    let mut seen: Vec<(usize, usize)> = (0..3)
        .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(seen.iter().map(|s| s.1).sum::<usize>(), 30, "{seen:?}");
    drop(clients);
    group.stop();
    group.join().unwrap();
}

backend_tests!(
    per_loop_state,
    one_loop_serves_and_stops,
    five_loops_serve_and_stop,
    zero_threads_is_an_error,
    factory_error_is_returned,
    dropping_the_group_stops_it,
);
