//! Unit tests of the producers: chunking, streaming, failures.

use std::io::{self, Read};
use std::os::fd::AsFd;

use super::*;

fn drain(p: &mut impl Producer, buf_len: usize) -> io::Result<Vec<Vec<u8>>> {
    let mut buf = vec![0u8; buf_len];
    let mut out = Vec::new();
    loop {
        let n = p.fill(&mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.push(buf[..n].to_vec());
    }
}

/// asynchat.simple_producer, transcribed, as the oracle.
fn cpython_chunks(data: &[u8], size: usize) -> Vec<Vec<u8>> {
    data.chunks(size).map(<[u8]>::to_vec).collect()
}

fn temp_file(name: &str, data: &[u8]) -> std::path::PathBuf {
    let path =
        std::env::temp_dir().join(format!("sockloop-producer-{name}-{}", std::process::id()));
    std::fs::write(&path, data).unwrap();
    path
}

#[test]
fn chunks_match_cpython_for_every_size() {
    let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    for len in [0, 1, 2, 7, 511, 512, 513, 1000] {
        for chunk in [1, 2, 3, 7, 100, 511, 512, 513, 999, 1000, 1001, usize::MAX] {
            let mut p = SimpleProducer::new(&data[..len], chunk).unwrap();
            let got = drain(&mut p, 4096).unwrap();
            assert_eq!(
                got,
                cpython_chunks(&data[..len], chunk),
                "len {len} chunk {chunk}"
            );
            assert_eq!(p.remaining(), 0);
        }
    }
}

#[test]
fn small_buffers_bound_each_fill() {
    let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    for buf_len in [1, 3, 512, 2000] {
        let mut p = SimpleProducer::new(data.clone(), 100).unwrap();
        let got = drain(&mut p, buf_len).unwrap();
        assert!(got.iter().all(|c| c.len() <= buf_len.min(100)));
        assert_eq!(got.concat(), data);
    }
}

#[test]
fn exhausted_stays_exhausted() {
    let mut p = SimpleProducer::new("ab", 1).unwrap();
    assert_eq!(drain(&mut p, 8).unwrap(), [b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(p.fill(&mut [0u8; 4]).unwrap(), 0);
    assert_eq!(p.size_hint(), Some(0));
}

#[test]
fn zero_chunk_is_rejected() {
    let err = SimpleProducer::new("data", 0).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("at least 1"), "{err}");
}

#[test]
fn boxed_and_borrowed_producers_forward_everything() {
    let mut boxed: Box<dyn Producer> = Box::new(SimpleProducer::new("abcd", 2).unwrap());
    assert_eq!(boxed.size_hint(), Some(4));
    assert_eq!(
        drain(&mut boxed, 8).unwrap(),
        [b"ab".to_vec(), b"cd".to_vec()]
    );
    let mut p = SimpleProducer::new("xy", 1).unwrap();
    assert_eq!(
        drain(&mut &mut p, 8).unwrap(),
        [b"x".to_vec(), b"y".to_vec()]
    );
}

#[test]
fn debug_shows_progress_not_data() {
    let mut p = SimpleProducer::new("secret", 2).unwrap();
    p.fill(&mut [0u8; 8]).unwrap();
    assert_eq!(
        format!("{p:?}"),
        "SimpleProducer { remaining: 4, chunk: 2 }"
    );
}

/// A reader that yields `good` bytes, is interrupted once, then fails.
struct Flaky {
    good: usize,
    interrupted: bool,
}

impl Read for Flaky {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.interrupted {
            self.interrupted = true;
            return Err(io::ErrorKind::Interrupted.into());
        }
        if self.good == 0 {
            return Err(io::Error::other("disk on fire"));
        }
        let n = self.good.min(buf.len());
        buf[..n].fill(b'r');
        self.good -= n;
        Ok(n)
    }
}

#[test]
fn reader_producer_retries_interrupts_and_reports_errors() {
    let mut p = ReaderProducer::new(Flaky {
        good: 10,
        interrupted: false,
    });
    let mut buf = [0u8; 4];
    assert_eq!(p.fill(&mut buf).unwrap(), 4);
    assert_eq!(p.fill(&mut buf).unwrap(), 4);
    assert_eq!(p.fill(&mut buf).unwrap(), 2);
    let err = p.fill(&mut buf).unwrap_err();
    assert_eq!(err.to_string(), "disk on fire");
}

#[test]
fn file_producer_streams_the_file_in_pieces() {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    let path = temp_file("stream", &data);
    let mut p = FileProducer::open(&path).unwrap();
    assert_eq!(p.size_hint(), Some(100_000));
    let got = drain(&mut p, 4096).unwrap();
    assert!(got.iter().all(|c| c.len() <= 4096));
    assert_eq!(got.concat(), data);
    let mut r = FileProducer::range(std::fs::File::open(&path).unwrap(), 99_990, 10).unwrap();
    assert_eq!(drain(&mut r, 4096).unwrap().concat(), &data[99_990..]);
    let empty = FileProducer::range(std::fs::File::open(&path).unwrap(), 100_000, 0).unwrap();
    assert_eq!(empty.remaining(), 0);
    assert!(FileProducer::range(std::fs::File::open(&path).unwrap(), u64::MAX, 2).is_err());
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn file_producer_refuses_directories_and_pipes() {
    let err = FileProducer::open(std::env::temp_dir()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::IsADirectory);
    let (reader, _writer) = std::io::pipe().unwrap();
    let fd: std::os::fd::OwnedFd = reader.into();
    let err = FileProducer::new(std::fs::File::from(fd)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("ReaderProducer"), "{err}");
}

#[test]
fn file_truncated_while_sent_is_an_error_not_a_short_body() {
    let path = temp_file("trunc", &[5u8; 10_000]);
    let mut p = FileProducer::open(&path).unwrap();
    let mut buf = [0u8; 4000];
    assert_eq!(p.fill(&mut buf).unwrap(), 4000);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(5000)
        .unwrap();
    assert_eq!(p.fill(&mut buf).unwrap(), 1000);
    let err = p.fill(&mut buf).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    // The same through sendfile.
    let mut q = FileProducer::open(&path).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(100)
        .unwrap();
    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    assert_eq!(q.send_direct(a.as_fd(), 1 << 20).unwrap().unwrap(), 100);
    let err = q.send_direct(a.as_fd(), 1 << 20).unwrap().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    let mut got = [0u8; 100];
    b.read_exact(&mut got).unwrap();
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn sendfile_respects_max_and_would_block() {
    let data: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
    let path = temp_file("sendfile", &data);
    let mut p = FileProducer::open(&path).unwrap();
    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    assert_eq!(p.send_direct(a.as_fd(), 10).unwrap().unwrap(), 10);
    // Fill the socket until it would block: bounded, the buffer is far below 4 MB.
    let mut blocked = false;
    for _ in 0..10_000 {
        match p.send_direct(a.as_fd(), 65536).unwrap() {
            Ok(n) => assert!(n > 0 && n <= 65536),
            Err(e) => {
                assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
                blocked = true;
                break;
            }
        }
    }
    assert!(blocked, "a socketpair took 4 MB without blocking");
    let sent = 4_000_000 - p.remaining() as usize;
    let mut got = vec![0u8; sent];
    b.read_exact(&mut got).unwrap();
    assert_eq!(got, &data[..sent]);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn from_fn_keeps_leftovers_and_stops_after_empty_or_error() {
    let mut calls = 0;
    let mut p = from_fn(move || {
        calls += 1;
        match calls {
            1 => Ok(b"hello".to_vec()),
            2 => Ok(Vec::new()),
            _ => panic!("called after the end"),
        }
    });
    assert_eq!(drain(&mut p, 2).unwrap().concat(), b"hello");
    assert_eq!(p.fill(&mut [0u8; 2]).unwrap(), 0);
    let mut failing = from_fn(|| Err(io::Error::other("nope")));
    assert!(failing.fill(&mut [0u8; 2]).is_err());
}
