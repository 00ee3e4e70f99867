//! The parent side of the spawn protocol and stage 1 (namespace entry), shared
//! by `create` (init) and `exec`. See the diagram in `process/mod.rs`.

use std::convert::Infallible;
use std::os::fd::AsFd;

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, LinuxResources};

use crate::cgroups::Cgroup;
use crate::error::{Error, Result, SysContext};
use crate::namespaces::{self, JoinFd};
use crate::process::channel::{self, Channel, Msg};
use crate::process::fork::{self, child_main, Forked};

/// What stage 1 does before cloning the container process.
#[derive(Debug)]
pub struct Stage1 {
    /// Namespaces to join, already opened, in join order.
    pub joins: Vec<JoinFd>,
    /// Create a new user namespace (the parent then writes the maps).
    pub new_user: bool,
    pub uid_maps: Vec<LinuxIdMapping>,
    pub gid_maps: Vec<LinuxIdMapping>,
    /// Other namespaces to create.
    pub unshare: CloneFlags,
    /// Contents for /proc/self/timens_offsets when a time namespace is created.
    pub time_offsets: Option<String>,
    /// cgroup limits, applied by the parent once stage 1 is in the cgroup (as
    /// runc does): a limit below what is already used then fails with the
    /// kernel's EBUSY naming the file, instead of OOM-killing init later.
    pub resources: Option<LinuxResources>,
}

impl Default for Stage1 {
    fn default() -> Self {
        Stage1 {
            joins: Vec::new(),
            new_user: false,
            uid_maps: Vec::new(),
            gid_maps: Vec::new(),
            unshare: CloneFlags::empty(),
            time_offsets: None,
            resources: None,
        }
    }
}

/// A spawned container process (a child of the caller) and its channel.
#[derive(Debug)]
pub struct Spawned {
    pub pid: i32,
    pub chan: Channel,
}

/// Forks stage 1, drives it through namespace entry, and returns the final
/// process, which runs `job` and must exec (or fail). On error nothing is left
/// running.
pub fn spawn(
    stage: Stage1,
    cgroup: Option<&Cgroup>,
    job: impl FnOnce(&Channel) -> Result<Infallible>,
) -> Result<Spawned> {
    let (parent, child) = channel::pair()?;
    // On a cgroup2-only host stage 1 is born in the container's cgroup.
    let v2_dir = cgroup.and_then(Cgroup::v2_dir_fd);
    let born_inside = match &v2_dir {
        Some(dir) => fork::fork_into_cgroup(dir.as_fd())?,
        None => None,
    };
    let placed = born_inside.is_some();
    if placed && matches!(born_inside, Some(Forked::Parent(_))) {
        log::debug!("stage 1 born in its cgroup (clone3 CLONE_INTO_CGROUP)");
    }
    let forked = match born_inside {
        Some(f) => f,
        None => fork::fork()?,
    };
    match forked {
        Forked::Child => {
            drop(parent);
            child_main(&child, || stage1(&stage, &child, job))
        }
        Forked::Parent(s1) => {
            drop(child);
            let res = drive_stage1(s1, &stage, cgroup, placed, &parent);
            match res {
                Ok(pid) => {
                    let _ = fork::wait_code(s1);
                    Ok(Spawned { pid, chan: parent })
                }
                // EOF: stage 1 died without a word; say how.
                Err(Error::Child(msg)) if msg.contains("exited before") => {
                    Err(Error::Child(format!("{msg}: {}", fork::describe_exit(s1))))
                }
                Err(e) => match fork::exited_how(s1) {
                    // It died on its own (e.g. OOM-killed by the limits just
                    // applied): that is the real error.
                    Some(how) => Err(Error::Child(format!("{e}: container process {how}"))),
                    None => {
                        let _ = kill(Pid::from_raw(s1), Signal::SIGKILL);
                        let _ = fork::wait_code(s1);
                        Err(e)
                    }
                },
            }
        }
    }
}

fn drive_stage1(
    s1: i32,
    stage: &Stage1,
    cgroup: Option<&Cgroup>,
    placed: bool,
    chan: &Channel,
) -> Result<i32> {
    if stage.new_user {
        chan.expect(Msg::UserNsCreated)?;
        write_id_maps(s1, &stage.uid_maps, &stage.gid_maps)?;
        chan.send(&Msg::MapsWritten)?;
    }
    // Stage 1 creates its namespaces meanwhile (the new netns alone takes
    // about as long as this first cgroup.procs write).
    if let Some(cg) = cgroup {
        if !placed {
            cg.add_pid(s1)?;
        }
        if let Some(r) = &stage.resources {
            cg.apply(r)?;
        }
    }
    chan.send(&Msg::Go)?;
    match chan.expect_any("reporting its pid")? {
        Msg::InitPid(pid) => Ok(pid),
        other => Err(Error::Child(format!(
            "sync: expected InitPid, got {other:?}"
        ))),
    }
}

