//! `create`: validate the bundle, make the state dir and cgroup, spawn init
//! and drive it to Ready. Anything created is removed again if a later step
//! fails (the [`Undo`] guard), so a failed create leaves nothing behind.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cgroups::Cgroup;
use crate::error::{Error, Result, SysContext};
use crate::hooks::{self, Point};
use crate::namespaces::{self, Kind};
use crate::process::channel::Msg;
use crate::process::fork;
use crate::process::init::{self, InitArgs};
use crate::process::spawn::{spawn, Stage1};
use crate::spec::Plan;
use crate::state::{self, Lock, Root, State};

/// Options of `create` (and the create half of `run`).
#[derive(Debug, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    /// A connected console socket (the pty master is sent over it).
    pub console_socket: Option<OwnedFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// Fds to become the container process's stdin, stdout and stderr (e.g.
    /// a shim's FIFOs); None: it inherits the caller's stdio.
    pub stdio: Option<[OwnedFd; 3]>,
}

/// Removes what a failed create made.
struct Undo<'a> {
    dir: PathBuf,
    cgroup: Option<&'a Cgroup>,
    pid: Option<i32>,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
        }
        if let Some(cg) = self.cgroup {
            // Also what a failure left whose pid we never learned (killed
            // processes leave the cgroup at exit, before being reaped).
            for _ in 0..200 {
                let pids = cg.pids().unwrap_or_default();
                if pids.is_empty() {
                    break;
                }
                for p in pids {
                    let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            if let Err(e) = cg.destroy() {
                log::warn!("cleanup: {e}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Creates the container; returns its state (init waits for `start`).
pub fn create(root: &Root, opts: CreateOptions) -> Result<State> {
    let plan = Plan::from_bundle(&opts.id, &opts.bundle)?;
    create_planned(root, plan, opts)
}

/// Creates the container from an already validated plan (callers that need
/// to look at the spec first, e.g. for `terminal`, parse it only once).
pub fn create_planned(root: &Root, plan: Plan, opts: CreateOptions) -> Result<State> {
    if plan.terminal() && opts.console_socket.is_none() {
        return Err(Error::InvalidArgument(
            "cannot allocate tty if runc will detach without setting console socket".into(),
        ));
    }
    if !plan.terminal() && opts.console_socket.is_some() {
        return Err(Error::InvalidArgument(
            "cannot use console socket if runc will not detach or allocate tty".into(),
        ));
    }
    log::debug!("create {}: plan ready", plan.id);
    let mut cgroup = Cgroup::for_path(&plan.cgroups_path)?;
    // Before the state dir and the cgroup exist: a bad value leaves nothing behind.
    let linux = plan.spec.linux().as_ref();
    if let Some(r) = linux.and_then(|l| l.resources().as_ref()) {
        cgroup.check(r)?;
    }
    state::ensure_root(root)?;
    let dir = root.container_dir(&plan.id);
    // 0711: the container's user reaches the exec FIFO through its fd only.
    let made =
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o711).create(&dir);
    match made {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::AlreadyExists(plan.id.clone()))
        }
        Err(e) => return Err(Error::path("create state dir", &dir, e)),
    }
    let mut undo = Undo {
        dir: dir.clone(),
        cgroup: None,
        pid: None,
        armed: true,
    };
    let _lock = Lock::take(&dir)?;
    let config = serde_json::to_vec(&plan.spec).expect("spec serializes");
    std::fs::write(dir.join(state::CONFIG), config).ctx(|| "save config.json copy".into())?;
    cgroup.create()?;
    log::debug!("create {}: cgroup made", plan.id);
    let cgroup = &cgroup;
    undo.cgroup = Some(cgroup);
    let fifo = make_fifo(&dir)?;
    // Visible as "creating" (pid 0) until init is ready.
    let mut st = State {
        id: plan.id.clone(),
        pid: 0,
        start_time: 0,
        bundle: plan.bundle.clone(),
        rootfs: plan.rootfs.clone(),
        created: state::now_rfc3339(),
        owner: state::owner_name(nix::unistd::geteuid().as_raw()),
        annotations: plan.spec.annotations().clone().unwrap_or_default(),
        cgroup: cgroup.clone(),
        namespaces: plan.namespaces.clone(),
        cgroups_path: plan.cgroups_path.clone(),
        poststart: Point::Poststart.of(&plan.spec),
        poststop: Point::Poststop.of(&plan.spec),
    };
    st.save(root)?;
    let pid = spawn_init(&plan, &opts, cgroup, &fifo, &mut undo)?;
    st.pid = pid;
    st.start_time = state::start_time(pid)
        .ok_or_else(|| Error::Child("container init exited during create".into()))?;
    st.save(root)?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    undo.armed = false;
    Ok(st)
}

fn make_fifo(dir: &std::path::Path) -> Result<OwnedFd> {
    use nix::sys::stat::Mode;
    let path = dir.join(state::FIFO);
    nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o622))
        .ctx(|| "create exec fifo".into())?;
    // mkfifo honours umask; the container user must be able to open it for writing.
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        &path,
        Mode::from_bits_truncate(0o622),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .ctx(|| "chmod exec fifo".into())?;
    nix::fcntl::open(
        &path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open exec fifo".into())
}

fn stage1_of(plan: &Plan) -> Result<Stage1> {
    let joins: Vec<(Kind, PathBuf)> = plan
        .namespaces
        .0
        .iter()
        .filter_map(|n| Some((n.kind, n.path.clone()?)))
        .collect();
    let linux = plan.spec.linux().clone().unwrap_or_default();
    let time_offsets = plan.namespaces.creates(Kind::Time).then(|| {
        linux
            .time_offsets()
            .clone()
            .unwrap_or_default()
            .iter()
            .map(|(clock, o)| {
                format!(
                    "{clock} {} {}\n",
                    o.secs().unwrap_or(0),
                    o.nanosecs().unwrap_or(0)
                )
            })
            .collect::<String>()
    });
    Ok(Stage1 {
        joins: namespaces::open_joins(&joins)?,
        new_user: plan.namespaces.creates(Kind::User),
        uid_maps: linux.uid_mappings().clone().unwrap_or_default(),
        gid_maps: linux.gid_mappings().clone().unwrap_or_default(),
        unshare: plan.namespaces.unshare_flags(),
        time_offsets: time_offsets.filter(|s| !s.is_empty()),
        resources: Some(resources_of(&linux)),
    })
}

/// The cgroup resources to apply; unset devices still mean "deny all but
/// the defaults", never "allow all".
fn resources_of(linux: &oci_spec::runtime::Linux) -> oci_spec::runtime::LinuxResources {
    let mut resources = linux.resources().clone().unwrap_or_default();
    if resources.devices().is_none() {
        resources.set_devices(Some(Vec::new()));
    }
    resources
}

/// Spawns init and drives it to Ready, running the runtime-namespace hooks
/// when it asks.
fn spawn_init(
    plan: &Plan,
    opts: &CreateOptions,
    cgroup: &Cgroup,
    fifo: &OwnedFd,
    undo: &mut Undo,
) -> Result<i32> {
    let runtime_hooks: Vec<_> = [Point::Prestart, Point::CreateRuntime]
        .into_iter()
        .map(|p| (p, p.of(&plan.spec)))
        .filter(|(_, h)| !h.is_empty())
        .collect();
    let args = InitArgs {
        plan,
        cgroup: Some(cgroup),
        fifo: fifo.as_raw_fd(),
        console_socket: opts.console_socket.as_ref().map(|s| s.as_raw_fd()),
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        preserve_fds: opts.preserve_fds,
        runtime_hooks: !runtime_hooks.is_empty(),
        stdio: opts.stdio.as_ref(),
    };
    let spawned = spawn(stage1_of(plan)?, Some(cgroup), |chan| {
        init::run(&args, chan)
    })?;
    undo.pid = Some(spawned.pid);
    log::debug!("create {}: init {} spawned", plan.id, spawned.pid);
    loop {
        let msg = spawned
            .chan
            .expect_any("becoming ready")
            .map_err(|e| match e {
                Error::Child(m) if m.contains("exited before") => {
                    undo.pid = None; // reaped here
                    Error::Child(format!("{m}: {}", fork::describe_exit(spawned.pid)))
                }
                e => e,
            })?;
        match msg {
            Msg::Ready => return Ok(spawned.pid),
            Msg::RuntimeHooks => {
                let annotations = plan.spec.annotations().clone().unwrap_or_default();
                let st = hooks::state_json(
                    &plan.id,
                    "creating",
                    spawned.pid,
                    &plan.bundle,
                    &annotations,
                );
                for (point, list) in &runtime_hooks {
                    hooks::run_all(*point, list, &st)?;
                }
                spawned.chan.send(&Msg::HooksDone)?;
            }
            other => {
                return Err(Error::Child(format!(
                    "sync: unexpected {other:?} from init"
                )))
            }
        }
    }
}

/// Writes a pid file atomically.
pub fn write_pid_file(path: &std::path::Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("rsrun-tmp");
    std::fs::write(&tmp, pid.to_string()).map_err(|e| Error::path("write pid file", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::path("write pid file", path, e))
}
