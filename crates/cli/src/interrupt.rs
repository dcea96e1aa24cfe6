//! Ctrl-C and SIGTERM during training: the first asks the trainer to stop at the end of the
//! current step (it then writes a resumable checkpoint and exits with 128 + the signal's
//! number: 130 for SIGINT, 143 for SIGTERM); a second one exits at once with that status.
//!
//! The handlers only store the signal's number in an atomic (signal-hook's async-signal-safe
//! `flag` helpers); the trainer polls it once per step.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};

/// The signal that asked the run to stop, if one did. The handlers are removed when this
/// value drops, so Ctrl-C ends the process at once again after training.
pub struct Interrupt {
    signal: Arc<AtomicUsize>,
    handlers: Vec<signal_hook::SigId>,
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        for id in self.handlers.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

impl Interrupt {
    /// Installs the handlers for SIGINT and SIGTERM.
    pub fn install() -> anyhow::Result<Interrupt> {
        let signal = Arc::new(AtomicUsize::new(0));
        let mut handlers = Vec::new();
        for sig in [SIGINT, SIGTERM] {
            // Registered first, so it runs first: when a signal has already been received,
            // this one exits at once (with the status the shell reports for that signal).
            let already = Arc::new(std::sync::atomic::AtomicBool::new(false));
            handlers.push(signal_hook::flag::register_conditional_shutdown(
                sig,
                128 + sig,
                Arc::clone(&already),
            )?);
            handlers.push(signal_hook::flag::register(sig, already)?);
            handlers.push(signal_hook::flag::register_usize(
                sig,
                Arc::clone(&signal),
                sig as usize,
            )?);
        }
        Ok(Interrupt { signal, handlers })
    }

    /// The signal received (SIGINT or SIGTERM), if any.
    pub fn received(&self) -> Option<Signal> {
        match self.signal.load(Ordering::Relaxed) {
            0 => None,
            n => Some(Signal(n as i32)),
        }
    }
}

/// A received termination signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signal(pub i32);

impl Signal {
    /// The exit status a shell reports for a process this signal ended: 128 + its number.
    pub fn exit_status(self) -> u8 {
        (128 + self.0) as u8
    }
    pub fn name(self) -> &'static str {
        match self.0 {
            SIGINT => "SIGINT (Ctrl-C)",
            SIGTERM => "SIGTERM",
            _ => "a signal",
        }
    }
}
