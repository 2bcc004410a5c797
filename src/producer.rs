//! Producers: asynchat's pull-style sources of outgoing data, fallible and buffer-filling.
//!
//! A [`Producer`] fills a buffer the output queue lends it, so streaming a source costs one
//! buffer per producer, not one allocation per chunk, and it can fail: its error is routed
//! like a hook error (see [`Producer`]'s "Errors"). [`SimpleProducer`] serves bytes in
//! memory, [`ReaderProducer`] any [`Read`], [`FileProducer`] a file (with `sendfile(2)` on a
//! socket channel), and [`from_fn`] adapts asynchat's chunk-returning `more()` style.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::BorrowedFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A source of outgoing data, asynchat's producer protocol in buffer-filling form.
///
/// The output queue calls [`fill`](Producer::fill) with a buffer of its own whenever the
/// producer is first in the queue and everything it produced before was sent. `Ok(0)`
/// means the producer is finished: it is dropped and the next queued item is sent. Once
/// finished (or failed) a producer is not called again.
///
/// Forwarding impls exist for `Box<P>` and `&mut P`, so a `Box<dyn Producer>` is a
/// producer too. For a closure returning chunks (asynchat's `more()`), use [`from_fn`].
///
/// # Errors
///
/// An error from [`fill`](Producer::fill) (or [`send_direct`](Producer::send_direct)) is
/// routed like an error returned by a hook: to the channel's `handle_error`, whose default
/// reports it and closes the channel through `handle_close` (a disconnect errno such as
/// `EPIPE` goes to `handle_close` directly). The failed producer is dropped. Everything
/// queued before it, and every byte it produced before failing, was already handed to the
/// OS and still reaches the peer; then the peer sees the connection close (end of file):
/// a response that promised more bytes (an HTTP `Content-Length`) arrives short and
/// closed, never short and hanging. A producer must not return `WouldBlock` (it has no way
/// to be woken up): that is turned into an error too.
///
/// # Examples
///
/// ```
/// use std::io;
/// use sockloop::Producer;
///
/// /// Counts down, one line per call.
/// struct Countdown(u32);
///
/// impl Producer for Countdown {
///     fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
///         if self.0 == 0 {
///             return Ok(0);
///         }
///         let line = format!("{}\r\n", self.0);
///         let n = line.len().min(buf.len());
///         buf[..n].copy_from_slice(&line.as_bytes()[..n]);
///         self.0 -= 1;
///         Ok(n)
///     }
/// }
///
/// let mut p: Box<dyn Producer> = Box::new(Countdown(2));
/// let mut buf = [0u8; 16];
/// let n = p.fill(&mut buf)?;
/// assert_eq!(&buf[..n], b"2\r\n");
/// let n = p.fill(&mut buf)?;
/// assert_eq!(&buf[..n], b"1\r\n");
/// assert_eq!(p.fill(&mut buf)?, 0);
/// # std::io::Result::Ok(())
/// ```
pub trait Producer {
    /// Writes the next bytes into `buf` (never empty) and returns how many; `Ok(0)` when
    /// finished.
    ///
    /// # Errors
    ///
    /// Whatever the source reports; see the trait's "Errors" for where it goes.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::{Producer, SimpleProducer};
    ///
    /// let mut p = SimpleProducer::new(&b"hi"[..], 512)?;
    /// let mut buf = [0u8; 8];
    /// assert_eq!(p.fill(&mut buf)?, 2);
    /// assert_eq!(&buf[..2], b"hi");
    /// assert_eq!(p.fill(&mut buf)?, 0);
    /// # std::io::Result::Ok(())
    /// ```
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize>;

    /// How many bytes are left, if known: the queue lends a buffer no larger than this
    /// (nor than the channel's [`out_buffer_size`](crate::Channel::out_buffer_size)).
    /// Default `None` (unknown: a buffer of `out_buffer_size`).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::{Producer, SimpleProducer};
    ///
    /// assert_eq!(SimpleProducer::new("abc", 2)?.size_hint(), Some(3));
    /// # std::io::Result::Ok(())
    /// ```
    fn size_hint(&self) -> Option<u64> {
        None
    }

