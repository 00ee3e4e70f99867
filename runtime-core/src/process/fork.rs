//! fork/clone wrappers and the "never return into the parent's code" rule
//! for children: a child runs one closure, reports its error, and `_exit`s,
//! so no drop guard of the parent's stack ever runs twice.

use std::convert::Infallible;

use crate::error::{Error, Result};
use crate::process::channel::Channel;

/// Which side of a fork we are on.
pub enum Forked {
    Parent(i32),
    Child,
}

/// fork(2). Callers must be single-threaded (the CLI is; see DESIGN.md).
pub fn fork() -> Result<Forked> {
    // SAFETY: the engine only forks from single-threaded processes (rsrun),
    // so the child inherits no locks held by other threads.
    match unsafe { libc::fork() } {
        -1 => Err(Error::io("fork", std::io::Error::last_os_error())),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// `struct clone_args` of clone3(2) (linux/sched.h, version 2: with
/// `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// linux/sched.h (Linux 5.7).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// fork(2) straight into the cgroup2 directory `cgroup_dir` (clone3 with
/// CLONE_INTO_CGROUP): the child never runs outside it, and no pid is
/// migrated (a migration waits for an RCU grace period when the cgroup
/// rwsem was idle: ~20 ms). `Ok(None)` when the kernel cannot (before 5.7,
/// or refused): the caller forks and moves the pid instead.
pub fn fork_into_cgroup(cgroup_dir: std::os::fd::BorrowedFd<'_>) -> Result<Option<Forked>> {
    use std::os::fd::AsRawFd;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup_dir.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: clone3 without CLONE_VM or a stack behaves like fork (the
    // child continues on a copy-on-write copy of our stack); `args` is a
    // valid clone_args of the size passed; the caller is single-threaded.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match rc {
        0 => Ok(Some(Forked::Child)),
        pid if pid > 0 => Ok(Some(Forked::Parent(pid as i32))),
        _ => match std::io::Error::last_os_error().raw_os_error() {
            // No clone3 / no CLONE_INTO_CGROUP / a cgroup it cannot enter
            // directly: the classic way still works.
            Some(libc::ENOSYS | libc::E2BIG | libc::EINVAL | libc::EOPNOTSUPP | libc::EBUSY) => {
                Ok(None)
            }
            _ => Err(Error::io("clone3", std::io::Error::last_os_error())),
        },
    }
}

/// clone(2) with CLONE_PARENT: the new process is a sibling of the caller,
/// i.e. a child of the caller's parent. No new stack: like fork.
pub fn clone_parent() -> Result<Forked> {
    let flags = (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: raw clone without CLONE_VM behaves like fork (copy-on-write of
    // the whole address space, child continues on its own copy of the stack);
    // the caller is single-threaded.
    let rc = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match rc {
        -1 => Err(Error::io("clone", std::io::Error::last_os_error())),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as i32)),
    }
}

/// Runs a child's body; on error sends it up the channel and exits 1.
/// Never returns.
pub fn child_main(chan: &Channel, body: impl FnOnce() -> Result<Infallible>) -> ! {
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
    let text = match res {
        Ok(Ok(never)) => match never {},
        Ok(Err(e)) => e.to_string(),
        Err(_) => "container process panicked during setup".to_string(),
    };
    chan.send_error(&text);
    // SAFETY: _exit skips atexit handlers and destructors, which belong to
    // the parent's copy of this address space.
    unsafe { libc::_exit(1) }
}

/// Exits the child successfully without running destructors.
pub fn exit_child(code: i32) -> ! {
    // SAFETY: see child_main.
    unsafe { libc::_exit(code) }
}

/// Names the current process (shown by `ps`), e.g. "rs:[1:STAGE]".
pub fn set_name(name: &str) {
    if let Ok(c) = std::ffi::CString::new(name) {
        let _ = nix::sys::prctl::set_name(&c);
    }
}

/// Waits for a child that is exiting and says how it ended, e.g. "killed by
/// signal SIGKILL (out of memory? check linux.resources.memory)".
pub fn describe_exit(pid: i32) -> String {
    describe(nix::sys::wait::waitpid(
        nix::unistd::Pid::from_raw(pid),
        None,
    ))
}

/// Like [`describe_exit`] for a child that has already exited; None (and
/// nothing reaped) while it still runs.
pub fn exited_how(pid: i32) -> Option<String> {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    match waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::StillAlive) => None,
        other => Some(describe(other)),
    }
}

fn describe(status: nix::Result<nix::sys::wait::WaitStatus>) -> String {
    use nix::sys::wait::WaitStatus;
    match status {
        Ok(WaitStatus::Exited(_, c)) => format!("exit status {c}"),
        Ok(WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGKILL, _)) => {
            "killed by SIGKILL (out of memory? check linux.resources.memory)".into()
        }
        Ok(WaitStatus::Signaled(_, s, _)) => format!("killed by {s}"),
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("wait failed: {e}"),
    }
}

/// Waits for a child and returns its wait status as a shell-style code.
pub fn wait_code(pid: i32) -> Result<i32> {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, c)) => return Ok(c),
            Ok(WaitStatus::Signaled(_, s, _)) => return Ok(128 + s as i32),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys(format!("wait for {pid}"), e)),
        }
    }
}
