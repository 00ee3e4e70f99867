//! `containerd-shim-rs-v2`: the containerd shim v2 binary of the rs runtime
//! (runtime type `io.containerd.rs.v2`). containerd runs it three ways,
//! always with the bundle as cwd:
//!
//! - `start`: find or spawn the long-lived server for this container's
//!   group and print its address ([`start`]);
//! - `delete`: clean up after a dead server and print a `DeleteResponse`
//!   ([`delete`]);
//! - no action: be that server ([`serve`]), re-executed by `start`.
//!
//! `start` and `delete` are synchronous and single-threaded (std I/O only,
//! no async runtime): `start` forks, and a fork from a threaded process may
//! only run async-signal-safe code. Only the server will run an async
//! runtime.

mod delete;
mod error;
mod flags;
mod fork_server;
mod mountinfo;
mod options_file;
mod placement;
mod serve;
mod socket;
mod start;

use std::io::Write;

use flags::{Action, Flags};

fn main() {
    let args = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned());
    std::process::exit(run(args));
}

fn run(args: impl Iterator<Item = String>) -> i32 {
    let flags = match flags::parse(args) {
        Ok(f) => f,
        Err(e) => {
            // Go's flag package exits 2 on a usage error.
            eprintln!("containerd-shim-rs-v2: {e}");
            return 2;
        }
    };
    if flags.help {
        print!("{}", flags::USAGE);
        return 0;
    }
    if flags.version {
        print_version();
        return 0;
    }
    if flags.info {
        eprintln!("containerd-shim-rs-v2: -info is not implemented yet");
        return 1;
    }
    let action = match flags.action() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("containerd-shim-rs-v2: {e}");
            return 2;
        }
    };
    match action {
        // stdout+stderr are the reply: no warnings, no logger.
        Action::Start => reply(start::run(&flags)),
        Action::Delete => {
            StderrLogger::install(flags.debug);
            warn_unknown(&flags);
            reply(delete::run(&flags))
        }
        Action::Serve => serve::run(&flags),
    }
}

/// Prints a successful reply on stdout as-is, or the error on stderr (which
/// containerd turns into the error it reports) and exits 1.
fn reply(result: error::Result<Vec<u8>>) -> i32 {
    match result {
        Ok(bytes) => {
            let mut out = std::io::stdout().lock();
            match out.write_all(&bytes).and_then(|()| out.flush()) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("containerd-shim-rs-v2: write reply: {e}");
                    1
                }
            }
        }
        Err(e) => {
            eprint!("containerd-shim-rs-v2: {e}");
            1
        }
    }
}

fn warn_unknown(flags: &Flags) {
    for w in &flags.warnings {
        log::warn!("{w}");
    }
}

fn print_version() {
    println!("containerd-shim-rs-v2:");
    println!("  Version:  {}", env!("CARGO_PKG_VERSION"));
    println!(
        "  Revision: {}",
        option_env!("RS_GIT_REVISION").unwrap_or("unknown")
    );
    println!();
}

/// `log` records as `level: message` lines on stderr; for `delete`, whose
/// stderr containerd logs as "cleanup warnings".
struct StderrLogger;

static STDERR_LOGGER: StderrLogger = StderrLogger;

impl StderrLogger {
    fn install(debug: bool) {
        let level = if debug {
            log::LevelFilter::Debug
        } else {
            log::LevelFilter::Warn
        };
        if log::set_logger(&STDERR_LOGGER).is_ok() {
            log::set_max_level(level);
        }
    }
}

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            eprintln!(
                "{}: {}",
                record.level().as_str().to_lowercase(),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(args: &[&str]) -> i32 {
        run(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn version_and_help_exit_zero() {
        assert_eq!(code(&["-v"]), 0);
        assert_eq!(code(&["-version"]), 0);
        assert_eq!(code(&["-h"]), 0);
    }

    #[test]
    fn usage_errors_exit_two() {
        assert_eq!(code(&["-id"]), 2);
        assert_eq!(code(&["-id", "x", "frobnicate"]), 2);
    }

    #[test]
    fn start_and_delete_need_a_namespace() {
        assert_eq!(code(&["-id", "x", "delete"]), 1);
    }
}
