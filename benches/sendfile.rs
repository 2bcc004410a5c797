//! Serving a file: `FileProducer` (sendfile(2), the kernel copies page cache to the
//! socket) against `ReaderProducer` over the same file (the copy path: read(2) into the
//! output queue's buffer, then write(2)), side by side.
//!
//! Run: `cargo bench --bench sendfile` (options: `-- --size-mb 100 --transfers 5 --runs 5`).
//!
//! A server loop on its own thread serves the file `--transfers` times, one loopback TCP
//! connection each (push the producer, `close_when_done`); the client (this thread) reads
//! each to end of file and checks the length. The figure is the server thread's CPU time
//! (`/proc/thread-self/schedstat`) per MB sent, and the wall-clock throughput; medians of
//! `--runs` runs, the two paths alternating. The file is in the page cache (written just
//! before), so this measures the copy, not the disk.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sockloop::{Channel, Context, Dispatcher, EventLoop, FileProducer, ReaderProducer, SockAddr};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Via {
    Sendfile,
    Copy,
}

/// Serves `file` to each accepted connection; closes the listener after `left` accepts.
struct Server {
    file: PathBuf,
    path: Via,
    left: usize,
}

impl Dispatcher for Server {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        mut ch: Channel,
        _: SockAddr,
    ) -> io::Result<()> {
        match self.path {
            Via::Sendfile => ch.push_with_producer(FileProducer::open(&self.file)?)?,
            Via::Copy => {
                ch.push_with_producer(ReaderProducer::new(std::fs::File::open(&self.file)?))?
            }
        }
        ch.close_when_done();
        ctx.handle().add(ch, Conn)?;
        self.left -= 1;
        if self.left == 0 {
            ctx.close();
        }
        Ok(())
    }
}

struct Conn;
impl Dispatcher for Conn {
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        ctx.close();
        Ok(())
    }
}

/// This thread's CPU time so far (schedstat's first field, nanoseconds).
fn thread_cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    let ns: u64 = s.split_whitespace().next().unwrap().parse().unwrap();
    Duration::from_nanos(ns)
}

struct Sample {
    cpu_per_mb: Duration,
    mb_per_s: f64,
}

fn one_run(file: &std::path::Path, size: u64, path: Via, transfers: usize) -> Sample {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let file2 = file.to_path_buf();
    let server = std::thread::spawn(move || {
        let mut event_loop = EventLoop::new().unwrap();
        let ch = Channel::from_socket(listener).unwrap();
        event_loop
            .add(
                ch,
                Server {
                    file: file2,
                    path,
                    left: transfers,
                },
            )
            .unwrap();
        let start = thread_cpu();
        event_loop.run(Some(Duration::from_secs(10)), None).unwrap();
        thread_cpu() - start
    });
    let started = Instant::now();
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..transfers {
        let mut s = TcpStream::connect(addr).unwrap();
        let mut got = 0u64;
        loop {
            match s.read(&mut buf).unwrap() {
                0 => break,
                n => got += n as u64,
            }
        }
        assert_eq!(got, size, "{path:?}: short transfer");
    }
    let wall = started.elapsed();
    let cpu = server.join().unwrap();
    let mb = (size as f64 * transfers as f64) / 1e6;
    Sample {
        cpu_per_mb: cpu.div_f64(mb),
        mb_per_s: mb / wall.as_secs_f64(),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut size_mb = 100u64;
    let mut transfers = 5usize;
    let mut runs = 5usize;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().and_then(|v| v.parse::<u64>().ok());
        match flag.as_str() {
            "--size-mb" => size_mb = value().expect("--size-mb N"),
            "--transfers" => transfers = value().expect("--transfers N") as usize,
            "--runs" => runs = value().expect("--runs N") as usize,
            _ => {} // cargo bench passes --bench
        }
    }
    let size = size_mb * 1_000_000;
    let file = std::env::temp_dir().join(format!("sockloop-bench-sendfile-{}", std::process::id()));
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    drop(data);
    println!(
        "# cargo bench --bench sendfile -- --size-mb {size_mb} --transfers {transfers} --runs {runs}"
    );
    let mut samples: Vec<(Via, Sample)> = Vec::new();
    one_run(&file, size, Via::Copy, 1); // warm-up: page cache, code
    for _ in 0..runs {
        for path in [Via::Sendfile, Via::Copy] {
            samples.push((path, one_run(&file, size, path, transfers)));
        }
    }
    let stat = |p: Via| {
        let cpu = median(
            samples
                .iter()
                .filter(|s| s.0 == p)
                .map(|s| s.1.cpu_per_mb.as_secs_f64() * 1e6)
                .collect(),
        );
        let tput = median(
            samples
                .iter()
                .filter(|s| s.0 == p)
                .map(|s| s.1.mb_per_s)
                .collect(),
        );
        (cpu, tput)
    };
    let (sf_cpu, sf_tput) = stat(Via::Sendfile);
    let (cp_cpu, cp_tput) = stat(Via::Copy);
    println!("| path | server CPU per MB (µs, median) | throughput (MB/s, median) |");
    println!("|---|---:|---:|");
    println!("| FileProducer (sendfile) | {sf_cpu:.0} | {sf_tput:.0} |");
    println!("| ReaderProducer (read + write) | {cp_cpu:.0} | {cp_tput:.0} |");
    println!(
        "| ratio copy / sendfile | {:.2}× | {:.2}× |",
        cp_cpu / sf_cpu,
        cp_tput / sf_tput
    );
    let _ = std::fs::remove_file(&file);
}
