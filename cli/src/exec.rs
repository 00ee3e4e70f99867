//! `rsrun exec`: builds the process (from `--process` or from the
//! container's own process plus flags, as runc does) and runs it detached or
//! supervised in the foreground.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{Capability, Process};
use runtime_core::container::{self, ExecOptions};
use runtime_core::state::Root;

use crate::commands::connect_console;
use crate::foreground;

#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// Path to an AF_UNIX socket which will receive the pty master
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Current working directory in the container
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Set environment variables
    #[arg(short, long)]
    env: Vec<String>,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// UID (format: <uid>[:<gid>])
    #[arg(short, long)]
    user: Option<String>,
    /// Additional gids
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// Path to the process.json
    #[arg(short, long)]
    process: Option<PathBuf>,
    /// Detach from the container's process
    #[arg(short, long)]
    detach: bool,
    /// Specify the file to write the process id to
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Set the asm process label for the process commonly used with selinux
    #[arg(long = "process-label")]
    process_label: Option<String>,
    /// Set the apparmor profile for the process
    #[arg(long)]
    apparmor: Option<String>,
    /// Set the no new privileges value for the process
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// Add a capability to the bounding set for the process
    #[arg(short, long)]
    cap: Vec<String>,
    /// Pass N additional file descriptors to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    /// Run the process in an (existing) sub-cgroup(s)
    #[arg(long)]
    cgroup: Vec<String>,
    /// Allow exec in a paused container
    #[arg(long = "ignore-paused")]
    ignore_paused: bool,
    id: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn exec(root: &Root, a: ExecArgs) -> Result<i32> {
    if !a.cgroup.is_empty() {
        bail!("--cgroup: exec into a sub-cgroup is not supported yet");
    }
    let process = build_process(root, &a)?;
    let terminal = process.terminal().unwrap_or(false);
    if a.detach && terminal && a.console_socket.is_none() {
        bail!("cannot allocate tty if runc will detach without setting console socket");
    }
    let pty = (terminal && a.console_socket.is_none())
        .then(foreground::ConsolePair::new)
        .transpose()?;
    let console_socket = match (&a.console_socket, &pty) {
        (Some(p), _) => Some(connect_console(p)?),
        (None, Some(p)) => Some(p.child_end()?),
        _ => None,
    };
    let opts = ExecOptions {
        process,
        console_socket,
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
        stdio: None,
    };
    let signals = (!a.detach).then(foreground::catch_signals).transpose()?;
    let pid = container::exec(root, &a.id, opts)?;
    let master = pty.map(|p| p.receive()).transpose()?;
    match signals {
        Some(sfd) => foreground::supervise(pid, master, sfd),
        None => Ok(0),
    }
}

fn build_process(root: &Root, a: &ExecArgs) -> Result<Process> {
    if let Some(path) = &a.process {
        let text = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        return Ok(runtime_core::spec::parse_process(&text)?);
    }
    if a.command.is_empty() {
        bail!("exec: no command given (args or --process are required)");
    }
    let dir = root.container_dir(&a.id);
    let spec = match std::fs::read(dir.join(runtime_core::state::CONFIG)) {
        Ok(t) => runtime_core::spec::parse(&t)?,
        Err(_) => return Err(runtime_core::Error::NotFound(a.id.clone()).into()),
    };
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(a.env.iter().cloned());
    p.set_env(Some(env));
    if let Some(u) = &a.user {
        let (uid, gid) = parse_user(u)?;
        p.user_mut().set_uid(uid);
        p.user_mut().set_gid(gid.unwrap_or(0));
    }
    if !a.additional_gids.is_empty() {
        p.user_mut()
            .set_additional_gids(Some(a.additional_gids.clone()));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    add_caps(&mut p, &a.cap)?;
    Ok(p)
}

/// Strict `UID[:GID]` (numbers only): a lenient parser ran processes as the
/// wrong user in another runtime (CVE-2026-30892).
pub fn parse_user(s: &str) -> Result<(u32, Option<u32>)> {
    let num = |x: &str| -> Result<u32> {
        if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
            bail!("invalid --user {s:?}: expected UID[:GID] with numeric ids");
        }
        x.parse()
            .with_context(|| format!("invalid --user {s:?}: id out of range"))
    };
    match s.split_once(':') {
        Some((u, g)) => Ok((num(u)?, Some(num(g)?))),
        None => Ok((num(s)?, None)),
    }
}

impl ExecArgs {
    /// The container's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The capabilities `--cap` adds.
    pub fn caps(&self) -> &[String] {
        &self.cap
    }
}

/// `--cap` adds to bounding, effective and permitted (never inheritable:
/// CVE-2022-29162).
fn add_caps(p: &mut Process, caps: &[String]) -> Result<()> {
    if caps.is_empty() {
        return Ok(());
    }
    let mut c = p.capabilities().clone().unwrap_or_default();
    for name in caps {
        let cap: Capability = serde_json::from_value(serde_json::Value::String(name.clone()))
            .map_err(|_| anyhow::anyhow!("unknown capability {name:?}"))?;
        let mut b = c.bounding().clone().unwrap_or_default();
        b.insert(cap);
        c.set_bounding(Some(b));
        let mut e = c.effective().clone().unwrap_or_default();
        e.insert(cap);
        c.set_effective(Some(e));
        let mut pm = c.permitted().clone().unwrap_or_default();
        pm.insert(cap);
        c.set_permitted(Some(pm));
    }
    p.set_capabilities(Some(c));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_parsing_is_strict() {
        assert_eq!(parse_user("1000").unwrap(), (1000, None));
        assert_eq!(parse_user("1000:5").unwrap(), (1000, Some(5)));
        for bad in [
            "",
            "abc",
            "1000:",
            ":5",
            "-1",
            "1000:5:6",
            " 1",
            "99999999999",
        ] {
            assert!(parse_user(bad).is_err(), "{bad:?}");
        }
    }
}
