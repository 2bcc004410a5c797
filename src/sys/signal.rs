//! A signal's disposition (sigaction(2)): read, and set back.
//!
//! signal-hook installs its OS handler the first time a signal is registered and never
//! uninstalls it (after the last `unregister` the signal is swallowed by a handler with
//! nothing to run). The loop records the disposition a signal had before and puts it back
//! itself; these are the two system calls that takes.

use std::io;
use std::mem::MaybeUninit;
use std::ptr;

/// One signal's disposition: handler (or `SIG_DFL` / `SIG_IGN`), mask and flags.
#[derive(Clone, Copy)]
pub(crate) struct Disposition(libc::sigaction);

impl Disposition {
    /// The disposition `signal` has now.
    pub(crate) fn get(signal: i32) -> io::Result<Disposition> {
        let mut old = MaybeUninit::<libc::sigaction>::zeroed();
        // SAFETY: a null `act` only reads the disposition; `oldact` points to writable
        // memory the size of a `sigaction`, which the kernel fills in on success.
        if unsafe { libc::sigaction(signal, ptr::null(), old.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: sigaction succeeded, so it wrote the whole struct (and it was zeroed
        // before, a valid value of this plain C struct either way).
        Ok(Disposition(unsafe { old.assume_init() }))
    }

    /// Makes this the disposition of `signal`.
    pub(crate) fn set(&self, signal: i32) -> io::Result<()> {
        // SAFETY: `act` points to a complete `sigaction` that sigaction(2) itself returned
        // (so its handler is SIG_DFL, SIG_IGN or a handler that was installed for this
        // signal, and its flags match that handler); a null `oldact` is allowed.
        if unsafe { libc::sigaction(signal, &self.0, ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Whether `other` runs the same handler (or is the same `SIG_DFL` / `SIG_IGN`).
    pub(crate) fn same_handler(&self, other: &Disposition) -> bool {
        self.0.sa_sigaction == other.0.sa_sigaction
    }
}

impl std::fmt::Debug for Disposition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let handler = match self.0.sa_sigaction {
            libc::SIG_DFL => "SIG_DFL".to_string(),
            libc::SIG_IGN => "SIG_IGN".to_string(),
            h => format!("{h:#x}"),
        };
        f.debug_struct("Disposition")
            .field("handler", &handler)
            .field("flags", &format_args!("{:#x}", self.0.sa_flags))
            .finish()
    }
}
