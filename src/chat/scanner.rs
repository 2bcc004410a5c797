//! The terminator scanner: asynchat's input splitting, without a socket.

use std::borrow::Cow;
use std::fmt;
use std::io;

/// What ends an input record, asynchat's `set_terminator` argument.
///
/// | asynchat | sockloop |
/// |---|---|
/// | `set_terminator(b"\r\n")` | `Terminator::Bytes(b"\r\n".to_vec())` |
/// | `set_terminator(n)` | `Terminator::Count(n)` |
/// | `set_terminator(None)`, `0`, `b""` | `Terminator::None` (or `Count(0)`); an empty `Bytes` is rejected |
///
/// The default is [`Terminator::None`]: collect everything. (CPython leaves the
/// terminator unset, and the first read fails with `AttributeError`.)
///
/// # Examples
///
/// ```
/// use sockloop::chat::Terminator;
///
/// let line = Terminator::Bytes(b"\r\n".to_vec());
/// let body = Terminator::Count(512);
/// assert_eq!(Terminator::default(), Terminator::None);
/// assert_ne!(line, body);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Terminator {
    /// No terminator: every received byte is delivered as [`Piece::Data`] and
    /// no [`Piece::Terminator`] ever comes.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::chat::{Piece, Scanner, Terminator};
    ///
    /// let mut s = Scanner::new();
    /// s.set_terminator(Terminator::None)?;
    /// s.feed(b"a\r\nb");
    /// assert_eq!(s.next_piece()?, Some(Piece::Data(b"a\r\nb")));
    /// assert_eq!(s.next_piece()?, None);
    /// # std::io::Result::Ok(())
    /// ```
    #[default]
    None,
    /// A byte string of length 1 or more, such as `b"\r\n"` or `b"\r\n.\r\n"`.
    ///
    /// The bytes before it are delivered as data, the terminator itself is not
    /// delivered at all.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::chat::{Piece, Scanner, Terminator};
    ///
    /// let mut s = Scanner::new();
    /// s.set_terminator(Terminator::Bytes(b"\r\n".to_vec()))?;
    /// s.feed(b"EHLO x\r\n");
    /// assert_eq!(s.next_piece()?, Some(Piece::Data(b"EHLO x")));
    /// assert_eq!(s.next_piece()?, Some(Piece::Terminator));
    /// assert_eq!(s.next_piece()?, None);
    /// # std::io::Result::Ok(())
    /// ```
    Bytes(Vec<u8>),
    /// A byte count: the next `n` bytes are delivered as data, then a
    /// [`Piece::Terminator`].
    ///
    /// The count goes down as bytes are delivered (as CPython mutates
    /// `self.terminator`), and is `Count(0)` once the terminator was found.
    /// `Count(0)` behaves like [`Terminator::None`] — it collects everything —
    /// until the terminator is set again, exactly like asynchat's
    /// `if not terminator`.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::chat::{Piece, Scanner, Terminator};
    ///
    /// let mut s = Scanner::new();
    /// s.set_terminator(Terminator::Count(3))?;
    /// s.feed(b"ab");
    /// assert_eq!(s.next_piece()?, Some(Piece::Data(b"ab")));
    /// assert_eq!(s.terminator(), &Terminator::Count(1));
    /// s.feed(b"cde");
    /// assert_eq!(s.next_piece()?, Some(Piece::Data(b"c")));
    /// assert_eq!(s.next_piece()?, Some(Piece::Terminator));
    /// assert_eq!(s.terminator(), &Terminator::Count(0));
    /// assert_eq!(s.next_piece()?, Some(Piece::Data(b"de")));
    /// # std::io::Result::Ok(())
    /// ```
    Count(u64),
}