    /// Sends up to `max` of the next bytes straight to the channel's socket, without
    /// copying them through a buffer (`sendfile(2)`), or `None` if this producer cannot
    /// (the default): the queue then uses [`fill`](Producer::fill). Called only on socket
    /// channels (meant for stream sockets: on a datagram socket each call is one
    /// datagram), only when nothing the producer filled is still unsent; `max` is the
    /// channel's [`out_buffer_size`](crate::Channel::out_buffer_size).
    ///
    /// Returns `Some(Ok(n))` for `n` bytes sent, `Some(Ok(0))` when finished, and
    /// `Some(Err(e))` with [`io::ErrorKind::WouldBlock`] when the socket takes nothing
    /// more now (the queue waits for the next write event).
    ///
    /// # Errors
    ///
    /// Other errors are routed as the trait's "Errors" says (a socket disconnect, e.g.
    /// `EPIPE`, closes the channel).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use std::os::fd::AsFd;
    /// use sockloop::{FileProducer, Producer};
    ///
    /// let path = std::env::temp_dir().join(format!("sockloop-doc-direct-{}", std::process::id()));
    /// std::fs::write(&path, b"zero-copy")?;
    /// let mut p = FileProducer::open(&path)?;
    /// let (a, mut b) = std::os::unix::net::UnixStream::pair()?;
    /// assert_eq!(p.send_direct(a.as_fd(), 1 << 16).unwrap()?, 9);
    /// assert_eq!(p.send_direct(a.as_fd(), 1 << 16).unwrap()?, 0);
    /// let mut got = [0u8; 9];
    /// b.read_exact(&mut got)?;
    /// assert_eq!(&got, b"zero-copy");
    /// # std::fs::remove_file(&path)?;
    /// # std::io::Result::Ok(())
    /// ```
    fn send_direct(&mut self, socket: BorrowedFd<'_>, max: usize) -> Option<io::Result<usize>> {
        let _ = (socket, max);
        None
    }
}

impl<P: Producer + ?Sized> Producer for Box<P> {
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (**self).fill(buf)
    }
    fn size_hint(&self) -> Option<u64> {
        (**self).size_hint()
    }
    fn send_direct(&mut self, socket: BorrowedFd<'_>, max: usize) -> Option<io::Result<usize>> {
        (**self).send_direct(socket, max)
    }
}

impl<P: Producer + ?Sized> Producer for &mut P {
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (**self).fill(buf)
    }
    fn size_hint(&self) -> Option<u64> {
        (**self).size_hint()
    }
    fn send_direct(&mut self, socket: BorrowedFd<'_>, max: usize) -> Option<io::Result<usize>> {
        (**self).send_direct(socket, max)
    }
}

/// asynchat's `simple_producer`: yields its data in pieces of at most `chunk` bytes.
///
/// Each [`fill`](Producer::fill) copies at most `chunk` bytes (and at most the buffer's
/// length). CPython's default chunk size is [`SimpleProducer::DEFAULT_CHUNK`] (512); the
/// chunk only bounds each step, so a large one (e.g. 65536) is the fast choice.
///
/// # Examples
///
/// ```
/// use sockloop::{Producer, SimpleProducer};
///
/// let mut p = SimpleProducer::new("abcdefg", 3)?;
/// let mut buf = [0u8; 64];
/// let n = p.fill(&mut buf)?;
/// assert_eq!(&buf[..n], b"abc");
/// let n = p.fill(&mut buf)?;
/// assert_eq!(&buf[..n], b"def");
/// let n = p.fill(&mut buf)?;
/// assert_eq!(&buf[..n], b"g");
/// assert_eq!(p.fill(&mut buf)?, 0);
/// # std::io::Result::Ok(())
/// ```
pub struct SimpleProducer {
    data: Vec<u8>,
    pos: usize,
    chunk: usize,
}

