//! The channel's output queue: asyncore's `dispatcher_with_send` and asynchat's producer FIFO.

use std::collections::VecDeque;
use std::io;

use crate::producer::Producer;

/// Default size of one send and of coalesced small pushes (asynchat's `ac_out_buffer_size`).
pub(crate) const DEFAULT_OUT_BUFFER: usize = 65536;

enum Item {
    Data {
        buf: Vec<u8>,
        sent: usize,
    },
    Producer(Box<dyn Producer>),
    /// asynchat's `None` in the FIFO: close once everything before it is sent.
    Close,
    /// Shut down the writing side once everything before it is sent.
    Shutdown,
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
        self.items.is_empty()
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
        self.bytes <= self.low && (self.low > 0 || self.items.is_empty())
    }

    pub(crate) fn chunk(&self) -> usize {
        self.chunk
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
            if buf.len() + data.len() <= self.chunk {
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
        if data.len() < self.chunk / 4 {
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
        self.items.push_back(Item::Producer(p));
        Ok(())
    }

    pub(crate) fn close_when_done(&mut self) {
        if !self.closing {
            self.closing = true;
            self.sealed = true;
            self.items.push_back(Item::Close);
        }
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
    pub(crate) fn flush(
        &mut self,
        mut write: impl FnMut(&[u8]) -> io::Result<usize>,
    ) -> io::Result<Flushed> {
        loop {
            let chunk = self.chunk;
            match self.items.front_mut() {
                None => return Ok(Flushed::Drained),
                Some(Item::Close) => return Ok(Flushed::CloseReached),
                Some(Item::Shutdown) => {
                    self.items.pop_front();
                    return Ok(Flushed::ShutdownReached);
                }
                Some(Item::Producer(p)) => {
                    let data = p.more();
                    if data.is_empty() {
                        self.items.pop_front();
                    } else {
                        self.bytes += data.len();
                        self.items.push_front(Item::Data { buf: data, sent: 0 });
                    }
                }
                Some(Item::Data { buf, sent }) => {
                    let end = buf.len().min(*sent + chunk);
                    match write(&buf[*sent..end]) {
                        Ok(0) => return Ok(Flushed::Blocked),
                        Ok(n) => {
                            *sent += n;
                            self.bytes -= n;
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
}
