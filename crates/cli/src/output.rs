//! Where a command's lines go: `--json` keeps stdout for JSON objects alone (the
//! informational lines go to stderr), and `--quiet` drops them, leaving the final result.
//!
//! The mode is set once, from the command's flags, before anything is printed; [`info!`]
//! prints an informational line according to it.

use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Everything on stdout, for people.
    Normal,
    /// JSON on stdout; informational lines on stderr.
    Json,
    /// Only the final result.
    Quiet,
}

static MODE: AtomicU8 = AtomicU8::new(0);

pub fn set_mode(json: bool, quiet: bool) {
    let m = if json {
        Mode::Json
    } else if quiet {
        Mode::Quiet
    } else {
        Mode::Normal
    };
    MODE.store(m as u8, Ordering::Relaxed);
}

pub fn mode() -> Mode {
    match MODE.load(Ordering::Relaxed) {
        1 => Mode::Json,
        2 => Mode::Quiet,
        _ => Mode::Normal,
    }
}

/// One JSON value on stdout, on one line.
pub fn json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

/// An informational line: stdout normally, stderr with `--json`, nowhere with `--quiet`.
macro_rules! info {
    ($($arg:tt)*) => {
        match $crate::output::mode() {
            $crate::output::Mode::Normal => println!($($arg)*),
            $crate::output::Mode::Json => eprintln!($($arg)*),
            $crate::output::Mode::Quiet => {}
        }
    };
}
pub(crate) use info;
