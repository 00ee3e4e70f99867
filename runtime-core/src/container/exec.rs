//! `exec`: run an extra process inside a running container, joining all of
//! init's namespaces and its cgroup.

use std::convert::Infallible;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use oci_spec::runtime::Process;

use crate::container::{open, require};
use crate::error::{Error, Result};
use crate::namespaces::{self, Kind};
use crate::process::channel::{Channel, Msg};
use crate::process::finalize;
use crate::process::spawn::{spawn, Stage1};
use crate::state::{self, Root, Status};

/// Options of `exec`.
#[derive(Debug)]
pub struct ExecOptions {
    pub process: Process,
    pub console_socket: Option<OwnedFd>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    /// Fds for the process's stdin/stdout/stderr (None: inherit ours).
    pub stdio: Option<[OwnedFd; 3]>,
}

/// Starts the process; returns its pid (a child of the caller).
pub fn exec(root: &Root, id: &str, opts: ExecOptions) -> Result<i32> {
    let (st, lock) = open(root, id)?;
    require(&st, root, &[Status::Created, Status::Running], "exec")?;
    crate::spec::validate_process(&opts.process, "process")?;
    if opts.process.terminal().unwrap_or(false) && opts.console_socket.is_none() {
        return Err(Error::InvalidArgument(
            "cannot allocate tty if runc will detach without setting console socket".into(),
        ));
    }
    let joins: Vec<(Kind, PathBuf)> = st
        .namespaces
        .0
        .iter()
        .map(|n| {
            (
                n.kind,
                PathBuf::from(format!("/proc/{}/ns/{}", st.pid, n.kind.proc_name())),
            )
        })
        .collect();
    let joins = namespaces::open_joins(&joins)?;
    // The fds are open: make sure they belong to init, not to a reused pid.
    if !state::process_matches(st.pid, st.start_time) {
        return Err(Error::InvalidState(
            "cannot exec in a stopped container".into(),
        ));
    }
    let stage = Stage1 {
        joins,
        ..Stage1::default()
    };
    // The container's seccomp profile applies to exec'd processes too.
    let spec = crate::container::start::load_spec(&root.container_dir(id))?;
    let seccomp = crate::spec::seccomp_of(&spec)?;
    let console = opts.console_socket.as_ref().map(|s| s.as_raw_fd());
    let setup = finalize::Setup {
        process: &opts.process,
        console_socket: console,
        mount_console: false,
        preserve_fds: opts.preserve_fds,
        seccomp: seccomp.as_ref(),
        stdio: opts.stdio.as_ref(),
    };
    let spawned = spawn(stage, Some(&st.cgroup), |chan| child(&setup, chan))?;
    drop(lock);
    let reap = |_: &Error| {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(spawned.pid), None);
    };
    spawned.chan.expect(Msg::Ready).inspect_err(reap)?;
    // The child's end of the channel is close-on-exec: EOF means execve
    // succeeded, so the pid we report is already the user's program (and an
    // execve failure still reaches the caller as an error).
    match spawned.chan.recv()? {
        None => {}
        Some(Msg::Error(text)) => return Err(Error::Child(text)).inspect_err(reap),
        Some(other) => {
            return Err(Error::Child(format!(
                "sync: unexpected {other:?} after Ready"
            )))
        }
    }
    if let Some(p) = &opts.pid_file {
        crate::container::create::write_pid_file(p, spawned.pid)?;
    }
    Ok(spawned.pid)
}

fn child(setup: &finalize::Setup, chan: &Channel) -> Result<Infallible> {
    let prepared = finalize::prepare(setup, || Ok(()))?;
    chan.send(&Msg::Ready)?;
    finalize::exec(prepared)
}
