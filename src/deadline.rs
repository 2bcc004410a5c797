//! A channel's deadlines in one place: the idle and connect timeouts (the channel's
//! settings), the activity stamps they count from, the accept back-off schedule, the
//! loop timer armed for the earliest of them, and what is due when it fires.

use std::time::{Duration, Instant};

use crate::timer::{Action, Timeout, TimerId, Timers};
use crate::token::Token;

/// The first pause after an accept ran out of resources; it doubles per failed retry.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// The longest pause: once descriptors free up, accepting resumes within this.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The loop timer armed for a channel's earliest deadline, and that deadline (kept in
/// the map's entry).
pub(crate) type Armed = Option<(Instant, TimerId)>;

/// A channel's timeouts and accept back-off. Allocated when a timeout is set or
/// accepting backs off: most channels have none.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    idle: Option<Duration>,
    connect: Option<Duration>,
    /// The last read or write event (kept only while an idle timeout is set).
    last_active: Option<Instant>,
    connect_started: Option<Instant>,
    backoff: Option<Backoff>,
}

/// Accepting paused after the OS ran out of descriptors or memory.
#[derive(Clone, Copy, Debug)]
struct Backoff {
    delay: Duration,
    resume_at: Instant,
    paused: bool,
}

impl Deadlines {
    pub(crate) fn idle(&self) -> Option<Duration> {
        self.idle
    }

    pub(crate) fn connect(&self) -> Option<Duration> {
        self.connect
    }

    /// Sets (or clears) the idle timeout; the clock starts at `now`.
    pub(crate) fn set_idle(&mut self, timeout: Option<Duration>, now: Instant) {
        self.idle = timeout;
        self.last_active = timeout.map(|_| now);
    }

    /// Sets (or clears) the connect timeout; set while `connecting`, it counts from `now`
    /// unless the connect's start was recorded.
    pub(crate) fn set_connect(
        &mut self,
        timeout: Option<Duration>,
        connecting: bool,
        now: Instant,
    ) {
        self.connect = timeout;
        if connecting && self.connect_started.is_none() {
            // Set after `connect`: count from now (the start was not recorded).
            self.connect_started = Some(now);
        }
    }

    /// A connect started at `now`.
    pub(crate) fn start_connect(&mut self, now: Instant) {
        self.connect_started = Some(now);
    }

    /// Activity at `now` (a read or write event, output sent, being added): the idle
    /// clock restarts, if an idle timeout is set.
    #[inline]
    pub(crate) fn stamp_activity(&mut self, now: Instant) {
        if self.idle.is_some() {
            self.last_active = Some(now);
        }
    }

    pub(crate) fn accept_paused(&self) -> bool {
        self.backoff.is_some_and(|b| b.paused)
    }

    /// An accept ran out of resources at `now`: pause accepting, for twice the last
    /// pause (at least the minimum, at most the maximum). True for the first pause of a
    /// series (to report it).
    pub(crate) fn pause_accepting(&mut self, now: Instant) -> bool {
        let (delay, first) = match self.backoff {
            Some(b) => ((b.delay * 2).min(ACCEPT_BACKOFF_MAX), false),
            None => (ACCEPT_BACKOFF_MIN, true),
        };
        self.backoff = Some(Backoff {
            delay,
            resume_at: now + delay,
            paused: true,
        });
        first
    }

    /// An accept went through: the back-off series ends. True if there was one.
    pub(crate) fn end_backoff(&mut self) -> bool {
        self.backoff.take().is_some()
    }

    /// The earliest instant at which the loop must look at this channel again.
    pub(crate) fn next(&self, connecting: bool) -> Option<Instant> {
        let backoff = self.backoff.filter(|b| b.paused).map(|b| b.resume_at);
        let connect = match (connecting, self.connect, self.connect_started) {
            (true, Some(t), Some(start)) => start.checked_add(t),
            _ => None,
        };
        // A timeout too large for the clock (`checked_add` fails) is "never".
        let idle = match (self.idle, self.last_active) {
            (Some(t), Some(last)) => last.checked_add(t),
            _ => None,
        };
        [backoff, connect, idle].into_iter().flatten().min()
    }

    /// The channel's timer fired at `now`: a back-off that ended resumes accepting; an
    /// expired connect timeout (checked first) or idle timeout is returned, its clock
    /// restarted from `now`.
    pub(crate) fn expire(&mut self, connecting: bool, now: Instant) -> Option<Timeout> {
        if let Some(b) = &mut self.backoff {
            if b.paused && b.resume_at <= now {
                b.paused = false;
            }
        }
        let due = |start: Option<Instant>, timeout: Option<Duration>| matches!((start, timeout), (Some(s), Some(t)) if s.checked_add(t).is_some_and(|at| at <= now));
        if connecting && due(self.connect_started, self.connect) {
            self.connect_started = Some(now);
            Some(Timeout::Connect)
        } else if due(self.last_active, self.idle) {
            self.last_active = Some(now);
            Some(Timeout::Idle)
        } else {
            None
        }
    }
}

/// Restarts the idle clock of a channel's deadlines, if it has an idle timeout.
#[inline]
pub(crate) fn stamp_activity(deadlines: &mut Option<Box<Deadlines>>, now: Instant) {
    if let Some(d) = deadlines {
        d.stamp_activity(now);
    }
}

/// Arms a loop timer for a channel's earliest deadline (idle, connect, back-off) if
/// none is armed for that time or earlier. A later deadline is left to the armed timer,
/// which re-arms when it fires early for what is then due: activity on a channel with
/// an idle timeout costs no timer operation.
pub(crate) fn arm<S>(
    timers: &mut Timers<S>,
    token: Token,
    deadlines: Option<&Deadlines>,
    connecting: bool,
    armed: &mut Armed,
) {
    let Some(at) = deadlines.and_then(|d| d.next(connecting)) else {
        return;
    };
    if let Some((armed_at, id)) = *armed {
        if armed_at <= at {
            return;
        }
        timers.cancel(id);
    }
    let id = timers.insert(at, Action::Channel(token));
    *armed = Some((at, id));
}

/// Cancels the armed timer, if any (the channel is closing).
pub(crate) fn disarm<S>(timers: &mut Timers<S>, armed: &mut Armed) {
    if let Some((_, id)) = armed.take() {
        timers.cancel(id);
    }
}
