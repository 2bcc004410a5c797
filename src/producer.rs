//! Producers: asynchat's pull-style sources of outgoing data.

use std::fmt;
use std::io;

/// A source of outgoing data, asynchat's producer protocol.
///
/// The chat layer calls [`more`](Producer::more) whenever it has room to send
/// and the producer is first in the output queue. An empty `Vec` means the
/// producer is exhausted: it is then dropped and the next queued item is sent.
///
/// Forwarding impls exist for `Box<P>` and `&mut P`, so a
/// `Box<dyn Producer>` is a producer too. (There is deliberately no blanket
/// impl for closures: it would conflict with those forwarding impls.)
///
/// # Examples
///
/// ```
/// use sockloop::Producer;
///
/// /// Counts down, one line per call.
/// struct Countdown(u32);
///
/// impl Producer for Countdown {
///     fn more(&mut self) -> Vec<u8> {
///         if self.0 == 0 {
///             return Vec::new();
///         }
///         self.0 -= 1;
///         format!("{}\r\n", self.0 + 1).into_bytes()
///     }
/// }
///
/// let mut p: Box<dyn Producer> = Box::new(Countdown(2));
/// assert_eq!(p.more(), b"2\r\n");
/// assert_eq!(p.more(), b"1\r\n");
/// assert!(p.more().is_empty());
/// ```
pub trait Producer {
    /// Returns the next chunk of data to send; an empty `Vec` when exhausted.
    ///
    /// Once a producer returned an empty `Vec` it is not called again.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockloop::{Producer, SimpleProducer};
    ///
    /// let mut p = SimpleProducer::new(&b"hi"[..], 512)?;
    /// assert_eq!(p.more(), b"hi");
    /// assert_eq!(p.more(), b"");
    /// # std::io::Result::Ok(())
    /// ```
    fn more(&mut self) -> Vec<u8>;
}

impl<P: Producer + ?Sized> Producer for Box<P> {
    fn more(&mut self) -> Vec<u8> {
        (**self).more()
    }
}

impl<P: Producer + ?Sized> Producer for &mut P {
    fn more(&mut self) -> Vec<u8> {
        (**self).more()
    }
}

/// asynchat's `simple_producer`: yields its data in chunks of at most
/// `chunk` bytes, then an empty `Vec`.
///
/// Every chunk but the last is exactly `chunk` bytes long. Empty data yields
/// only the final empty `Vec`. CPython's default chunk size is
/// [`SimpleProducer::DEFAULT_CHUNK`] (512).
///
/// Chunks are cut at an offset, so producing `n` bytes costs O(n) whatever
/// the chunk size; data that fits in one chunk is handed over without a copy.
///
/// # Examples
///
/// ```
/// use sockloop::{Producer, SimpleProducer};
///
/// let mut p = SimpleProducer::new("abcdefg", 3)?;
/// assert_eq!(p.more(), b"abc");
/// assert_eq!(p.more(), b"def");
/// assert_eq!(p.more(), b"g");
/// assert_eq!(p.more(), b"");
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
    /// assert_eq!(p.more().len(), 512);
    /// assert_eq!(p.more().len(), 488);
    /// # std::io::Result::Ok(())
    /// ```
    pub const DEFAULT_CHUNK: usize = 512;

    /// Creates a producer over `data` that yields at most `chunk` bytes per
    /// call to [`more`](Producer::more).
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
    /// p.more();
    /// assert_eq!(p.remaining(), 3);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }
}

