//! Regressions found in review, one test each.

use std::io;

use sockloop::{Channel, Domain, Socket, Type};

/// An empty push must not reach the OS as a zero-length send: on a SOCK_SEQPACKET socket
/// that would deliver an empty record to the peer.
#[test]
fn empty_push_sends_nothing() {
    let (a, peer) = Socket::pair(Domain::UNIX, Type::SEQPACKET, None).unwrap();
    peer.set_nonblocking(true).unwrap();
    let mut ch = Channel::from_socket(a).unwrap();
    ch.push(b"").unwrap();
    ch.push_vec(Vec::new()).unwrap();
    assert!(!ch.has_pending_output());
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 16];
    match peer.recv(&mut buf) {
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
        Ok(n) => panic!("the peer received a record of {n} bytes from an empty push"),
    }
    ch.push(b"x").unwrap();
    assert_eq!(peer.recv(&mut buf).unwrap(), 1);
}
