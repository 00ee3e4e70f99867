//! The last steps of every container process, init's and exec's alike:
//! session and terminal, rlimits, identity and privileges, working directory
//! (verified to be inside the root: CVE-2024-21626), executable lookup,
//! close-on-exec for every fd we hold, and the execve itself.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Process;

use crate::console;
use crate::error::{Error, Result, SysContext};
use crate::process::user;
use crate::seccomp::{self, Program};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How a container process is finished off (see [`prepare`]).
pub struct Setup<'a> {
    pub process: &'a Process,
    /// Connected console socket, when the process has a terminal.
    pub console_socket: Option<RawFd>,
    /// Bind the pty over /dev/console (init only).
    pub mount_console: bool,
    pub preserve_fds: u32,
    pub seccomp: Option<&'a Program>,
    /// Fds to become stdin, stdout and stderr (a shim's FIFOs or pipes);
    /// None keeps the caller's stdio.
    pub stdio: Option<&'a [OwnedFd; 3]>,
}

/// dup2s the given fds onto 0, 1 and 2 (without close-on-exec).
fn install_stdio(fds: &[OwnedFd; 3]) -> Result<()> {
    for (target, fd) in fds.iter().enumerate() {
        let (src, dst) = (fd.as_raw_fd(), target as RawFd);
        // SAFETY: dup2/fcntl on descriptor numbers we own; no memory involved.
        let rc = unsafe {
            if src == dst {
                libc::fcntl(dst, libc::F_SETFD, 0)
            } else {
                libc::dup2(src, dst)
            }
        };
        if rc < 0 {
            return Err(Error::io(
                format!("install stdio fd {dst}"),
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

/// Ready-to-exec program.
pub struct Prepared {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

/// Session, terminal (master sent over `console_socket`), rlimits, identity,
/// cwd, environment and executable; marks every fd above stdio +
/// `preserve_fds` close-on-exec.
/// `before_identity` runs after the terminal is set up and before privileges
/// drop (init uses it to make the root read-only).
///
/// Seccomp goes in as late as possible: right before returning when
/// no_new_privs is set; otherwise before the identity change, while we still
/// hold CAP_SYS_ADMIN (installing a filter needs one or the other).
pub fn prepare(s: &Setup, before_identity: impl FnOnce() -> Result<()>) -> Result<Prepared> {
    let (p, console_socket, preserve_fds, seccomp) =
        (s.process, s.console_socket, s.preserve_fds, s.seccomp);
    let nnp = p.no_new_privileges().unwrap_or(false);
    if let Some(fds) = s.stdio {
        install_stdio(fds)?;
    }
    nix::unistd::setsid().ctx(|| "setsid".into())?;
    if p.terminal().unwrap_or(false) {
        let socket = console_socket.ok_or_else(|| {
            Error::InvalidArgument("terminal requested but no console socket".into())
        })?;
        let pty = console::open_pty()?;
        if s.mount_console {
            console::mount_console(&pty.slave, &crate::syscall::Kernel)?;
        }
        if let Some(size) = p.console_size() {
            console::resize(pty.slave_raw(), size.height() as u16, size.width() as u16)?;
        }
        console::become_controlling(&pty.slave)?;
        console::send_master(socket, &pty.master)?;
    }
    before_identity()?;
    user::apply_rlimits(&p.rlimits().clone().unwrap_or_default())?;
    if let (Some(prog), false) = (seccomp, nnp) {
        seccomp::install(prog)?;
    }
    user::apply_identity(p)?;
    enter_cwd(p.cwd())?;
    let envp = environment(p);
    let args = p.args().clone().unwrap_or_default();
    let path = find_executable(&args[0], &envp)?;
    let cs = |s: &str| {
        CString::new(s).map_err(|_| Error::InvalidSpec(format!("process: NUL byte in {s:?}")))
    };
    let argv = args.iter().map(|a| cs(a)).collect::<Result<Vec<_>>>()?;
    let envp = envp.iter().map(|e| cs(e)).collect::<Result<Vec<_>>>()?;
    let path = CString::new(path.as_os_str().as_bytes()).expect("path has no NUL");
    cloexec_from(3 + preserve_fds)?;
    if let (Some(prog), true) = (seccomp, nnp) {
        seccomp::install(prog)?;
    }
    Ok(Prepared { path, argv, envp })
}

/// execve(2); returns only on failure.
pub fn exec(p: Prepared) -> Result<Infallible> {
    let err = nix::unistd::execve(&p.path, &p.argv, &p.envp).unwrap_err();
    Err(Error::sys(format!("exec {:?}", p.path), err))
}

/// chdir and verify the result is reachable from our root: a cwd reached
/// through a leaked host fd shows up as "(unreachable)" or ENOENT.
fn enter_cwd(cwd: &Path) -> Result<()> {
    nix::unistd::chdir(cwd).ctx(|| {
        format!(
            "chdir to cwd {:?} set in config.json",
            cwd.display().to_string()
        )
    })?;
    let real = nix::unistd::getcwd()
        .ctx(|| format!("cwd {} is outside the container root", cwd.display()))?;
    if !real.is_absolute() || real.starts_with("(unreachable)") {
        return Err(Error::InvalidSpec(format!(
            "cwd {} is outside the container root",
            cwd.display()
        )));
    }
    Ok(())
}

/// The process environment; HOME is added from the container's /etc/passwd
/// when missing, as runc does.
fn environment(p: &Process) -> Vec<String> {
    let mut env = p.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = home_of(p.user().uid()).unwrap_or_else(|| "/".into());
        env.push(format!("HOME={home}"));
    }
    env
}

fn home_of(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
    })
}

/// PATH lookup as execvp does, with the container's environment.
pub fn find_executable(name: &str, env: &[String]) -> Result<PathBuf> {
    let executable =
        |p: &Path| nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok() && p.is_file();
    if name.contains('/') {
        let p = PathBuf::from(name);
        if executable(&p) {
            return Ok(p);
        }
        return Err(Error::Child(format!(
            "exec: {name:?}: stat {name}: no such file or directory or not executable"
        )));
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    path.split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(name))
        .find(|p| executable(p))
        .ok_or_else(|| {
            Error::Child(format!(
                "exec: {name:?}: executable file not found in $PATH"
            ))
        })
}

/// Marks every fd >= `first` close-on-exec.
fn cloexec_from(first: u32) -> Result<()> {
    // SAFETY: close_range with integer arguments; CLOSE_RANGE_CLOEXEC only sets flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    // Older kernels: walk /proc/self/fd.
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .ctx(|| "list /proc/self/fd".into())?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd >= first as RawFd)
        .collect();
    for fd in fds {
        // SAFETY: fcntl on a descriptor number; failure (already closed) is harmless.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_lookup_uses_container_env() {
        let env = vec!["PATH=/nonexistent:/bin".to_string()];
        assert_eq!(
            find_executable("sh", &env).unwrap(),
            PathBuf::from("/bin/sh")
        );
        let err = find_executable("no-such-prog", &env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("executable file not found in $PATH"), "{err}");
        assert!(find_executable("/bin/sh", &[]).is_ok());
    }
}
