//! Producers on a live loop: a producer's error reaches `handle_error` after everything
//! queued before it was sent, and the peer then sees the connection close (never a hang);
//! files stream byte-exact through `FileProducer` (sendfile on sockets, reads on pipes)
//! and `ReaderProducer`.

use crate::util;

use std::cell::RefCell;
use std::io::{self, Read};
use std::rc::Rc;

use crate::util::{pattern, read_available, run_until};
use sockloop::{
    producer, Backend, Channel, Context, Dispatcher, EventLoop, FileProducer, ReaderProducer,
};

type Log = Rc<RefCell<Vec<String>>>;

/// Records `handle_error` and `handle_close`, keeping the defaults' behaviour (report and
/// close).
struct Recorder(Log);

impl Dispatcher for Recorder {
    fn handle_error(&mut self, ctx: &mut Context<'_>, err: io::Error) -> io::Result<()> {
        self.0.borrow_mut().push(format!("error: {err}"));
        let _ = ctx;
        Err(err)
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.0.borrow_mut().push("close".into());
        ctx.close();
        Ok(())
    }
}

fn temp_file(name: &str, data: &[u8]) -> std::path::PathBuf {
    let path =
        std::env::temp_dir().join(format!("sockloop-producers-{name}-{}", std::process::id()));
    std::fs::write(&path, data).unwrap();
    path
}

/// Queues `head`, then a producer that yields `good` bytes and fails with EISDIR, then a
/// `close_when_done`; a non-blocking TCP peer reads.
fn producer_error_reaches_handle_error_after_earlier_output(backend: Backend) {
    let mut event_loop = EventLoop::with_backend(backend).unwrap();
    let (server, mut client) = util::tcp_pair();
    client.set_nonblocking(true).unwrap();
    socket2::SockRef::from(&server)
        .set_send_buffer_size(16 * 1024)
        .unwrap();
    socket2::SockRef::from(&client)
        .set_recv_buffer_size(16 * 1024)
        .unwrap();
    let log = Log::default();
    let token = event_loop
        .add(Channel::from_socket(server).unwrap(), Recorder(log.clone()))
        .unwrap();
    let head = pattern(3_000_000); // far more than the socket buffers: the queue fills
    let good = 100_000;
    let ch = event_loop.channel_mut(token).unwrap();
    ch.push(&head).unwrap();
    let mut left = good;
    ch.push_with_producer(producer::from_fn(move || {
        if left == 0 {
            return Err(io::Error::from_raw_os_error(21)); // EISDIR
        }
        let n = left.min(7000);
        left -= n;
        Ok(vec![b'p'; n])
    }))
    .unwrap();
    ch.close_when_done();
    let mut got = Vec::new();
    let mut eof = false;
    run_until(&mut event_loop, "the channel to close", |el| {
        eof = read_available(&mut client, &mut got) || eof;
        el.is_empty()
    });
    run_until(&mut event_loop, "end of file at the peer", |_| {
        eof = read_available(&mut client, &mut got) || eof;
        eof
    });
    assert_eq!(
        got.len(),
        head.len() + good,
        "all bytes before the failure arrive"
    );
    assert!(got[..head.len()] == head[..]);
    assert!(got[head.len()..].iter().all(|&b| b == b'p'));
    let log = log.borrow();
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(log[0].starts_with("error: Is a directory"), "{log:?}");
    assert_eq!(log[1], "close");
}

/// A producer that fails at once fails the push itself: the caller sees the error.
fn producer_failing_at_once_fails_the_push(backend: Backend) {
    let mut event_loop = EventLoop::with_backend(backend).unwrap();
    let (server, _client) = util::tcp_pair();
    let token = event_loop
        .add(
            Channel::from_socket(server).unwrap(),
            Recorder(Log::default()),
        )
        .unwrap();
    let ch = event_loop.channel_mut(token).unwrap();
    let err = ch
        .push_with_producer(producer::from_fn(|| Err(io::Error::other("no source"))))
        .unwrap_err();
    assert_eq!(err.to_string(), "no source");
    assert!(!ch.has_pending_output(), "the failed producer is dropped");
    ch.push(b"still usable").unwrap();
}