impl SimpleProducer {
    /// asynchat's default `buffer_size` for `simple_producer`.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::{Producer, SimpleProducer};
    ///
    /// let mut p = SimpleProducer::new(vec![0u8; 1000], SimpleProducer::DEFAULT_CHUNK)?;
    /// let mut buf = [0u8; 4096];
    /// assert_eq!(p.fill(&mut buf)?, 512);
    /// assert_eq!(p.fill(&mut buf)?, 488);
    /// # std::io::Result::Ok(())
    /// ```
    pub const DEFAULT_CHUNK: usize = 512;

    /// Creates a producer over `data` that yields at most `chunk` bytes per
    /// [`fill`](Producer::fill).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] if `chunk` is 0. (CPython accepts 0
    /// and then returns `b""` at once, silently dropping the data.)
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::SimpleProducer;
    ///
    /// let p = SimpleProducer::new(b"payload".to_vec(), 4)?;
    /// assert_eq!(p.remaining(), 7);
    /// let err = SimpleProducer::new("x", 0).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn new(data: impl Into<Vec<u8>>, chunk: usize) -> io::Result<Self> {
        if chunk == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "SimpleProducer chunk size is 0: it must be at least 1 byte \
                 (asynchat's default is 512)",
            ));
        }
        Ok(SimpleProducer {
            data: data.into(),
            pos: 0,
            chunk,
        })
    }

    /// Returns the number of bytes not yet produced.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::{Producer, SimpleProducer};
    ///
    /// let mut p = SimpleProducer::new("abcde", 2)?;
    /// p.fill(&mut [0u8; 8])?;
    /// assert_eq!(p.remaining(), 3);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }
}

impl Producer for SimpleProducer {
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.remaining().min(self.chunk).min(buf.len());
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        if self.pos == self.data.len() {
            // Finished: free the data now rather than when the producer is dropped.
            self.data = Vec::new();
            self.pos = 0;
        }
        Ok(n)
    }

    fn size_hint(&self) -> Option<u64> {
        Some(self.remaining() as u64)
    }
}

impl fmt::Debug for SimpleProducer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimpleProducer")
            .field("remaining", &self.remaining())
            .field("chunk", &self.chunk)
            .finish()
    }
}

/// Streams any [`Read`] in chunks, without loading it whole: each
/// [`fill`](Producer::fill) is one `read` into the queue's buffer. End of input (`read`
/// returning 0) finishes the producer; a read error fails it (see [`Producer`]'s
/// "Errors"). `Interrupted` is retried. The reader should block rather than return
/// `WouldBlock` (a file, a decompressor, an in-memory cursor); a non-blocking socket or
/// pipe belongs in a channel of its own.
///
/// # Examples
///
/// ```
/// use sockloop::{Producer, ReaderProducer};
///
/// let mut p = ReaderProducer::new(std::io::Cursor::new(b"streamed".to_vec()));
/// let mut buf = [0u8; 5];
/// let n = p.fill(&mut buf)?;
/// assert_eq!(&buf[..n], b"strea");
/// let n = p.fill(&mut buf)?;
/// assert_eq!(&buf[..n], b"med");
/// assert_eq!(p.fill(&mut buf)?, 0);
/// # std::io::Result::Ok(())
/// ```
pub struct ReaderProducer<R> {
    reader: R,
}

impl<R: Read> ReaderProducer<R> {
    /// Wraps `reader`.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::ReaderProducer;
    ///
    /// let p = ReaderProducer::new(&b"abc"[..]);
    /// assert_eq!(p.into_inner(), b"abc");
    /// ```
    pub fn new(reader: R) -> Self {
        ReaderProducer { reader }
    }

    /// Returns the reader.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::{Producer, ReaderProducer};
    ///
    /// let mut p = ReaderProducer::new(&b"abc"[..]);
    /// p.fill(&mut [0u8; 2])?;
    /// assert_eq!(p.into_inner(), b"c");
    /// # std::io::Result::Ok(())
    /// ```
    pub fn into_inner(self) -> R {
        self.reader
    }
}

impl<R: Read> Producer for ReaderProducer<R> {
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.reader.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}

impl<R> fmt::Debug for ReaderProducer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReaderProducer")
            .field("reader", &std::any::type_name::<R>())
            .finish()
    }
}