/// One piece of scanned input: one asynchat callback.
///
/// [`Piece::Data`] is a call to `collect_incoming_data(data)`,
/// [`Piece::Terminator`] a call to `found_terminator()`. A data piece is never
/// empty.
///
/// # Examples
///
/// ```
/// use sockloop::chat::{Piece, Scanner, Terminator};
///
/// let mut s = Scanner::new();
/// s.set_terminator(Terminator::Bytes(b"\n".to_vec()))?;
/// s.feed(b"a\n");
/// let mut line = Vec::new();
/// while let Some(piece) = s.next_piece()? {
///     match piece {
///         Piece::Data(d) => line.extend_from_slice(d),
///         Piece::Terminator => assert_eq!(line, b"a"),
///     }
/// }
/// # std::io::Result::Ok(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Input bytes belonging to the current record (`collect_incoming_data`).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::chat::{Piece, Scanner};
    ///
    /// let mut s = Scanner::new();
    /// s.feed(b"xyz");
    /// assert_eq!(s.next_piece()?, Some(Piece::Data(b"xyz")));
    /// # std::io::Result::Ok(())
    /// ```
    Data(&'a [u8]),
    /// The current terminator was found (`found_terminator`).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::chat::{Piece, Scanner, Terminator};
    ///
    /// let mut s = Scanner::new();
    /// s.set_terminator(Terminator::Bytes(b";".to_vec()))?;
    /// s.feed(b";");
    /// assert_eq!(s.next_piece()?, Some(Piece::Terminator));
    /// # std::io::Result::Ok(())
    /// ```
    Terminator,
}