fn stage1(
    stage: &Stage1,
    chan: &Channel,
    job: impl FnOnce(&Channel) -> Result<Infallible>,
) -> Result<Infallible> {
    fork::set_name("rs:[1:STAGE]");
    // Before anything can enter the container's pid namespace: the host
    // binary's /proc/PID/exe must never be reachable from it (CVE-2019-5736).
    // The flag is inherited by the clone below and reset by its execve.
    nix::sys::prctl::set_dumpable(false).ctx(|| "prctl(PR_SET_DUMPABLE)".into())?;
    reset_signals();
    for j in &stage.joins {
        namespaces::join(j)?;
    }
    if stage.new_user {
        namespaces::create(CloneFlags::CLONE_NEWUSER)?;
        chan.send(&Msg::UserNsCreated)?;
        chan.expect(Msg::MapsWritten)?;
        become_ns_root()?;
    }
    // Everything but the cgroup namespace can be made while the parent
    // places us in the cgroup; the cgroup namespace must be rooted there.
    let cgroupns = CloneFlags::CLONE_NEWCGROUP;
    namespaces::create(stage.unshare - cgroupns)?;
    chan.expect(Msg::Go)?;
    namespaces::create(stage.unshare & cgroupns)?;
    if let Some(offsets) = &stage.time_offsets {
        std::fs::write("/proc/self/timens_offsets", offsets)
            .ctx(|| "write /proc/self/timens_offsets".into())?;
    }
    // The child shares our channel end: it may say nothing before InitPid
    // is on the wire, or the parent reads its Ready where it expects
    // InitPid (and never learns the pid). It waits on this gate.
    let (gate_r, gate_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe (init gate)".into())?;
    match fork::clone_parent()? {
        Forked::Child => {
            fork::set_name("rs:[2:INIT]");
            drop(gate_w);
            child_main(chan, || {
                wait_gate(gate_r)?;
                job(chan)
            })
        }
        Forked::Parent(pid) => {
            drop(gate_r);
            chan.send(&Msg::InitPid(pid))?;
            nix::unistd::write(&gate_w, &[1]).ctx(|| "open init gate".into())?;
            fork::exit_child(0)
        }
    }
}

/// Blocks until stage 1 has sent InitPid (one byte), or fails when stage 1
/// exited without doing so (EOF).
fn wait_gate(gate: std::os::fd::OwnedFd) -> Result<()> {
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(&gate, &mut byte) {
            Ok(1) => return Ok(()),
            Ok(_) => {
                return Err(Error::Child(
                    "stage 1 exited before reporting init's pid".into(),
                ))
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::io("read init gate", std::io::Error::from(e))),
        }
    }
}

/// Container processes start with a clean signal state: nothing blocked and
/// every disposition default. Ignored signals survive execve, and the Rust
/// runtime ignores SIGPIPE in rsrun itself; a caller may have blocked or
/// ignored others.
fn reset_signals() {
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
    // The kernel's struct sigaction; all zero is SIG_DFL with no flags.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: 0,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for signo in 1..=64 {
        if signo == libc::SIGKILL || signo == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads a valid struct; SIG_DFL runs no code.
        // The raw call also reaches signals 32/33, which glibc reserves and
        // its wrapper refuses, yet which a caller may have left ignored.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signo,
                &dfl as *const KernelSigaction,
                0usize,
                8usize,
            );
        }
    }
}

/// Takes uid/gid 0 inside a fresh user namespace (when 0 is mapped).
fn become_ns_root() -> Result<()> {
    let root = nix::unistd::Gid::from_raw(0);
    nix::unistd::setresgid(root, root, root).ctx(|| "setresgid(0) in user namespace".into())?;
    let root = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresuid(root, root, root).ctx(|| "setresuid(0) in user namespace".into())
}

/// Formats OCI id mappings as a /proc/PID/{uid,gid}_map body.
pub fn format_id_map(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

fn write_id_maps(pid: i32, uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<()> {
    let uid_path = format!("/proc/{pid}/uid_map");
    std::fs::write(&uid_path, format_id_map(uids)).ctx(|| format!("write {uid_path}"))?;
    let gid_path = format!("/proc/{pid}/gid_map");
    std::fs::write(&gid_path, format_id_map(gids)).ctx(|| format!("write {gid_path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_map_format() {
        let m: Vec<LinuxIdMapping> = serde_json::from_str(
            r#"[{"containerID":0,"hostID":1000,"size":1},{"containerID":1,"hostID":100000,"size":65536}]"#,
        )
        .unwrap();
        assert_eq!(format_id_map(&m), "0 1000 1\n1 100000 65536\n");
    }
}
