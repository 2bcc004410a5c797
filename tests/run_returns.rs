//! `run(None, None)` returns once no channel and no timer is left, whichever way the last
//! channel closes: `close_when_done`, `request_close` or `close`, asked from a timer, a
//! `Remote` call, a signal handler or another channel's hook.

mod util;

use std::cell::Cell;
use std::io::{self, Write};
use std::rc::Rc;
use std::time::Duration;

use sockloop::{signal, Backend, Channel, Context, Dispatcher, EventLoop, LoopHandle, Token};
use util::within;

#[derive(Clone, Copy, Debug)]
enum How {
    CloseWhenDone,
    RequestClose,
    Close,
}

#[derive(Clone, Copy, Debug)]
enum From {
    Timer,
    Remote,
    Signal,
    OtherChannel,
}

/// An idle channel that counts its `handle_close` calls.
struct Idle {
    closes: Rc<Cell<usize>>,
}

impl Dispatcher for Idle {
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        self.closes.set(self.closes.get() + 1);
        ctx.close();
        Ok(())
    }
}

/// Closes `target` the chosen way from its first read event, then itself.
struct Closer {
    target: Token,
    how: How,
}

impl Dispatcher for Closer {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 16];
        ctx.recv(&mut buf)?;
        match self.how {
            How::CloseWhenDone => ctx.channel_mut(self.target).unwrap().close_when_done(),
            How::RequestClose => ctx.channel_mut(self.target).unwrap().request_close(),
            How::Close => assert!(ctx.close_channel(self.target)),
        }
        ctx.close();
        Ok(())
    }
}

fn close_from_loop(lp: &mut LoopHandle, target: Token, how: How) {
    match how {
        How::CloseWhenDone => lp.channel_mut(target).unwrap().close_when_done(),
        How::RequestClose => lp.channel_mut(target).unwrap().request_close(),
        How::Close => assert!(lp.close(target)),
    }
}

/// Runs the scenario on its own thread (so a hang fails the test) and returns how many
/// times the closed channel's `handle_close` ran.
fn returns(backend: Backend, from: From, how: How) -> usize {
    within(
        10,
        &format!("run() after {how:?} from {from:?}"),
        move || {
            let mut ev = EventLoop::with_backend(backend).unwrap();
            let closes = Rc::new(Cell::new(0));
            let (ch, _peer) = Channel::pair().unwrap();
            let target = ev
                .add(
                    ch,
                    Idle {
                        closes: closes.clone(),
                    },
                )
                .unwrap();
            let mut _keep = None;
            match from {
                From::Timer => {
                    ev.call_later(Duration::from_millis(5), move |lp: &mut LoopHandle, _| {
                        close_from_loop(lp, target, how)
                    });
                }
                From::Remote => {
                    let remote = ev.remote().unwrap();
                    std::thread::spawn(move || {
                        remote
                            .call(move |lp: &mut LoopHandle| close_from_loop(lp, target, how))
                            .unwrap();
                    });
                }
                From::Signal => {
                    let once = Cell::new(false);
                    ev.add_signal_handler(signal::SIGUSR2, move |lp: &mut LoopHandle, _| {
                        if !once.replace(true) {
                            close_from_loop(lp, target, how);
                        }
                    })
                    .unwrap();
                    ev.call_later(Duration::from_millis(5), |_: &mut LoopHandle, _| {
                        rustix::process::kill_process(
                            rustix::process::getpid(),
                            rustix::process::Signal::USR2,
                        )
                        .unwrap();
                    });
                }
                From::OtherChannel => {
                    let (other, mut other_peer) = std::os::unix::net::UnixStream::pair().unwrap();
                    ev.add(Channel::from_socket(other).unwrap(), Closer { target, how })
                        .unwrap();
                    other_peer.write_all(b"x").unwrap();
                    _keep = Some(other_peer);
                }
            }
            ev.run(None, None).unwrap();
            assert!(ev.is_empty(), "run returned with channels left");
            if matches!(from, From::Signal) {
                ev.remove_signal_handler(signal::SIGUSR2);
            }
            closes.get()
        },
    )
}

fn check(backend: Backend, from: From) {
    for how in [How::CloseWhenDone, How::RequestClose, How::Close] {
        let closes = returns(backend, from, how);
        let expected = match how {
            How::Close => 0, // asyncore's close(): no handle_close
            How::CloseWhenDone | How::RequestClose => 1,
        };
        assert_eq!(closes, expected, "{backend}: {how:?} from {from:?}");
    }
}

fn run_returns_after_a_close_from_a_timer(backend: Backend) {
    check(backend, From::Timer);
}

fn run_returns_after_a_close_from_a_remote_call(backend: Backend) {
    check(backend, From::Remote);
}

fn run_returns_after_a_close_from_a_signal_handler(backend: Backend) {
    check(backend, From::Signal);
}

fn run_returns_after_a_close_from_another_channels_hook(backend: Backend) {
    check(backend, From::OtherChannel);
}

backend_tests!(
    run_returns_after_a_close_from_a_timer,
    run_returns_after_a_close_from_a_remote_call,
    run_returns_after_a_close_from_a_signal_handler,
    run_returns_after_a_close_from_another_channels_hook,
);
