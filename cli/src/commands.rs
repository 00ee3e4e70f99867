//! One function per runc verb; each parses nothing itself and calls the
//! engine. Returns the process exit status.

use std::os::fd::OwnedFd;
use std::path::Path;

use anyhow::{bail, Context, Result};
use runtime_core::container::{self, CreateOptions};
use runtime_core::state::Root;

use crate::{foreground, table, Cli, Command, CreateFlags};

/// Writes to stdout, ignoring a closed pipe (`rsrun list | head`): the
/// Rust runtime ignores SIGPIPE, and println! would panic on EPIPE. rsrun
/// keeps SIGPIPE ignored so a hook that exits without reading its stdin
/// cannot kill it.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

pub fn dispatch(cli: Cli) -> Result<i32> {
    if cli.systemd_cgroup {
        bail!("--systemd-cgroup: the systemd cgroup driver is not supported yet; use the cgroupfs driver (omit --systemd-cgroup)");
    }
    let root = Root::new(&cli.root);
    match cli.command {
        Command::Create { flags, id } => create(&root, flags, &id).map(|_| 0),
        Command::Start { id } => container::start(&root, &id).map(|_| 0).map_err(Into::into),
        Command::Run {
            flags,
            detach,
            keep,
            no_subreaper,
            id,
        } => run(&root, flags, &id, detach, keep, no_subreaper),
        Command::State { id } => {
            let v = container::state(&root, &id)?;
            outln!("{}", serde_json::to_string_pretty(&v)?);
            Ok(0)
        }
        Command::List { format, quiet } => list(&root, &format, quiet),
        Command::Kill { all, id, signal } => {
            let sig = container::parse_signal(signal.as_deref().unwrap_or("SIGTERM"))?;
            container::kill(&root, &id, sig, all)?;
            Ok(0)
        }
        Command::Delete { force, id } => match container::delete(&root, &id, force) {
            // As runc: forcing the delete of a container that is gone is not an error.
            Err(runtime_core::Error::NotFound(_)) if force => Ok(0),
            r => r.map(|_| 0).map_err(Into::into),
        },
        Command::Pause { id } => container::pause(&root, &id).map(|_| 0).map_err(Into::into),
        Command::Resume { id } => container::resume(&root, &id).map(|_| 0).map_err(Into::into),
        Command::Ps {
            format,
            id,
            ps_args,
        } => ps(&root, &id, &format, &ps_args),
        Command::Exec(args) => crate::exec::exec(&root, *args),
        Command::Update(args) => crate::update::update(&root, *args),
        Command::Events {
            interval,
            stats,
            id,
        } => crate::events::events(&root, &interval, stats, &id),
        Command::Spec { bundle, rootless } => spec(bundle.as_deref(), rootless),
        Command::Features => {
            // runc prints it with a four-space indent.
            let mut out = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
            serde::Serialize::serialize(&runtime_core::features::document(), &mut ser)?;
            outln!("{}", String::from_utf8(out)?);
            Ok(0)
        }
    }
}

/// Connects to a `--console-socket` path.
pub fn connect_console(path: &Path) -> Result<OwnedFd> {
    let s = std::os::unix::net::UnixStream::connect(path)
        .with_context(|| format!("connect to console socket {}", path.display()))?;
    Ok(s.into())
}

fn create_options(flags: CreateFlags, id: &str, console: Option<OwnedFd>) -> Result<CreateOptions> {
    let console_socket = match (&flags.console_socket, console) {
        (Some(p), _) => Some(connect_console(p)?),
        (None, c) => c,
    };
    Ok(CreateOptions {
        id: id.to_string(),
        bundle: flags.bundle,
        pid_file: flags.pid_file,
        console_socket,
        no_pivot: flags.no_pivot,
        no_new_keyring: flags.no_new_keyring,
        preserve_fds: flags.preserve_fds,
        stdio: None,
    })
}

fn create(root: &Root, flags: CreateFlags, id: &str) -> Result<()> {
    container::create(root, create_options(flags, id, None)?)?;
    Ok(())
}

fn run(
    root: &Root,
    flags: CreateFlags,
    id: &str,
    detach: bool,
    keep: bool,
    no_subreaper: bool,
) -> Result<i32> {
    if detach {
        container::create(root, create_options(flags, id, None)?)?;
        return start_or_delete(root, id).map(|_| 0);
    }
    if !no_subreaper {
        // Reparented descendants come to us, so nothing escapes reaping.
        let _ = nix::sys::prctl::set_child_subreaper(true);
    }
    let signals = foreground::catch_signals()?;
    log::debug!("run {id}: creating");
    let plan = runtime_core::spec::Plan::from_bundle(id, &flags.bundle)?;
    let wants_tty = flags.console_socket.is_none() && plan.terminal();
    let pty = if wants_tty {
        Some(foreground::ConsolePair::new()?)
    } else {
        None
    };
    let console = pty.as_ref().map(|p| p.child_end()).transpose()?;
    let st = container::create_planned(root, plan, create_options(flags, id, console)?)?;
    log::debug!("run {id}: created, init pid {}", st.pid);
    let master = pty.map(|p| p.receive()).transpose();
    let master = match master {
        Ok(m) => m,
        Err(e) => {
            let _ = container::delete(root, id, true);
            return Err(e);
        }
    };
    start_or_delete(root, id)?;
    log::debug!("run {id}: started");
    let code = foreground::supervise(st.pid, master, signals);
    log::debug!("run {id}: init exited ({code:?})");
    if !keep {
        container::delete(root, id, true)?;
        log::debug!("run {id}: deleted");
    }
    code
}

/// Starts; a failed start deletes the container (as `runc run` does).
fn start_or_delete(root: &Root, id: &str) -> Result<()> {
    if let Err(e) = container::start(root, id) {
        let _ = container::delete(root, id, true);
        return Err(e.into());
    }
    Ok(())
}

fn list(root: &Root, format: &str, quiet: bool) -> Result<i32> {
    let all = container::list(root)?;
    if quiet {
        for c in &all {
            outln!("{}", c["id"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    match format {
        "table" => out!("{}", table::containers(&all)),
        "json" if all.is_empty() => outln!("null"),
        "json" => outln!("{}", serde_json::to_string(&all)?),
        other => bail!("invalid format option {other:?}"),
    }
    Ok(0)
}

fn ps(root: &Root, id: &str, format: &str, ps_args: &[String]) -> Result<i32> {
    let pids = container::pids(root, id)?;
    match format {
        "json" => outln!("{}", serde_json::to_string(&pids)?),
        "table" => out!("{}", table::ps(&pids, ps_args)?),
        other => bail!("invalid format option {other:?}"),
    }
    Ok(0)
}

fn spec(bundle: Option<&Path>, rootless: bool) -> Result<i32> {
    let dir = bundle.unwrap_or(Path::new("."));
    let path = dir.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let ids = rootless.then(|| {
        (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    });
    std::fs::write(&path, crate::spec_template::default_spec(ids))
        .with_context(|| format!("write {}", path.display()))?;
    Ok(0)
}
