//! The channel's output queue: asyncore's `dispatcher_with_send` and asynchat's producer FIFO.

use std::collections::VecDeque;
use std::io;
use std::os::fd::BorrowedFd;

use crate::producer::Producer;

/// Default size of one send and of coalesced small pushes (asynchat's `ac_out_buffer_size`).
pub(crate) const DEFAULT_OUT_BUFFER: usize = 65536;

enum Item {
    Data {
        buf: Vec<u8>,
        sent: usize,
    },
    Producer(Staged),
    /// A producer failed where its error could not be returned (inside
    /// `close_when_done`): reported by the next flush, from the write event's hook.
    Failed(io::Error),
    /// Shut down the writing side once everything before it is sent.
    Shutdown,
}

/// A producer and the buffer it fills: allocated once per producer, on its first fill,
/// and refilled only once all of it was sent.
struct Staged {
    producer: Box<dyn Producer>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

fn would_block_from_producer() -> io::Error {
    io::Error::other(
        "a producer returned WouldBlock: producers cannot wait for readiness (use a \
         channel of its own for a non-blocking source)",
    )
}

/// What a flush ended with.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) enum Flushed {
    /// Everything queued was sent.
    Drained,
    /// The OS took no more; the rest waits for the next write event.
    #[default]
    Blocked,
    /// Everything before a `close_when_done` marker was sent: close now.
    CloseReached,
    /// Everything before a `shutdown_when_done` marker was sent: shut down writing now
    /// (the marker is consumed; a close mark may follow).
    ShutdownReached,
}

/// Output waiting to be sent, in order: byte strings, producers and an optional close mark.
pub(crate) struct OutputQueue {
    items: VecDeque<Item>,
    bytes: usize,
    /// No more data is accepted: a close or shutdown mark is queued (or was reached).
    sealed: bool,
    /// A close mark is queued.
    closing: bool,
    chunk: usize,
    /// The low-water mark: `Dispatcher::handle_drained` runs when the queue falls to it.
    low: usize,
    /// Bytes handed to the OS so far, producers' direct sends included.
    written: u64,
    /// A message socket (datagram, seqpacket): each push is sent whole, in one send,
    /// never merged with the next.
    keep_boundaries: bool,
}

impl Default for OutputQueue {
    fn default() -> OutputQueue {
        OutputQueue {
            items: VecDeque::new(),
            bytes: 0,
            sealed: false,
            closing: false,
            chunk: DEFAULT_OUT_BUFFER,
            low: 0,
            written: 0,
            keep_boundaries: false,
        }
    }
}

fn closing_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "output pushed after close_when_done or shutdown_when_done: the channel accepts no \
         more output",
    )
}

impl OutputQueue {
    /// Bytes queued in byte strings (producers' future output is not counted).
    pub(crate) fn len(&self) -> usize {
        self.bytes
    }

