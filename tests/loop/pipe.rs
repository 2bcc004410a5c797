//! The file dispatcher: pipes and regular files as channels (`Channel::from_fd`). A
//! writer channel streams 4 MiB through a pipe to a reader channel in the same loop, which
//! gets every byte in order, then end of file and one `handle_close`. A regular file is
//! always ready and is read to the end without the loop ever waiting.

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::util::{pattern, run_until, step, Log};
use sockloop::{Backend, Channel, Context, Dispatcher, EventLoop};

const TOTAL: usize = 4 << 20;
const PIECE: usize = 50_000;

/// Pushes `data` a piece at a time whenever its queue runs low, then closes when done.
struct Writer {
    data: Rc<Vec<u8>>,
    next: usize,
    log: Log,
}

impl Writer {
    fn refill(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        while self.next < self.data.len() && ctx.pending_output() < 2 * PIECE {
            let end = (self.next + PIECE).min(self.data.len());
            ctx.push(&self.data[self.next..end])?;
            self.next = end;
            if self.next == self.data.len() {
                ctx.close_when_done();
            }
        }
        Ok(())
    }
}

impl Dispatcher for Writer {
    fn readable(&self, _: &Channel) -> bool {
        false
    }
    fn writable(&self, ch: &Channel) -> bool {
        self.next < self.data.len() || ch.has_pending_output()
    }
    fn handle_write(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        ctx.flush()?;
        self.refill(ctx)
    }
    fn handle_error(&mut self, _: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        self.log.push(format!("writer:error:{err}"));
        Err(err)
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.log.push(format!("writer:close:{}", self.next));
        ctx.close();
        Ok(())
    }
}

/// Reads everything into `got`; records its close and anything after it.
struct Reader {
    got: Rc<RefCell<Vec<u8>>>,
    log: Log,
    closed: bool,
}

impl Dispatcher for Reader {
    fn writable(&self, _: &Channel) -> bool {
        false
    }
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        if self.closed {
            self.log.push("reader:read after close");
        }
        let mut buf = vec![0u8; 65536];
        let n = ctx.recv(&mut buf)?;
        self.got.borrow_mut().extend_from_slice(&buf[..n]);
        Ok(())
    }
    fn handle_error(&mut self, _: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        self.log.push(format!("reader:error:{err}"));
        Err(err)
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.closed = true;
        self.log
            .push(format!("reader:close:{}", self.got.borrow().len()));
        ctx.close();
        Ok(())
    }
}

fn pipe_between_channels(backend: Backend) {
    let (r, w) = std::io::pipe().unwrap();
    let reader = Channel::from_fd(&r).unwrap();
    let writer = Channel::from_fd(&w).unwrap();
    // The channels hold duplicates: drop ours, or the pipe never reaches end of file.
    drop((r, w));
    assert!(reader.is_connected() && writer.is_connected());

    let data = Rc::new(pattern(TOTAL));
    let got = Rc::new(RefCell::new(Vec::new()));
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let rt = ev
        .add(
            reader,
            Reader {
                got: got.clone(),
                log: log.clone(),
                closed: false,
            },
        )
        .unwrap();
    ev.add(
        writer,
        Writer {
            data: data.clone(),
            next: 0,
            log: log.clone(),
        },
    )
    .unwrap();
    run_until(&mut ev, "the reader closed", |ev| !ev.contains(rt));
    step(&mut ev, 3);

    assert_eq!(got.borrow().len(), TOTAL, "every byte arrived");
    assert!(*got.borrow() == *data, "in order");
    assert_eq!(
        log.entries(),
        [
            format!("writer:close:{TOTAL}"),
            format!("reader:close:{TOTAL}")
        ]
    );
    assert!(ev.is_empty());
}

/// The writer side of a pipe whose reader is gone: the write fails with `EPIPE`, a
/// disconnect, so the channel gets `handle_close`, not `handle_error`.
fn pipe_reader_gone(backend: Backend) {
    let (r, w) = std::io::pipe().unwrap();
    let writer = Channel::from_fd(&w).unwrap();
    drop(w);
    let data = Rc::new(pattern(1 << 20));
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let wt = ev
        .add(
            writer,
            Writer {
                data,
                next: 0,
                log: log.clone(),
            },
        )
        .unwrap();
    step(&mut ev, 2);
    drop(r);
    run_until(&mut ev, "the writer closed", |ev| !ev.contains(wt));
    let entries = log.entries();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0].starts_with("writer:close:"), "{entries:?}");
}

fn regular_file_is_read_to_the_end(backend: Backend) {
    let path = std::env::temp_dir().join(format!(
        "sockloop-test-{}-regular-{}",
        std::process::id(),
        backend.name()
    ));
    let data = pattern(1 << 20);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(&data)
        .unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let ch = Channel::from_fd(&file).unwrap();
    drop(file);

    let got = Rc::new(RefCell::new(Vec::new()));
    let log = Log::default();
    let mut ev = EventLoop::with_backend(backend).unwrap();
    let token = ev
        .add(
            ch,
            Reader {
                got: got.clone(),
                log: log.clone(),
                closed: false,
            },
        )
        .unwrap();
    // A long timeout per iteration: if any iteration waited instead of reading, this
    // would take seconds.
    let start = Instant::now();
    let mut iterations = 0;
    while ev.contains(token) && iterations < 1000 {
        ev.poll_once(Some(Duration::from_secs(10))).unwrap();
        iterations += 1;
    }
    let elapsed = start.elapsed();
    let _ = std::fs::remove_file(&path);
    assert!(
        !ev.contains(token),
        "the file channel did not finish in {iterations} iterations"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "an iteration waited: {elapsed:?}"
    );
    assert!(*got.borrow() == data);
    assert_eq!(log.entries(), [format!("reader:close:{}", data.len())]);
}

backend_tests!(
    pipe_between_channels,
    pipe_reader_gone,
    regular_file_is_read_to_the_end
);
