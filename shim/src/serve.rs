//! The long-lived server (no action), started by `start` with the bundle
//! as cwd, fds 0-2 on /dev/null and the listening socket as fd 3.
//!
//! PLACEHOLDER until the ttrpc task service lands: it announces itself on
//! the bundle's `log` FIFO (stderr when nobody reads the FIFO), keeps the
//! listener open so the socket stays connectable, which is what makes
//! `start`'s shim sharing observable, and blocks until SIGTERM or SIGINT;
//! then it removes its socket file and exits 0. It serves no requests: a
//! real containerd connecting to it will time out.

use std::io::Write;
use std::os::fd::RawFd;
use std::os::unix::fs::OpenOptionsExt;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::socket::{getsockname, UnixAddr};

/// The fd `start` passes the listener on (the Go shims' convention).
pub const LISTENER_FD: RawFd = 3;

/// Runs the placeholder server; returns the process exit code.
pub fn run() -> i32 {
    let Some(socket) = listener_path() else {
        eprintln!(
            "containerd-shim-rs-v2: no listening unix socket on fd {LISTENER_FD}; \
             the server is started by `start`, not by hand"
        );
        return 1;
    };
    announce(&format!(
        "containerd-shim-rs-v2[{}]: task server not implemented yet; \
         holding {} until SIGTERM\n",
        std::process::id(),
        socket.display()
    ));
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    if let Err(e) = set.thread_block() {
        announce(&format!("containerd-shim-rs-v2: block signals: {e}\n"));
        return 1;
    }
    // Single-threaded: blocking the signals in this thread blocks them for
    // the process, so sigwait is the only place they are delivered.
    let _ = set.wait();
    let _ = std::fs::remove_file(&socket);
    0
}

/// The file path of the socket bound to fd 3, if fd 3 is a unix socket
/// with one.
fn listener_path() -> Option<std::path::PathBuf> {
    // A closed fd 3 gives EBADF, a non-socket ENOTSOCK: both None.
    let addr: UnixAddr = getsockname(LISTENER_FD).ok()?;
    addr.path().map(|p| p.to_path_buf())
}

/// Writes `msg` to `./log` (the FIFO containerd copies into its own log)
/// without blocking when nobody reads it, else to stderr.
fn announce(msg: &str) {
    let fifo = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("log");
    match fifo {
        Ok(mut f) => {
            let _ = f.write_all(msg.as_bytes());
        }
        Err(_) => eprint!("{msg}"),
    }
}
