//! Foreground `run` and `exec`: forward signals to the container process,
//! proxy its pty to our terminal (raw mode, window size), reap it, and
//! return its exit status as a shell would (128+N for a signal).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// A private console socket: the container sends its pty master to one end.
pub struct ConsolePair {
    ours: OwnedFd,
    theirs: OwnedFd,
}

impl ConsolePair {
    pub fn new() -> Result<ConsolePair> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .context("create console socketpair")?;
        Ok(ConsolePair { ours, theirs })
    }

    /// The end handed to the engine as the console socket.
    pub fn child_end(&self) -> Result<OwnedFd> {
        self.theirs.try_clone().context("dup console socket")
    }

    /// Receives the pty master the container sent.
    pub fn receive(self) -> Result<OwnedFd> {
        drop(self.theirs);
        Ok(runtime_core::console::recv_master(self.ours.as_raw_fd())?)
    }
}

/// Restores the terminal mode on drop.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

fn forwarded_signals() -> SigSet {
    let mut set = SigSet::all();
    for s in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
    ] {
        set.remove(s);
    }
    set
}

/// Blocks the signals we forward and returns a signalfd for them. Called
/// before the container process is spawned, so a signal sent to us at any
/// point is queued for it rather than killing us half-way (the container's
/// processes start with an empty mask regardless).
pub fn catch_signals() -> Result<SignalFd> {
    let set = forwarded_signals();
    set.thread_block().context("block signals")?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).context("signalfd")
}

/// Supervises `pid` until it exits; returns its exit status.
pub fn supervise(pid: i32, master: Option<OwnedFd>, sfd: SignalFd) -> Result<i32> {
    let _raw = master.as_ref().and_then(|_| RawMode::enter());
    if let Some(m) = &master {
        copy_winsize(m);
    }
    let mut stdin_open = master.is_some();
    let mut buf = vec![0u8; 32 * 1024];
    // The process may have exited before the signal was blocked.
    if let Some(code) = reap(pid)? {
        return Ok(drain_and(code, master.as_ref(), &mut buf));
    }
    loop {
        let stdin = std::io::stdin();
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = &master {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => r.context("poll")?,
        };
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[0] {
            while let Ok(Some(info)) = sfd.read_signal() {
                let signo = info.ssi_signo as i32;
                if signo == libc::SIGCHLD {
                    if let Some(code) = reap(pid)? {
                        return Ok(drain_and(code, master.as_ref(), &mut buf));
                    }
                } else if signo == libc::SIGWINCH {
                    if let Some(m) = &master {
                        copy_winsize(m);
                    }
                } else if let Ok(sig) = Signal::try_from(signo) {
                    let _ = kill(Pid::from_raw(pid), sig);
                }
            }
        }
        if let Some(m) = &master {
            if ready.get(1) == Some(&true) {
                let _ = pump(m.as_fd(), std::io::stdout().as_fd(), &mut buf);
            }
            if ready.get(2) == Some(&true) && !pump(stdin.as_fd(), m.as_fd(), &mut buf) {
                stdin_open = false;
            }
        }
    }
}

/// Copies one chunk; false on EOF or error.
fn pump(from: BorrowedFd, to: BorrowedFd, buf: &mut [u8]) -> bool {
    match nix::unistd::read(from, buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => write_all(to, &buf[..n]),
    }
}

fn write_all(to: BorrowedFd, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        match nix::unistd::write(to, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
    true
}

/// Flushes what the pty still holds after the process exited.
fn drain_and(code: i32, master: Option<&OwnedFd>, buf: &mut [u8]) -> i32 {
    if let Some(m) = master {
        loop {
            let mut fds = [PollFd::new(m.as_fd(), PollFlags::POLLIN)];
            if !matches!(poll(&mut fds, PollTimeout::from(50u8)), Ok(n) if n > 0) {
                break;
            }
            if !pump(m.as_fd(), std::io::stdout().as_fd(), buf) {
                break;
            }
        }
    }
    code
}

/// Reaps every exited child; returns `pid`'s status once it is among them.
fn reap(pid: i32) -> Result<Option<i32>> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, c)) if p.as_raw() == pid => return Ok(Some(c)),
            Ok(WaitStatus::Signaled(p, s, _)) if p.as_raw() == pid => {
                return Ok(Some(128 + s as i32))
            }
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => return Ok(None),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("waitpid"),
        }
    }
}

fn copy_winsize(master: &OwnedFd) {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes into a valid winsize struct.
    let rc = unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TIOCGWINSZ, &mut ws) };
    if rc == 0 {
        let _ = runtime_core::console::resize(master.as_raw_fd(), ws.ws_row, ws.ws_col);
    }
}
