//! How the loop tells the user about errors and panics it handles: through the `log`
//! facade when a logger is listening, else one line on stderr (Python's
//! `logging.lastResort`, and asyncore's printed compact traceback).

use std::any::Any;
use std::fmt;
use std::io::Write;

use log::{Level, LevelFilter};

/// Reports `args` at `level`.
///
/// With a logger installed (the `log` crate's maximum level is not `Off`), the record goes
/// to it, and its own filters decide. Without one, warnings and errors are written to
/// stderr, one line each, so that a failure is never silent; a failed write to stderr (a
/// closed pipe) is ignored, never a panic. Nothing is written twice.
pub(crate) fn report(level: Level, args: fmt::Arguments<'_>) {
    if log::max_level() != LevelFilter::Off {
        log::log!(level, "{args}");
    } else if level <= Level::Warn {
        let line = format!("sockloop: {}: {args}\n", level.as_str().to_lowercase());
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// Reports at error level; see [`report`].
macro_rules! error {
    ($($arg:tt)+) => { $crate::report::report(log::Level::Error, format_args!($($arg)+)) };
}

/// Reports at warning level; see [`report`].
macro_rules! warning {
    ($($arg:tt)+) => { $crate::report::report(log::Level::Warn, format_args!($($arg)+)) };
}

pub(crate) use {error, warning};

/// A panic's message: its `&str` or `String` payload, or a note that it had neither.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(a panic payload that is not a string)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_read_from_str_and_string_payloads() {
        let s = std::panic::catch_unwind(|| panic!("static")).unwrap_err();
        assert_eq!(panic_message(&*s), "static");
        let n = 7;
        let s = std::panic::catch_unwind(|| panic!("formatted {n}")).unwrap_err();
        assert_eq!(panic_message(&*s), "formatted 7");
        let s = std::panic::catch_unwind(|| std::panic::panic_any(5u8)).unwrap_err();
        assert!(panic_message(&*s).contains("not a string"));
    }
}
