//! The cost of one loop iteration with N idle channels (and with T pending timers), on
//! each backend and mode.
//!
//! Run: `cargo bench --bench iteration` (add `-- --quick` for a short run).
//!
//! One active pair of channels (a Unix socketpair) plays ping-pong inside the loop, so every
//! iteration does real work: one read and one write on each side. Around it sit N idle UDP
//! sockets that want to read and never get anything. The figure is the median over several
//! runs of the wall time per iteration; the interesting column is the ratio to N = 0: how
//! much an idle channel costs an active one.

use std::io;
use std::time::{Duration, Instant};

use sockloop::{Backend, Channel, Context, Dispatcher, EventLoop, Mode};

struct Idle;
impl Dispatcher for Idle {}

/// Bounces one byte back and forth.
struct Ping;
impl Dispatcher for Ping {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 64];
        let n = ctx.recv(&mut buf)?;
        ctx.push(&buf[..n])
    }
}

fn raise_fd_limit(want: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    let hard = lim.maximum.unwrap_or(u64::MAX);
    lim.current = Some(want.min(hard));
    let _ = setrlimit(Resource::Nofile, lim);
}

fn per_iteration(
    backend: Backend,
    mode: Mode,
    idle: usize,
    timers: usize,
    iterations: usize,
) -> io::Result<Duration> {
    let mut ev = EventLoop::with_backend(backend)?;
    ev.set_mode(mode);
    for i in 0..timers {
        // Pending, never due during the run.
        ev.call_later(Duration::from_secs(3600 + i as u64), |_, _| {});
    }
    for _ in 0..idle {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
        ev.add(Channel::from_socket(udp)?, Idle)?;
    }
    let (a, b) = Channel::pair()?;
    let a = ev.add(a, Ping)?;
    ev.add(b, Ping)?;
    ev.channel_mut(a).map(|ch| ch.push(b"x")).transpose()?;
    // Warm up: registrations happen in the first iterations.
    for _ in 0..10 {
        ev.poll_once(Some(Duration::from_secs(1)))?;
    }
    let start = Instant::now();
    for _ in 0..iterations {
        ev.poll_once(Some(Duration::from_secs(1)))?;
    }
    let elapsed = start.elapsed();
    ev.close_all();
    Ok(elapsed / iterations as u32)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> io::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let (reps, iterations) = if quick { (3, 2_000) } else { (5, 20_000) };
    let sizes = [0usize, 100, 1_000, 10_000];
    raise_fd_limit(12_000);
    println!("# cost of one iteration (1 active ping-pong pair + N idle channels)");
    println!(
        "# command: cargo bench --bench iteration{}",
        if quick { " -- --quick" } else { "" }
    );
    println!("# median of {reps} runs of {iterations}/(1 + N/100) iterations each (at least 100)");
    println!(
        "{:<8} {:<9} {:>7} {:>12} {:>10}",
        "backend", "mode", "idle", "ns/iter", "vs N=0"
    );
    for backend in Backend::ALL {
        for mode in [Mode::Scalable, Mode::Exact] {
            let mut base = None;
            for &n in &sizes {
                let runs: io::Result<Vec<_>> = (0..reps)
                    .map(|_| per_iteration(backend, mode, n, 0, iterations))
                    .collect();
                let m = median(runs?);
                let base = *base.get_or_insert(m);
                println!(
                    "{:<8} {:<9} {:>7} {:>12} {:>9.2}x",
                    backend.name(),
                    format!("{mode:?}"),
                    n,
                    m.as_nanos(),
                    m.as_secs_f64() / base.as_secs_f64()
                );
            }
        }
    }
    println!();
    println!("# the same with 0 idle channels and T pending timers (none due)");
    println!(
        "{:<8} {:<9} {:>7} {:>12} {:>10}",
        "backend", "mode", "timers", "ns/iter", "vs T=0"
    );
    for backend in Backend::ALL {
        let mut base = None;
        for t in [0usize, 10_000] {
            let runs: io::Result<Vec<_>> = (0..reps)
                .map(|_| per_iteration(backend, Mode::Scalable, 0, t, iterations))
                .collect();
            let m = median(runs?);
            let base = *base.get_or_insert(m);
            println!(
                "{:<8} {:<9} {:>7} {:>12} {:>9.2}x",
                backend.name(),
                "Scalable",
                t,
                m.as_nanos(),
                m.as_secs_f64() / base.as_secs_f64()
            );
        }
    }
    Ok(())
}