/// Streams a regular file, or a byte range of one, without loading it: on a socket
/// channel with `sendfile(2)` (the kernel copies file pages to the socket; no user-space
/// buffer), elsewhere with positioned reads (`pread`) into the queue's buffer. The file's
/// own position is never used or moved.
///
/// The length is fixed when the producer is made (the file's size, or the range). A file
/// that turns out shorter (truncated while being sent) is an `UnexpectedEof` error, and a
/// read error mid-file is that error: both are routed to `handle_error` (see
/// [`Producer`]'s "Errors"), never a silent short body. Growth after creation is not
/// sent.
///
/// # Examples
///
/// ```
/// use sockloop::{FileProducer, Producer};
///
/// let path = std::env::temp_dir().join(format!("sockloop-doc-file-{}", std::process::id()));
/// std::fs::write(&path, b"0123456789")?;
/// let mut p = FileProducer::range(std::fs::File::open(&path)?, 2, 5)?;
/// assert_eq!(p.remaining(), 5);
/// let mut buf = [0u8; 64];
/// let n = p.fill(&mut buf)?;
/// assert_eq!(&buf[..n], b"23456");
/// assert_eq!(p.fill(&mut buf)?, 0);
/// // A directory is refused when the producer is made, not discovered mid-body.
/// assert!(FileProducer::open(std::env::temp_dir()).is_err());
/// # std::fs::remove_file(&path)?;
/// # std::io::Result::Ok(())
/// ```
pub struct FileProducer {
    file: File,
    offset: u64,
    end: u64,
    /// `sendfile(2)` refused this file (e.g. `EINVAL` on a file system without it): use
    /// `fill` from now on.
    no_sendfile: bool,
}

impl FileProducer {
    /// Opens `path` read-only and streams the whole file.
    ///
    /// # Errors
    ///
    /// What opening reports (`NotFound`, `PermissionDenied`, ...), and as
    /// [`new`](FileProducer::new).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::FileProducer;
    ///
    /// let err = FileProducer::open("/nonexistent/sockloop").unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// ```
    pub fn open(path: impl AsRef<Path>) -> io::Result<FileProducer> {
        FileProducer::new(File::open(path)?)
    }

    /// Streams the whole of `file`, from its start (whatever its position), as long as it
    /// is at creation.
    ///
    /// # Errors
    ///
    /// `EISDIR` ([`io::ErrorKind::IsADirectory`]) for a directory; `InvalidInput` for
    /// anything else that is not a regular file (a pipe, a device: use
    /// [`ReaderProducer`]); what fstat(2) reports.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::FileProducer;
    ///
    /// let dir = std::fs::File::open(std::env::temp_dir())?;
    /// let err = FileProducer::new(dir).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::IsADirectory);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn new(file: File) -> io::Result<FileProducer> {
        let len = regular_len(&file)?;
        Ok(FileProducer {
            file,
            offset: 0,
            end: len,
            no_sendfile: false,
        })
    }

    /// Streams `len` bytes of `file` from offset `start` (an HTTP range).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the range reaches past the end of the file; and as
    /// [`new`](FileProducer::new).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::FileProducer;
    ///
    /// let path = std::env::temp_dir().join(format!("sockloop-doc-range-{}", std::process::id()));
    /// std::fs::write(&path, b"abc")?;
    /// assert!(FileProducer::range(std::fs::File::open(&path)?, 1, 2).is_ok());
    /// let err = FileProducer::range(std::fs::File::open(&path)?, 2, 2).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// # std::fs::remove_file(&path)?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn range(file: File, start: u64, len: u64) -> io::Result<FileProducer> {
        let size = regular_len(&file)?;
        match start.checked_add(len) {
            Some(end) if end <= size => Ok(FileProducer {
                file,
                offset: start,
                end,
                no_sendfile: false,
            }),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "FileProducer range {start}+{len} reaches past the end of the file \
                     ({size} bytes)"
                ),
            )),
        }
    }

    /// Bytes not yet sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::FileProducer;
    ///
    /// let path = std::env::temp_dir().join(format!("sockloop-doc-rem-{}", std::process::id()));
    /// std::fs::write(&path, vec![1u8; 300])?;
    /// assert_eq!(FileProducer::open(&path)?.remaining(), 300);
    /// # std::fs::remove_file(&path)?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn remaining(&self) -> u64 {
        self.end - self.offset
    }

    fn truncated(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "file ended at offset {} while {} more bytes were to be sent (truncated \
                 while being sent?)",
                self.offset,
                self.remaining()
            ),
        )
    }
}

