//! Printing that survives a closed output: `rxalign run … | head -1` closes
//! standard output after one line, and every later print would panic with
//! `println!` and stop the remaining runs. Here a closed pipe (EPIPE) means
//! "stop printing, keep working"; any other failure to write (a full disk
//! under a redirection) also stops printing and is reported once the
//! command has finished, so that its exit code says the output is
//! incomplete.

use std::fmt;
use std::io::{ErrorKind, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);
static FAILURE: Mutex<Option<String>> = Mutex::new(None);

/// Writes to standard output.
pub fn write_out(args: fmt::Arguments<'_>) {
    write_to(
        &mut std::io::stdout().lock(),
        &STDOUT_CLOSED,
        "standard output",
        args,
    );
}

/// Writes to standard error.
pub fn write_err(args: fmt::Arguments<'_>) {
    write_to(
        &mut std::io::stderr().lock(),
        &STDERR_CLOSED,
        "standard error",
        args,
    );
}

fn write_to(w: &mut impl Write, closed: &AtomicBool, name: &str, args: fmt::Arguments<'_>) {
    if closed.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = w.write_fmt(args).and_then(|()| w.flush()) {
        closed.store(true, Ordering::Relaxed);
        if e.kind() != ErrorKind::BrokenPipe {
            let mut failure = FAILURE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            failure.get_or_insert_with(|| format!("writing to {name}: {e}"));
        }
    }
}

/// The first failure to write other than a closed pipe, if any.
pub fn failure() -> Option<String> {
    FAILURE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// `println!` to standard output that stops printing on a closed pipe.
macro_rules! outln {
    () => {
        $crate::output::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` to standard output that stops printing on a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!($($arg)*))
    };
}

/// `eprintln!` that stops printing on a closed pipe.
macro_rules! warnln {
    ($($arg:tt)*) => {
        $crate::output::write_err(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {out, outln, warnln};
