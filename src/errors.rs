//! Error classification, in one place: which errors mean "the peer is gone", which mean
//! "out of resources" (an accept to back off from), and where a hook's error goes.

use std::io;

use rustix::io::Errno;

/// Returns true for the errors asyncore treats as "the peer is gone" (`_DISCONNECTED`):
/// they lead to `handle_close`, not `handle_error`.
pub fn is_disconnect(err: &io::Error) -> bool {
    matches!(
        Errno::from_io_error(err),
        Some(
            Errno::CONNRESET
                | Errno::NOTCONN
                | Errno::SHUTDOWN
                | Errno::CONNABORTED
                | Errno::PIPE
                | Errno::BADF
        )
    )
}

/// Accept errors that mean "out of descriptors or memory": retrying at once would spin,
/// closing the listener would stop the service for a passing shortage.
pub(crate) fn is_resource_exhaustion(err: &io::Error) -> bool {
    matches!(
        Errno::from_io_error(err),
        Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM)
    )
}

/// Where a hook's error goes: the one policy shared by the loop and the chat layer's
/// scripted transport. `handle_error` returning an error (its default) then closes the
/// channel through `handle_close`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorRoute {
    /// Would-block: nothing happened.
    Ignore,
    /// A disconnect (`is_disconnect`): `handle_close`.
    Close,
    /// Anything else: `handle_error`.
    HandleError,
}

impl ErrorRoute {
    pub(crate) fn of(err: &io::Error) -> ErrorRoute {
        if err.kind() == io::ErrorKind::WouldBlock {
            ErrorRoute::Ignore
        } else if is_disconnect(err) {
            ErrorRoute::Close
        } else {
            ErrorRoute::HandleError
        }
    }
}