/// asynchat's input side: a buffer of received bytes split by the current
/// [`Terminator`] into [`Piece`]s, one callback at a time.
///
/// Feed it what `recv` returned, then take pieces until [`next_piece`]
/// returns `None`; it is the loop of CPython 3.11's
/// `async_chat.handle_read`, turned inside out:
///
/// ```
/// use sockloop::chat::{Piece, Scanner, Terminator};
///
/// let mut s = Scanner::new();
/// s.set_terminator(Terminator::Bytes(b"\r\n".to_vec()))?;
/// let mut headers = Vec::new();
/// let mut body = None;
/// let mut line = Vec::new();
/// for received in [&b"Host: a\r\nContent-Len"[..], b"gth: 4\r\n\r\nbody"] {
///     s.feed(received);
///     while let Some(piece) = s.next_piece()? {
///         match piece {
///             Piece::Data(d) => line.extend_from_slice(d), // collect_incoming_data
///             Piece::Terminator => {
///                 // found_terminator: may change the terminator, and the
///                 // change applies to the rest of the same buffer.
///                 let record = std::mem::take(&mut line);
///                 if matches!(s.terminator(), Terminator::Count(_)) {
///                     body = Some(record);
///                 } else if record.is_empty() {
///                     s.set_terminator(Terminator::Count(4))?;
///                 } else {
///                     headers.push(record);
///                 }
///             }
///         }
///     }
/// }
/// assert_eq!(headers, [&b"Host: a"[..], b"Content-Length: 4"]);
/// assert_eq!(body.as_deref(), Some(&b"body"[..]));
/// # std::io::Result::Ok(())
/// ```
///
/// # What a CPython user can expect
///
/// For the same received chunks and the same `set_terminator` calls made in
/// `found_terminator`, the pieces are exactly asynchat's callbacks, in the
/// same order and with the same byte boundaries:
///
/// * With [`Terminator::Bytes`], the bytes before the terminator come as one
///   [`Piece::Data`] (none for an empty record), then [`Piece::Terminator`];
///   the terminator bytes themselves are never delivered. The first
///   occurrence wins.
/// * When the buffer ends in a proper prefix of the terminator (the longest
///   one, CPython's `find_prefix_at_end`), everything before the prefix is
///   delivered and the prefix is kept until more input arrives, so a
///   terminator split across reads at any byte boundary is found.
///   Everything else is delivered at once: once drained, the scanner holds
///   at most `terminator length - 1` bytes (unless a record-limit error is
///   being reported).
/// * With [`Terminator::Count`], at most the remaining count is delivered and
///   the count goes down; reaching zero gives [`Piece::Terminator`] and leaves
///   `Count(0)`, which collects everything until the terminator is set again.
/// * With [`Terminator::None`] (and `Count(0)`), everything is data.
/// * A [`Piece::Data`] is never empty.
///
/// To stop parsing part-way (say the channel was closed in
/// `found_terminator`), stop calling [`next_piece`]: the rest stays
/// buffered, and nothing is lost or delivered twice.
///
/// # Differences from asynchat
///
/// * The default terminator is [`Terminator::None`]; CPython leaves it unset.
/// * An empty [`Terminator::Bytes`] is rejected by [`set_terminator`];
///   CPython accepts `b""` and treats it like `None` (`if not terminator`).
/// * A count is updated when its [`Piece::Data`] is returned, so
///   [`terminator`] already reports the remaining count while the caller
///   handles that piece; CPython updates it after `collect_incoming_data`
///   returns. ([`ChatContext::get_terminator`](crate::chat::ChatContext::get_terminator)
///   reports CPython's value.) A `set_terminator` made between the last data
///   piece of a count and its [`Piece::Terminator`] is kept, where CPython
///   overwrites it with `0` (see "Differences from asynchat" on
///   [`AsyncChat`](crate::chat::AsyncChat)).
/// * CPython scans only when `recv` returned data; here [`next_piece`] scans
///   whenever it is called. A terminator changed *outside* the callbacks
///   therefore applies to held bytes at the next call rather than at the next
///   read. The concatenated data and the terminators found are the same.
/// * [`discard`] also drops a [`Piece::Terminator`] that was found but not
///   yet returned; CPython's `discard_buffers` inside
///   `collect_incoming_data` still calls `found_terminator` afterwards.
/// * An optional record limit, see below.
///
/// # Record limit
///
/// With [`set_max_record`]`(Some(max))` and a [`Terminator::Bytes`], a record
/// (the bytes between two terminators) may be at most `max` bytes long. At
/// most `max` bytes of a record are ever delivered as data; as soon as byte
/// `max + 1` of a record is known to be data (not a possible start of the
/// terminator), [`next_piece`] fails with [`io::ErrorKind::InvalidData`].
/// Where the error comes does not depend on how the input was split into
/// reads. A record of exactly `max` bytes is accepted even when its
/// terminator arrives later, byte by byte.
///
/// The error is sticky: every further call returns it again, until
/// [`discard`], [`set_terminator`] or a larger limit. The record length
/// counts from the last [`Piece::Terminator`], [`set_terminator`] or
/// [`discard`]. Counts and `None` are not limited (the count already is a
/// limit the caller chose).
///
/// # Memory
///
/// The scanner holds what was fed and not yet taken. A caller that drains
/// [`next_piece`] after every [`feed`] keeps it at most one read plus
/// `terminator length - 1` bytes; with a record limit the caller's own
/// record buffer stays at most `max` bytes. Consumed input is not moved on
/// every piece: a start offset moves, and [`feed`] compacts the buffer,
/// in amortised linear time overall.
///
/// [`next_piece`]: Scanner::next_piece
/// [`set_terminator`]: Scanner::set_terminator
/// [`set_max_record`]: Scanner::set_max_record
/// [`terminator`]: Scanner::terminator
/// [`discard`]: Scanner::discard
/// [`feed`]: Scanner::feed
#[derive(Default)]
pub struct Scanner {
    /// Received bytes; `buf[start..]` is not yet delivered.
    buf: Vec<u8>,
    start: usize,
    terminator: Terminator,
    /// A [`Piece::Terminator`] is owed: skip this many bytes (the terminator
    /// itself), then return it.
    pending: Option<usize>,
    max_record: Option<usize>,
    /// Bytes of the current `Bytes`-terminated record delivered so far.
    record: usize,
    /// The count before the last piece, if that piece was counted data: what asynchat's
    /// `get_terminator` reports during its `collect_incoming_data` (it counts down after).
    counted_from: Option<u64>,
}

/// A piece as positions in the buffer, so the scanner is not borrowed while deciding.
#[derive(Clone, Copy)]
enum Raw {
    Data(usize, usize),
    Terminator,
}