impl Producer for SimpleProducer {
    fn more(&mut self) -> Vec<u8> {
        let rest = self.remaining();
        if rest > self.chunk {
            let from = self.pos;
            self.pos += self.chunk;
            return self.data[from..self.pos].to_vec();
        }
        // The last chunk (or nothing): hand the data over and free it.
        let mut data = std::mem::take(&mut self.data);
        let pos = std::mem::replace(&mut self.pos, 0);
        if pos > 0 {
            data.drain(..pos);
        }
        data
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

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(p: &mut impl Producer) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let c = p.more();
            if c.is_empty() {
                return out;
            }
            out.push(c);
        }
    }

    /// asynchat.simple_producer, transcribed, as the oracle.
    fn cpython_chunks(data: &[u8], size: usize) -> Vec<Vec<u8>> {
        let mut data = data.to_vec();
        let mut out = Vec::new();
        loop {
            let result = if data.len() > size {
                let rest = data.split_off(size);
                std::mem::replace(&mut data, rest)
            } else {
                std::mem::take(&mut data)
            };
            if result.is_empty() {
                return out;
            }
            out.push(result);
        }
    }

    #[test]
    fn chunks_match_cpython_for_every_size() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for len in [0, 1, 2, 7, 511, 512, 513, 1000] {
            for chunk in [1, 2, 3, 7, 100, 511, 512, 513, 999, 1000, 1001, usize::MAX] {
                let mut p = SimpleProducer::new(&data[..len], chunk).unwrap();
                let got = drain(&mut p);
                assert_eq!(
                    got,
                    cpython_chunks(&data[..len], chunk),
                    "len {len} chunk {chunk}"
                );
                assert_eq!(got.concat(), &data[..len]);
                assert!(got.iter().all(|c| !c.is_empty() && c.len() <= chunk));
                assert_eq!(p.remaining(), 0);
            }
        }
    }

    #[test]
    fn exhausted_stays_exhausted() {
        let mut p = SimpleProducer::new("ab", 1).unwrap();
        assert_eq!(drain(&mut p), [b"a".to_vec(), b"b".to_vec()]);
        assert!(p.more().is_empty());
        assert!(p.more().is_empty());
    }

    #[test]
    fn empty_data_is_exhausted_at_once() {
        let mut p = SimpleProducer::new(Vec::new(), 512).unwrap();
        assert_eq!(p.remaining(), 0);
        assert!(p.more().is_empty());
    }

    #[test]
    fn zero_chunk_is_rejected() {
        let err = SimpleProducer::new("data", 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("at least 1"), "{err}");
    }

    #[test]
    fn single_chunk_is_handed_over_without_copy() {
        let data = b"abc".to_vec();
        let ptr = data.as_ptr();
        let mut p = SimpleProducer::new(data, 3).unwrap();
        let out = p.more();
        assert_eq!(out.as_ptr(), ptr);
        assert_eq!(out, b"abc");
    }

    #[test]
    fn large_data_small_chunks() {
        let data = vec![7u8; 1 << 20];
        let mut p = SimpleProducer::new(data, 1).unwrap();
        let mut n = 0;
        loop {
            let c = p.more();
            if c.is_empty() {
                break;
            }
            assert_eq!(c, [7]);
            n += 1;
        }
        assert_eq!(n, 1 << 20);
    }

    #[test]
    fn accepts_str_string_slice_and_vec() {
        let a = SimpleProducer::new("s", 1).unwrap();
        let b = SimpleProducer::new(String::from("st"), 1).unwrap();
        let c = SimpleProducer::new(&b"abc"[..], 1).unwrap();
        let d = SimpleProducer::new(vec![1, 2, 3, 4], 1).unwrap();
        assert_eq!(
            [a.remaining(), b.remaining(), c.remaining(), d.remaining()],
            [1, 2, 3, 4]
        );
    }

    #[test]
    fn boxed_and_borrowed_producers() {
        let mut boxed: Box<dyn Producer> = Box::new(SimpleProducer::new("abcd", 2).unwrap());
        assert_eq!(drain(&mut boxed), [b"ab".to_vec(), b"cd".to_vec()]);
        let mut p = SimpleProducer::new("xy", 1).unwrap();
        fn first(mut p: impl Producer) -> Vec<u8> {
            p.more()
        }
        assert_eq!(first(&mut p), b"x");
        assert_eq!(drain(&mut &mut p), [b"y".to_vec()]);
    }

    #[test]
    fn debug_shows_progress_not_data() {
        let mut p = SimpleProducer::new("secret", 2).unwrap();
        p.more();
        let text = format!("{p:?}");
        assert_eq!(text, "SimpleProducer { remaining: 4, chunk: 2 }");
    }
}