/// Sends `HEAD` then `producer` over `channel`, reading at `client`; returns what
/// arrived.
fn stream_through(
    backend: Backend,
    channel: Channel,
    mut client: impl Read,
    producer: impl sockloop::Producer + 'static,
) -> Vec<u8> {
    let mut event_loop = EventLoop::with_backend(backend).unwrap();
    let log = Log::default();
    let token = event_loop.add(channel, Recorder(log.clone())).unwrap();
    let ch = event_loop.channel_mut(token).unwrap();
    ch.push(b"HEAD").unwrap();
    ch.push_with_producer(producer).unwrap();
    ch.close_when_done();
    let mut got = Vec::new();
    let mut eof = false;
    run_until(&mut event_loop, "the stream to end", |el| {
        eof = read_available(&mut client, &mut got) || eof;
        eof && el.is_empty()
    });
    assert_eq!(*log.borrow(), ["close"], "no error");
    got
}

fn file_producer_streams_byte_exact_over_tcp_unix_and_pipes(backend: Backend) {
    let data = pattern(20_000_000);
    let path = temp_file(backend.name(), &data);
    let mut expect = b"HEAD".to_vec();
    expect.extend_from_slice(&data);

    let (server, client) = util::tcp_pair();
    client.set_nonblocking(true).unwrap();
    let ch = Channel::from_socket(server).unwrap();
    let got = stream_through(backend, ch, client, FileProducer::open(&path).unwrap());
    assert!(
        got == expect,
        "TCP: {} bytes, expected {}",
        got.len(),
        expect.len()
    );

    let (ch, peer) = util::unix_channel();
    let range = FileProducer::range(std::fs::File::open(&path).unwrap(), 12_345, 1_000_000);
    let got = stream_through(backend, ch, peer, range.unwrap());
    assert!(got[4..] == data[12_345..1_012_345], "Unix range");

    // A pipe is a file channel: no sendfile, the fill path.
    let (reader, writer) = std::io::pipe().unwrap();
    rustix::io::ioctl_fionbio(&reader, true).unwrap();
    let ch = Channel::from_owned_fd(writer.into()).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let got = stream_through(backend, ch, reader, ReaderProducer::new(file));
    assert!(got == expect, "pipe: {} bytes", got.len());
    std::fs::remove_file(&path).unwrap();
}

/// A file truncated while it is being sent: the error reaches `handle_error`, the peer
/// gets what was sent and then end of file, never a hang.
fn file_truncated_mid_stream_is_routed_to_handle_error(backend: Backend) {
    let data = pattern(8_000_000);
    let path = temp_file(&format!("trunc-{}", backend.name()), &data);
    let mut event_loop = EventLoop::with_backend(backend).unwrap();
    let (server, mut client) = util::tcp_pair();
    client.set_nonblocking(true).unwrap();
    socket2::SockRef::from(&server)
        .set_send_buffer_size(16 * 1024)
        .unwrap();
    socket2::SockRef::from(&client)
        .set_recv_buffer_size(16 * 1024)
        .unwrap();
    let log = Log::default();
    let token = event_loop
        .add(Channel::from_socket(server).unwrap(), Recorder(log.clone()))
        .unwrap();
    let ch = event_loop.channel_mut(token).unwrap();
    ch.push_with_producer(FileProducer::open(&path).unwrap())
        .unwrap();
    // The socket buffers hold far less than 8 MB: most of the file is still to send.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(6_000_000)
        .unwrap();
    let mut got = Vec::new();
    let mut eof = false;
    run_until(&mut event_loop, "the channel to close", |el| {
        eof = read_available(&mut client, &mut got) || eof;
        el.is_empty()
    });
    run_until(&mut event_loop, "end of file at the peer", |_| {
        eof = read_available(&mut client, &mut got) || eof;
        eof
    });
    assert_eq!(got.len(), 6_000_000);
    assert!(got == data[..6_000_000]);
    let log = log.borrow();
    assert!(log[0].contains("file ended at offset 6000000"), "{log:?}");
    assert_eq!(log[1..], ["close"]);
    std::fs::remove_file(&path).unwrap();
}

backend_tests!(
    producer_error_reaches_handle_error_after_earlier_output,
    producer_failing_at_once_fails_the_push,
    file_producer_streams_byte_exact_over_tcp_unix_and_pipes,
    file_truncated_mid_stream_is_routed_to_handle_error,
);