/// What the next call to `next_piece` does, decided before mutating.
enum Step {
    NeedMore,
    Data(usize),
    DataThenTerminator(usize, usize),
    Terminator(usize),
    TooLong,
}

impl Scanner {
    /// Creates a scanner with [`Terminator::None`], no record limit and an
    /// empty buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::chat::{Scanner, Terminator};
    ///
    /// let s = Scanner::new();
    /// assert_eq!(s.terminator(), &Terminator::None);
    /// assert_eq!(s.max_record(), None);
    /// assert_eq!(s.buffered(), 0);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the terminator for the input not yet delivered
    /// (`async_chat.set_terminator`).
    ///
    /// Called while handling a [`Piece::Terminator`], it applies to the rest
    /// of the same buffer. It also restarts the record length counted for
    /// [`set_max_record`](Scanner::set_max_record).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for an empty [`Terminator::Bytes`];
    /// the terminator is then left unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::chat::{Scanner, Terminator};
    ///
    /// let mut s = Scanner::new();
    /// s.set_terminator(Terminator::Bytes(b"\r\n.\r\n".to_vec()))?;
    /// let err = s.set_terminator(Terminator::Bytes(Vec::new())).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// assert_eq!(s.terminator(), &Terminator::Bytes(b"\r\n.\r\n".to_vec()));
    /// # std::io::Result::Ok(())
    /// ```
    pub fn set_terminator(&mut self, t: Terminator) -> io::Result<()> {
        if matches!(&t, Terminator::Bytes(b) if b.is_empty()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "empty terminator: Terminator::Bytes needs at least one byte \
                 (use Terminator::None to collect everything)",
            ));
        }
        self.terminator = t;
        self.record = 0;
        Ok(())
    }

    /// Returns the current terminator (`async_chat.get_terminator`).
    ///
    /// A [`Terminator::Count`] reports the bytes still to come.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::chat::{Scanner, Terminator};
    ///
    /// let mut s = Scanner::new();
    /// s.set_terminator(Terminator::Count(10))?;
    /// s.feed(b"1234");
    /// while s.next_piece()?.is_some() {}
    /// assert_eq!(s.terminator(), &Terminator::Count(6));
    /// # std::io::Result::Ok(())
    /// ```
    pub fn terminator(&self) -> &Terminator {
        &self.terminator
    }

    /// Sets the longest record accepted with a [`Terminator::Bytes`], in
    /// bytes, not counting the terminator; `None` (the default) means no
    /// limit.
    ///
    /// See "Record limit" on [`Scanner`] for exactly when the limit fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::chat::{Piece, Scanner, Terminator};
    ///
    /// let mut s = Scanner::new();
    /// s.set_terminator(Terminator::Bytes(b"\n".to_vec()))?;
    /// s.set_max_record(Some(4));
    /// s.feed(b"abcdefgh");
    /// assert_eq!(s.next_piece()?, Some(Piece::Data(b"abcd")));
    /// let err = s.next_piece().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn set_max_record(&mut self, max: Option<usize>) {
        self.max_record = max;
    }

    /// Returns the record limit set by
    /// [`set_max_record`](Scanner::set_max_record).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::chat::Scanner;
    ///
    /// let mut s = Scanner::new();
    /// s.set_max_record(Some(8192));
    /// assert_eq!(s.max_record(), Some(8192));
    /// ```
    pub fn max_record(&self) -> Option<usize> {
        self.max_record
    }

    /// Appends received bytes to the buffer.
    ///
    /// Nothing is scanned until [`next_piece`](Scanner::next_piece). Feeding
    /// an empty slice does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::chat::Scanner;
    ///
    /// let mut s = Scanner::new();
    /// s.feed(b"abc");
    /// s.feed(b"");
    /// assert_eq!(s.buffered(), 3);
    /// ```
    pub fn feed(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let live = self.buf.len() - self.start;
        if live == 0 {
            self.buf.clear();
            self.start = 0;
        } else if self.start >= live {
            // Moving the live tail costs no more than what was consumed since
            // the last move: amortised O(1) per byte.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Frees the buffer if nothing is buffered and it holds more than a few KiB, so an
    /// idle connection keeps no read-sized buffer (crate-internal: `AsyncChat` calls it
    /// after each read's callbacks).
    pub(crate) fn release_idle_memory(&mut self) {
        const KEEP: usize = 4096;
        if self.buf.len() == self.start && self.buf.capacity() > KEEP {
            self.buf = Vec::new();
            self.start = 0;
        }
    }

    /// Returns the next piece of input, or `None` when more input is needed.
    ///
    /// Each call is one asynchat callback. Call it until it returns `None`
    /// after every [`feed`](Scanner::feed); the terminator may be changed
    /// between calls, typically on [`Piece::Terminator`].
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidData`] when a record exceeds the limit set by
    /// [`set_max_record`](Scanner::set_max_record); see "Record limit" on
    /// [`Scanner`].
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::chat::{Piece, Scanner, Terminator};
    ///
    /// let mut s = Scanner::new();
    /// s.set_terminator(Terminator::Bytes(b"\r\n".to_vec()))?;
    /// s.feed(b"\r\nab\r");
    /// assert_eq!(s.next_piece()?, Some(Piece::Terminator)); // empty record
    /// assert_eq!(s.next_piece()?, Some(Piece::Data(b"ab")));
    /// assert_eq!(s.next_piece()?, None); // "\r" is kept
    /// s.feed(b"\n");
    /// assert_eq!(s.next_piece()?, Some(Piece::Terminator));
    /// # std::io::Result::Ok(())
    /// ```
    pub fn next_piece(&mut self) -> io::Result<Option<Piece<'_>>> {
        Ok(self.advance()?.map(|raw| self.piece(raw)))
    }

    /// [`next_piece`](Scanner::next_piece) and the terminator as asynchat's
    /// `get_terminator` reports it during that piece's callback, borrowed together: the
    /// chat glue hands both to a callback. That is the current terminator, except for
    /// counted data, where asynchat still reports the count *before* the data (it counts
    /// down after `collect_incoming_data` returns).
    pub(crate) fn next_piece_with_terminator(
        &mut self,
    ) -> io::Result<Option<(Piece<'_>, Cow<'_, Terminator>)>> {
        Ok(self.advance()?.map(|raw| {
            let seen = match self.counted_from {
                Some(n) => Cow::Owned(Terminator::Count(n)),
                None => Cow::Borrowed(&self.terminator),
            };
            (self.piece(raw), seen)
        }))
    }

    fn piece(&self, raw: Raw) -> Piece<'_> {
        match raw {
            Raw::Terminator => Piece::Terminator,
            Raw::Data(from, to) => Piece::Data(&self.buf[from..to]),
        }
    }

    /// Takes the next piece, as positions in `buf`.
    fn advance(&mut self) -> io::Result<Option<Raw>> {
        self.counted_from = None;
        if let Some(skip) = self.pending.take() {
            self.start += skip;
            self.record = 0;
            return Ok(Some(Raw::Terminator));
        }
        let live = &self.buf[self.start..];
        let step = match &self.terminator {
            _ if live.is_empty() => Step::NeedMore,
            Terminator::None | Terminator::Count(0) => Step::Data(live.len()),
            &Terminator::Count(n) => {
                self.counted_from = Some(n);
                match usize::try_from(n) {
                    Ok(n) if n <= live.len() => {
                        self.terminator = Terminator::Count(0);
                        Step::DataThenTerminator(n, 0)
                    }
                    _ => {
                        // live.len() < n: fits in u64 on every supported target.
                        self.terminator = Terminator::Count(n - live.len() as u64);
                        Step::Data(live.len())
                    }
                }
            }
            Terminator::Bytes(t) => match find(live, t) {
                Some(0) => Step::Terminator(t.len()),
                Some(i) => self.limit(i, Step::DataThenTerminator(i, t.len())),
                None => match live.len() - find_prefix_at_end(live, t) {
                    0 => Step::NeedMore,
                    n => self.limit(n, Step::Data(n)),
                },
            },
        };
        let (n, pending) = match step {
            Step::NeedMore => return Ok(None),
            Step::TooLong => return Err(self.too_long()),
            Step::Terminator(skip) => {
                self.start += skip;
                self.record = 0;
                return Ok(Some(Raw::Terminator));
            }
            Step::Data(n) => (n, None),
            Step::DataThenTerminator(n, skip) => (n, Some(skip)),
        };
        if matches!(self.terminator, Terminator::Bytes(_)) {
            self.record = self.record.saturating_add(n);
        }
        self.pending = pending;
        let from = self.start;
        self.start += n;
        Ok(Some(Raw::Data(from, from + n)))
    }

    /// Applies the record limit to `n` bytes of record data about to be
    /// delivered by `step`.
    fn limit(&self, n: usize, step: Step) -> Step {
        let Some(max) = self.max_record else {
            return step;
        };
        match max.saturating_sub(self.record) {
            room if n <= room => step,
            0 => Step::TooLong,
            room => Step::Data(room),
        }
    }

    fn too_long(&self) -> io::Error {
        let max = self.max_record.unwrap_or(usize::MAX);
        let term = match &self.terminator {
            Terminator::Bytes(t) => t.escape_ascii().to_string(),
            _ => String::new(),
        };
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "record longer than {max} bytes: no terminator b\"{term}\" within the limit \
                 set by Scanner::set_max_record"
            ),
        )
    }

    /// Returns the number of bytes fed but not yet delivered, including a
    /// kept partial terminator and a found terminator whose
    /// [`Piece::Terminator`] was not returned yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::chat::{Piece, Scanner, Terminator};
    ///
    /// let mut s = Scanner::new();
    /// s.set_terminator(Terminator::Bytes(b"\r\n".to_vec()))?;
    /// s.feed(b"abc\r");
    /// assert_eq!(s.next_piece()?, Some(Piece::Data(b"abc")));
    /// assert_eq!(s.next_piece()?, None);
    /// assert_eq!(s.buffered(), 1);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Drops all buffered input (the input half of asynchat's
    /// `discard_buffers`) and frees the buffer.
    ///
    /// A found terminator whose [`Piece::Terminator`] was not returned yet is
    /// dropped too, and the record length restarts. The terminator and the
    /// record limit are kept.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::chat::{Scanner, Terminator};
    ///
    /// let mut s = Scanner::new();
    /// s.set_terminator(Terminator::Bytes(b"\r\n".to_vec()))?;
    /// s.feed(b"junk\r\n");
    /// s.discard();
    /// assert_eq!(s.buffered(), 0);
    /// assert_eq!(s.next_piece()?, None);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn discard(&mut self) {
        self.buf = Vec::new();
        self.start = 0;
        self.pending = None;
        self.record = 0;
    }
}

impl fmt::Debug for Scanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scanner")
            .field("terminator", &self.terminator)
            .field("buffered", &self.buffered())
            .field("max_record", &self.max_record)
            .field("record", &self.record)
            .field("terminator_pending", &self.pending.is_some())
            .finish()
    }
}

/// Position of the first occurrence of a non-empty `needle` in `hay`
/// (`bytes.find`).
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let last_start = hay.len().checked_sub(needle.len())?;
    let mut from = 0;
    while from <= last_start {
        let i = from + hay[from..=last_start].iter().position(|&b| b == first)?;
        if hay[i + 1..i + needle.len()] == *rest {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// Length of the longest proper prefix of `needle` that `hay` ends with,
/// 0 if none: asynchat's `find_prefix_at_end`.
fn find_prefix_at_end(hay: &[u8], needle: &[u8]) -> usize {
    (1..needle.len())
        .rev()
        .find(|&l| hay.ends_with(&needle[..l]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