    /// True if nothing at all is queued (no bytes, no producer, no close mark).
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty() && !self.closing
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing
    }

    pub(crate) fn low_water(&self) -> usize {
        self.low
    }

    pub(crate) fn set_low_water(&mut self, low: usize) {
        self.low = low;
    }

    /// At or below the low-water mark; with a mark of 0, nothing at all queued (no
    /// producer either).
    pub(crate) fn is_drained(&self) -> bool {
        self.bytes <= self.low && (self.low > 0 || self.is_empty())
    }

    pub(crate) fn chunk(&self) -> usize {
        self.chunk
    }

    pub(crate) fn set_keep_boundaries(&mut self, keep: bool) {
        self.keep_boundaries = keep;
    }

    pub(crate) fn keeps_boundaries(&self) -> bool {
        self.keep_boundaries
    }

    pub(crate) fn set_chunk(&mut self, chunk: usize) -> io::Result<()> {
        if chunk == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "output buffer size must be at least 1 byte",
            ));
        }
        self.chunk = chunk;
        Ok(())
    }

    /// Appends bytes; small pushes are coalesced so they leave in one send. Empty pushes
    /// queue nothing (never a zero-length send).
    pub(crate) fn push(&mut self, data: &[u8]) -> io::Result<()> {
        if self.sealed {
            return Err(closing_error());
        }
        if data.is_empty() {
            return Ok(());
        }
        self.bytes += data.len();
        if let Some(Item::Data { buf, .. }) = self.items.back_mut() {
            if buf.len() + data.len() <= self.chunk && !self.keep_boundaries {
                buf.extend_from_slice(data);
                return Ok(());
            }
        }
        self.items.push_back(Item::Data {
            buf: data.to_vec(),
            sent: 0,
        });
        Ok(())
    }

    /// Appends an owned buffer without copying it.
    pub(crate) fn push_vec(&mut self, data: Vec<u8>) -> io::Result<()> {
        if data.is_empty() || (data.len() < self.chunk / 4 && !self.keep_boundaries) {
            return self.push(&data);
        }
        if self.sealed {
            return Err(closing_error());
        }
        self.bytes += data.len();
        self.items.push_back(Item::Data { buf: data, sent: 0 });
        Ok(())
    }

    pub(crate) fn push_producer(&mut self, p: Box<dyn Producer>) -> io::Result<()> {
        if self.sealed {
            return Err(closing_error());
        }
        self.items.push_back(Item::Producer(Staged {
            producer: p,
            buf: Vec::new(),
            start: 0,
            end: 0,
        }));
        Ok(())
    }

    /// Keeps an error that could not be returned (a flush inside `close_when_done`) at
    /// the front of the queue: the next flush returns it, so it reaches `handle_error`
    /// through the write event's hook instead of being lost.
    pub(crate) fn defer_error(&mut self, err: io::Error) {
        self.items.push_front(Item::Failed(err));
    }

    /// Bytes handed to the OS so far (producers' direct sends included): progress, for
    /// the idle timeout.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    pub(crate) fn close_when_done(&mut self) {
        // The close mark (asynchat's `None` in the FIFO) is `closing`, not an item: it is
        // always last (the queue is sealed), and a close with nothing queued allocates
        // nothing.
        self.closing = true;
        self.sealed = true;
    }

    /// Queues a shutdown of the writing side; later data is refused, a close is not.
    pub(crate) fn shutdown_when_done(&mut self) {
        if !self.sealed {
            self.sealed = true;
            self.items.push_back(Item::Shutdown);
        }
    }

    /// True once a close or shutdown mark was queued: data pushes are refused.
    pub(crate) fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// Drops everything queued, the close mark included; returns the bytes dropped.
    pub(crate) fn discard(&mut self) -> usize {
        let dropped = self.bytes;
        self.items.clear();
        self.bytes = 0;
        self.closing = false;
        self.sealed = false;
        dropped
    }

    /// Writes queued output with `write` until it is all sent or `write` would block.
    /// `write` returns `Err(WouldBlock)` (or `Ok(0)`) when the OS takes nothing more.
    #[cfg(test)]
    pub(crate) fn flush(
        &mut self,
        write: impl FnMut(&[u8]) -> io::Result<usize>,
    ) -> io::Result<Flushed> {
        self.flush_to(write, None)
    }

    /// [`flush`](OutputQueue::flush), offering producers the stream socket `direct` for
    /// [`Producer::send_direct`] (`sendfile(2)`). A producer's error drops that producer
    /// and is returned; what was queued before it was written already.
    pub(crate) fn flush_to(
        &mut self,
        mut write: impl FnMut(&[u8]) -> io::Result<usize>,
        direct: Option<BorrowedFd<'_>>,
    ) -> io::Result<Flushed> {
        loop {
            let chunk = self.chunk;
            match self.items.front_mut() {
                None if self.closing => return Ok(Flushed::CloseReached),
                None => return Ok(Flushed::Drained),
                Some(Item::Shutdown) => {
                    self.items.pop_front();
                    return Ok(Flushed::ShutdownReached);
                }
                Some(Item::Failed(_)) => {
                    if let Some(Item::Failed(e)) = self.items.pop_front() {
                        return Err(e);
                    }
                }
                Some(Item::Producer(s)) => {
                    if s.start == s.end {
                        match produce(s, chunk, direct) {
                            Ok(Produced::Filled(n)) => self.bytes += n,
                            Ok(Produced::Sent(n)) => {
                                self.written += n as u64;
                                continue;
                            }
                            Ok(Produced::Finished) => {
                                self.items.pop_front();
                                continue;
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                return Ok(Flushed::Blocked)
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(e) => {
                                self.items.pop_front();
                                return Err(e);
                            }
                        }
                    }
                    match write(&s.buf[s.start..s.end]) {
                        Ok(0) => return Ok(Flushed::Blocked),
                        Ok(n) => {
                            s.start += n;
                            self.bytes -= n;
                            self.written += n as u64;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            return Ok(Flushed::Blocked)
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Some(Item::Data { buf, sent }) => {
                    let end = if self.keep_boundaries {
                        buf.len()
                    } else {
                        buf.len().min(*sent + chunk)
                    };
                    match write(&buf[*sent..end]) {
                        Ok(0) => return Ok(Flushed::Blocked),
                        Ok(n) => {
                            *sent += n;
                            self.bytes -= n;
                            self.written += n as u64;
                            if *sent == buf.len() {
                                self.items.pop_front();
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            return Ok(Flushed::Blocked)
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
}

/// What a producer did when asked for more.
enum Produced {
    /// Filled its buffer with this many bytes.
    Filled(usize),
    /// Sent this many bytes straight to the socket.
    Sent(usize),
    Finished,
}

/// Asks the producer of `s` (whose buffer is all sent) for more: a direct send to the
/// socket if it can, else a fill of its buffer (allocated on first use, at most `chunk`
/// bytes, no more than the producer says it has). `WouldBlock` means the socket is full
/// (from a direct send only: a producer's own `WouldBlock` is an error).
fn produce(s: &mut Staged, chunk: usize, direct: Option<BorrowedFd<'_>>) -> io::Result<Produced> {
    if let Some(fd) = direct {
        match s.producer.send_direct(fd, chunk) {
            None => {}
            Some(Ok(0)) => return Ok(Produced::Finished),
            Some(Ok(n)) => return Ok(Produced::Sent(n)),
            Some(Err(e)) => return Err(e),
        }
    }
    if s.buf.is_empty() {
        let hint = s.producer.size_hint().unwrap_or(u64::MAX);
        let len = usize::try_from(hint).unwrap_or(usize::MAX).clamp(1, chunk);
        s.buf = vec![0; len];
    }
    match s.producer.fill(&mut s.buf) {
        Ok(0) => Ok(Produced::Finished),
        Ok(n) if n > s.buf.len() => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "a producer reported {n} bytes filled into a {}-byte buffer",
                s.buf.len()
            ),
        )),
        Ok(n) => {
            s.start = 0;
            s.end = n;
            Ok(Produced::Filled(n))
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(would_block_from_producer()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::SimpleProducer;

    /// A writer that takes at most `cap` bytes per call and `budget` bytes in all.
    fn writer<'a>(
        out: &'a mut Vec<u8>,
        cap: usize,
        budget: &'a mut usize,
        calls: &'a mut usize,
    ) -> impl FnMut(&[u8]) -> io::Result<usize> + 'a {
        move |data| {
            assert!(!data.is_empty(), "zero-length write");
            *calls += 1;
            let n = data.len().min(cap).min(*budget);
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            *budget -= n;
            out.extend_from_slice(&data[..n]);
            Ok(n)
        }
    }

    #[test]
    fn coalesces_small_pushes_into_one_write() {
        let mut q = OutputQueue::default();
        for i in 0..100u8 {
            q.push(&[i; 10]).unwrap();
        }
        q.push(b"").unwrap();
        assert_eq!(q.len(), 1000);
        let (mut out, mut budget, mut calls) = (Vec::new(), usize::MAX, 0);
        let r = q.flush(writer(&mut out, usize::MAX, &mut budget, &mut calls));
        assert_eq!(r.unwrap(), Flushed::Drained);
        assert_eq!(calls, 1);
        assert_eq!(out.len(), 1000);
        assert!(q.is_empty());
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn partial_writes_keep_order_and_resume() {
        let mut q = OutputQueue::default();
        q.push_vec((0..200_000u32).map(|i| i as u8).collect())
            .unwrap();
        q.push_producer(Box::new(SimpleProducer::new(vec![7u8; 5000], 512).unwrap()))
            .unwrap();
        q.push(b"tail").unwrap();
        let mut out = Vec::new();
        let mut calls = 0;
        loop {
            let mut budget = 3001;
            match q
                .flush(writer(&mut out, 1000, &mut budget, &mut calls))
                .unwrap()
            {
                Flushed::Drained => break,
                Flushed::Blocked => continue,
                Flushed::CloseReached | Flushed::ShutdownReached => unreachable!(),
            }
        }
        let mut expect: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        expect.extend_from_slice(&[7u8; 5000]);
        expect.extend_from_slice(b"tail");
        assert_eq!(out, expect);
    }

    #[test]
    fn close_mark_is_reached_after_data_and_refuses_more() {
        let mut q = OutputQueue::default();
        q.push(b"bye\n").unwrap();
        q.close_when_done();
        let err = q.push(b"late").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(q
            .push_producer(Box::new(SimpleProducer::new(b"x".to_vec(), 1).unwrap()))
            .is_err());
        let (mut out, mut budget, mut calls) = (Vec::new(), usize::MAX, 0);
        let r = q.flush(writer(&mut out, usize::MAX, &mut budget, &mut calls));
        assert_eq!(r.unwrap(), Flushed::CloseReached);
        assert_eq!(out, b"bye\n");
        assert_eq!(q.discard(), 0);
        assert!(!q.is_closing());
    }

    #[test]
    fn errors_other_than_would_block_are_returned() {
        let mut q = OutputQueue::default();
        q.push(b"abc").unwrap();
        let r = q.flush(|_| Err(io::ErrorKind::BrokenPipe.into()));
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(q.len(), 3, "nothing is lost on error");
        assert!(q.set_chunk(0).is_err());
    }

    /// Yields `good` bytes, then fails with EISDIR (what reading a directory gives).
    struct FailsAfter(usize);

    impl Producer for FailsAfter {
        fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::from_raw_os_error(
                    rustix::io::Errno::ISDIR.raw_os_error(),
                ));
            }
            let n = self.0.min(buf.len());
            buf[..n].fill(b'f');
            self.0 -= n;
            Ok(n)
        }
    }

    #[test]
    fn producer_error_after_earlier_output_is_sent_and_drops_the_producer() {
        let mut q = OutputQueue::default();
        q.push(b"head").unwrap();
        q.push_producer(Box::new(FailsAfter(3000))).unwrap();
        q.push(b"after").unwrap();
        let mut out = Vec::new();
        let mut calls = 0;
        let err = loop {
            let mut budget = 1000;
            match q.flush(writer(&mut out, 700, &mut budget, &mut calls)) {
                Ok(Flushed::Blocked) => continue,
                Ok(other) => panic!("{other:?} before the producer failed"),
                Err(e) => break e,
            }
        };
        assert_eq!(
            err.raw_os_error(),
            Some(rustix::io::Errno::ISDIR.raw_os_error())
        );
        let mut expect = b"head".to_vec();
        expect.extend_from_slice(&[b'f'; 3000]);
        assert_eq!(out, expect, "everything before the failure was written");
        // The producer is gone; what was queued after it is still there.
        let (mut rest, mut budget) = (Vec::new(), usize::MAX);
        let r = q.flush(writer(&mut rest, usize::MAX, &mut budget, &mut calls));
        assert_eq!(r.unwrap(), Flushed::Drained);
        assert_eq!(rest, b"after");
    }

    #[test]
    fn a_producers_would_block_is_an_error_not_a_spin() {
        let mut q = OutputQueue::default();
        q.push_producer(Box::new(crate::producer::from_fn(|| {
            Err(io::ErrorKind::WouldBlock.into())
        })))
        .unwrap();
        let r = q.flush(|d| Ok(d.len()));
        assert!(r.unwrap_err().to_string().contains("WouldBlock"));
        assert!(q.is_empty());
    }

    #[test]
    fn deferred_error_comes_first_then_the_queue_goes_on() {
        let mut q = OutputQueue::default();
        q.push(b"x").unwrap();
        q.close_when_done();
        q.defer_error(io::Error::other("late"));
        assert!(!q.is_empty());
        let mut out = Vec::new();
        let err = q.flush(|d| {
            out.extend_from_slice(d);
            Ok(d.len())
        });
        assert_eq!(err.unwrap_err().to_string(), "late");
        assert!(out.is_empty());
        let r = q.flush(|d| {
            out.extend_from_slice(d);
            Ok(d.len())
        });
        assert_eq!(r.unwrap(), Flushed::CloseReached);
        assert_eq!(out, b"x");
    }

    #[test]
    fn one_buffer_per_producer_sized_by_its_hint() {
        let mut q = OutputQueue::default();
        q.push_producer(Box::new(SimpleProducer::new(vec![1u8; 10], 4).unwrap()))
            .unwrap();
        let mut sizes = Vec::new();
        let r = q.flush(|d| {
            sizes.push(d.len());
            Ok(d.len())
        });
        assert_eq!(r.unwrap(), Flushed::Drained);
        assert_eq!(sizes, [4, 4, 2]);
        assert_eq!(q.written(), 10);
        assert_eq!(q.len(), 0);
    }
}
