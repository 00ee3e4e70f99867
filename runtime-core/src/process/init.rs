//! The container's init process, from namespace entry to exec. `run` is
//! the table of contents; each line is one step, in the order the kernel
//! and the OCI spec require.

use std::convert::Infallible;
use std::os::fd::RawFd;

use oci_spec::runtime::Spec;

use crate::cgroups::Cgroup;
use crate::error::{Error, Result, SysContext};
use crate::hooks::{self, Point};
use crate::process::channel::{Channel, Msg};
use crate::process::finalize;
use crate::rootfs;
use crate::spec::Plan;
use crate::syscall::Kernel;

/// What init needs besides the plan.
pub struct InitArgs<'a> {
    pub plan: &'a Plan,
    pub cgroup: Option<&'a Cgroup>,
    /// O_PATH fd of the exec FIFO in the state dir.
    pub fifo: RawFd,
    /// Connected console socket, when the process has a terminal.
    pub console_socket: Option<RawFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// Whether the parent must run createRuntime/prestart hooks mid-way.
    pub runtime_hooks: bool,
    /// Fds for the process's stdin/stdout/stderr (None: inherit ours).
    pub stdio: Option<&'a [std::os::fd::OwnedFd; 3]>,
}

/// Init's whole life: set up, report Ready, wait for `start`, exec.
pub fn run(a: &InitArgs, chan: &Channel) -> Result<Infallible> {
    let plan = a.plan;
    let host_pid = host_pid()?;
    let sys = &Kernel;
    rootfs::prepare(plan, a.cgroup, sys)?;
    if a.runtime_hooks {
        // Why here: createRuntime runs after namespaces and mounts exist, before pivot_root.
        chan.send(&Msg::RuntimeHooks)?;
        chan.expect(Msg::HooksDone)?;
    }
    run_hooks(
        &plan.spec,
        Point::CreateContainer,
        plan,
        host_pid,
        "creating",
    )?;
    rootfs::enter(&plan.rootfs, a.no_pivot, sys)?;
    // Why before the masks: /proc/sys becomes read-only with readonlyPaths.
    apply_sysctl(&plan.spec)?;
    set_names(&plan.spec)?;
    let linux = plan.spec.linux().clone().unwrap_or_default();
    rootfs::mask_paths(&linux.masked_paths().clone().unwrap_or_default(), sys)?;
    rootfs::readonly_paths(&linux.readonly_paths().clone().unwrap_or_default(), sys)?;
    if let Some(adj) = plan.process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .ctx(|| format!("set oomScoreAdj {adj}"))?;
    }
    if !a.no_new_keyring {
        join_session_keyring(&plan.id)?;
    }
    // Why before finish_root: /dev/console may live on the root mount.
    let setup = finalize::Setup {
        process: &plan.process,
        console_socket: a.console_socket,
        mount_console: true,
        preserve_fds: a.preserve_fds,
        seccomp: plan.seccomp.as_ref(),
        stdio: a.stdio,
    };
    let prepared = finalize::prepare(&setup, || rootfs::finish_root(plan, sys))?;
    chan.send(&Msg::Ready)?;
    wait_for_start(a.fifo, || {
        run_hooks(&plan.spec, Point::StartContainer, plan, host_pid, "created")
    })?;
    finalize::exec(prepared)
}

fn run_hooks(spec: &Spec, point: Point, plan: &Plan, pid: i32, status: &str) -> Result<()> {
    let list = point.of(spec);
    if list.is_empty() {
        return Ok(());
    }
    let annotations = spec.annotations().clone().unwrap_or_default();
    let state = hooks::state_json(&plan.id, status, pid, &plan.bundle, &annotations);
    hooks::run_all(point, &list, &state)
}

/// Our pid as the host sees it: /proc is still the host's procfs here.
fn host_pid() -> Result<i32> {
    let link = std::fs::read_link("/proc/self").ctx(|| "readlink /proc/self".into())?;
    link.to_string_lossy()
        .parse()
        .map_err(|_| Error::Child(format!("unexpected /proc/self link {}", link.display())))
}

fn apply_sysctl(spec: &Spec) -> Result<()> {
    let map = spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().clone())
        .unwrap_or_default();
    if map.is_empty() {
        return Ok(());
    }
    // Through the container's own procfs, never across a mount or a symlink
    // (CVE-2025-52881: a racing mount could redirect a /proc write).
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    let proc_dir = nix::fcntl::open(
        "/proc",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| "open /proc".into())?;
    let fs = nix::sys::statfs::fstatfs(&proc_dir).ctx(|| "statfs /proc".into())?;
    if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        return Err(Error::InvalidSpec(
            "sysctl: /proc in the container is not procfs".into(),
        ));
    }
    let how = OpenHow::new()
        .flags(OFlag::O_WRONLY | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_NO_XDEV
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_BENEATH,
        );
    for (k, v) in map {
        let rel = format!("sys/{}", k.replace('.', "/"));
        let fd = openat2(&proc_dir, rel.as_str(), how).ctx(|| format!("open sysctl {k}"))?;
        let mut f = std::fs::File::from(fd);
        use std::io::Write;
        f.write_all(v.as_bytes())
            .ctx(|| format!("write sysctl {k}={v}"))?;
    }
    Ok(())
}

fn set_names(spec: &Spec) -> Result<()> {
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).ctx(|| format!("sethostname {h}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        // SAFETY: the pointer and length describe a live byte slice.
        let rc = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
        if rc != 0 {
            return Err(Error::io(
                format!("setdomainname {d}"),
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

/// A fresh session keyring so containers do not share the host's keys.
fn join_session_keyring(id: &str) -> Result<()> {
    let name = std::ffi::CString::new(format!("_ses.{id}")).expect("id has no NUL");
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: keyctl(JOIN_SESSION_KEYRING, name) reads a valid C string.
    let rc = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        // Keyrings may be unavailable (ENOSYS) or restricted; runc ignores that too.
        if !matches!(
            e.raw_os_error(),
            Some(libc::ENOSYS) | Some(libc::EACCES) | Some(libc::EPERM)
        ) {
            return Err(Error::io("join session keyring", e));
        }
    }
    Ok(())
}

/// Blocks until `start` opens the FIFO for reading, runs the startContainer
/// hooks (so `start` returns only after them), then answers "0", or the
/// hook's error for `start` to report.
fn wait_for_start(fifo: RawFd, hooks: impl FnOnce() -> Result<()>) -> Result<()> {
    use std::io::Write;
    let path = format!("/proc/self/fd/{fifo}");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .ctx(|| "open exec fifo".into())?;
    if let Err(e) = hooks() {
        // One write below PIPE_BUF is atomic: `start` reads it whole.
        let mut msg = format!("E{e}");
        msg.truncate(4000);
        let _ = (&f).write_all(msg.as_bytes());
        return Err(e);
    }
    (&f).write_all(b"0").ctx(|| "write exec fifo".into())
}