/// The length of a regular file; errors for anything else.
fn regular_len(file: &File) -> io::Result<u64> {
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(io::Error::from_raw_os_error(
            rustix::io::Errno::ISDIR.raw_os_error(),
        ));
    }
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "FileProducer needs a regular file (its length is fixed up front); use \
             ReaderProducer for pipes and devices",
        ));
    }
    Ok(meta.len())
}

impl Producer for FileProducer {
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = usize::try_from(self.remaining())
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if want == 0 {
            return Ok(0);
        }
        loop {
            match self.file.read_at(&mut buf[..want], self.offset) {
                Ok(0) => return Err(self.truncated()),
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn size_hint(&self) -> Option<u64> {
        Some(self.remaining())
    }

    fn send_direct(&mut self, socket: BorrowedFd<'_>, max: usize) -> Option<io::Result<usize>> {
        if self.no_sendfile {
            return None;
        }
        let want = usize::try_from(self.remaining())
            .unwrap_or(usize::MAX)
            .min(max);
        if want == 0 {
            return Some(Ok(0));
        }
        match crate::sys::sendfile(socket, &self.file, &mut self.offset, want) {
            Ok(0) => Some(Err(self.truncated())),
            Ok(n) => Some(Ok(n)),
            Err(e) if crate::sys::sendfile_unsupported(&e) => {
                self.no_sendfile = true;
                None
            }
            Err(e) => Some(Err(e)),
        }
    }
}

impl fmt::Debug for FileProducer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileProducer")
            .field("offset", &self.offset)
            .field("end", &self.end)
            .finish()
    }
}

/// A producer from a closure in asynchat's `more()` style: each call returns the next
/// chunk, an empty `Vec` when finished, or an error. What does not fit the queue's buffer
/// is kept for the next [`fill`](Producer::fill). The easy way to port an asynchat
/// producer; implement [`Producer`] directly to avoid a `Vec` per chunk.
///
/// # Examples
///
/// ```
/// use sockloop::{producer, Producer};
///
/// let mut lines = vec!["b\r\n", "a\r\n"];
/// let mut p = producer::from_fn(move || Ok(lines.pop().unwrap_or("").as_bytes().to_vec()));
/// let mut buf = [0u8; 2];
/// let n = p.fill(&mut buf)?;
/// assert_eq!(&buf[..n], b"a\r");
/// let n = p.fill(&mut buf)?;
/// assert_eq!(&buf[..n], b"\n");
/// let n = p.fill(&mut buf)?;
/// assert_eq!(&buf[..n], b"b\r");
/// let n = p.fill(&mut buf)?;
/// assert_eq!(&buf[..n], b"\n");
/// assert_eq!(p.fill(&mut buf)?, 0);
/// # std::io::Result::Ok(())
/// ```
pub fn from_fn<F>(more: F) -> FromFn<F>
where
    F: FnMut() -> io::Result<Vec<u8>>,
{
    FromFn {
        more,
        chunk: Vec::new(),
        pos: 0,
        done: false,
    }
}

/// The producer [`from_fn`] returns.
pub struct FromFn<F> {
    more: F,
    chunk: Vec<u8>,
    pos: usize,
    done: bool,
}

impl<F: FnMut() -> io::Result<Vec<u8>>> Producer for FromFn<F> {
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.chunk.len() {
            if self.done {
                return Ok(0);
            }
            self.chunk = (self.more)()?;
            self.pos = 0;
            if self.chunk.is_empty() {
                self.done = true;
                return Ok(0);
            }
        }
        let n = (self.chunk.len() - self.pos).min(buf.len());
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl<F> fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromFn")
            .field("buffered", &(self.chunk.len() - self.pos))
            .field("done", &self.done)
            .finish()
    }
}

#[cfg(test)]
mod tests;
