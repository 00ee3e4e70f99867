//! How `start` makes the server: a plain fork, no exec. `start` is
//! single-threaded and has no async runtime, so its child may run any Rust;
//! it turns into the server in place and never returns into `start`.
//!
//! Why not re-execute the binary (as the Go shims must): containerd sends
//! `Create` as soon as `start` has printed the address, and a re-executed
//! server would first have to be loaded, linked and initialised; the
//! forked one is ready at once. What an exec would have given, the child
//! does by hand:
//! - fds 0-2 on /dev/null (never containerd's pipe: containerd reads
//!   `start`'s stdout to EOF), the listener on fd 3 (close-on-exec: no
//!   container or hook inherits it), every other fd closed;
//! - its own process group, cwd = bundle, the bootstrap variables in the
//!   environment, a core-scheduling cookie when containerd asked for one.
//!
//! The server's argv stays `start`'s (ps shows `… -id ID start`).

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;

use nix::unistd::{fork as sys_fork, ForkResult};
use rs_proto::StartInput;

use crate::error::{Error, Result};
use crate::flags::Flags;
use crate::serve::LISTENER_FD;
use crate::start::Plan;

/// `prctl(PR_SCHED_CORE, PR_SCHED_CORE_CREATE, 0, PIDTYPE_TGID, 0)`
/// (linux/prctl.h, linux/pid.h): a core-scheduling cookie for the server,
/// inherited by every container process it starts.
const PR_SCHED_CORE: libc::c_int = 62;
const PR_SCHED_CORE_CREATE: libc::c_ulong = 1;
const PIDTYPE_TGID: libc::c_ulong = 1;

/// Forks the server for `plan`, serving `listener`; returns its pid.
pub fn fork(flags: &Flags, plan: &Plan, listener: &UnixListener) -> Result<i32> {
    let io = |op, source| Error::Io { op, source };
    let devnull = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| io("open /dev/null", e))?;
    let mut server = flags.clone();
    server.namespace = plan.namespace.clone();
    server.id = plan.id.clone();
    server.address = plan.grpc_address.clone();
    server.args.clear();
    server.warnings.clear();
    // containerd ≥ 2.3 may stop exporting the legacy variables; the server
    // reads them, so fill them from BootstrapParams where missing.
    let mut env = Vec::new();
    if let StartInput::Bootstrap(p) = &plan.input {
        for (key, value) in [
            ("TTRPC_ADDRESS", &p.containerd_ttrpc_address),
            ("GRPC_ADDRESS", &p.containerd_grpc_address),
            ("NAMESPACE", &plan.namespace),
        ] {
            if std::env::var_os(key).is_none() && !value.is_empty() {
                env.push((key, value.clone()));
            }
        }
    }
    let sched_core = std::env::var_os("SCHED_CORE").is_some_and(|v| !v.is_empty());
    // The child's setup closes `done_w` (with every fd above 3): `start`
    // answers containerd only once the server has its process group and
    // its fds, never while it still holds containerd's stdout.
    let (done_r, done_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| io("pipe for the shim server", e.into()))?;
    // SAFETY: `start` is single-threaded (no runtime, no helper threads),
    // so the child is a complete copy and may run ordinary code.
    match unsafe { sys_fork() } {
        Ok(ForkResult::Parent { child }) => {
            drop(done_w);
            let mut byte = [0u8; 1];
            // EOF once the child's setup is done (or it died trying).
            while let Err(nix::errno::Errno::EINTR) = nix::unistd::read(&done_r, &mut byte) {}
            Ok(child.as_raw())
        }
        Ok(ForkResult::Child) => {
            let code = match become_server(devnull.as_raw_fd(), listener.as_raw_fd(), sched_core) {
                Ok(()) => {
                    for (key, value) in env {
                        std::env::set_var(key, value);
                    }
                    crate::serve::run(&server)
                }
                Err(_) => 1,
            };
            std::process::exit(code)
        }
        Err(e) => Err(io("fork shim server", e.into())),
    }
}

/// In the child: stdio on /dev/null, the listener on fd 3 (close-on-exec),
/// every other fd closed, a process group of its own, the cookie.
fn become_server(devnull: RawFd, listener: RawFd, sched_core: bool) -> std::io::Result<()> {
    let check = |rc: libc::c_int| {
        if rc < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    // SAFETY: setpgid(0, 0) on ourselves.
    check(unsafe { libc::setpgid(0, 0) })?;
    if sched_core {
        // SAFETY: prctl with integer arguments only.
        check(unsafe { libc::prctl(PR_SCHED_CORE, PR_SCHED_CORE_CREATE, 0, PIDTYPE_TGID, 0) })?;
    }
    for target in 0..=2 {
        // SAFETY: dup2 between descriptors this process owns.
        check(unsafe { libc::dup2(devnull, target) })?;
    }
    if listener != LISTENER_FD {
        // SAFETY: as above.
        check(unsafe { libc::dup2(listener, LISTENER_FD) })?;
    }
    // SAFETY: fcntl on the fd just placed.
    check(unsafe { libc::fcntl(LISTENER_FD, libc::F_SETFD, libc::FD_CLOEXEC) })?;
    // Everything else `start` had open (its own copies of the listener and
    // /dev/null, and the pipe `start` waits on, included). The objects
    // owning them are never dropped: this process exits from `fork`
    // without returning.
    // SAFETY: close_range with integer arguments only.
    let closed =
        unsafe { libc::syscall(libc::SYS_close_range, LISTENER_FD + 1, libc::c_uint::MAX, 0) };
    if closed < 0 {
        // Kernels before 5.9: close one by one.
        for fd in LISTENER_FD + 1..1024 {
            // SAFETY: closing a number that may or may not be open.
            unsafe { libc::close(fd) };
        }
    }
    Ok(())
}
