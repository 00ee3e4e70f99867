//! Driving commands on a pty: [`PtyChild`] runs a command as the session
//! leader of a fresh pty, and [`read_fd_until`] reads a pty master (or a
//! pipe) with a deadline.

use std::process::{Command, Stdio};

use crate::wait_child;

/// A command whose stdin, stdout and stderr are the slave side of a fresh
/// pty (and its controlling terminal); the test talks through `master`.
pub struct PtyChild {
    pub child: std::process::Child,
    pub master: std::os::fd::OwnedFd,
}

impl PtyChild {
    /// Spawns `cmd` on a new pty (in its own session).
    pub fn spawn(mut cmd: Command) -> PtyChild {
        use std::os::unix::process::CommandExt;
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let slave = pty.slave;
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: setsid and ioctl(TIOCSCTTY) are async-signal-safe and touch
        // only the child's own session and stdin.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn on pty");
        // Our copies of the slave are dropped with `cmd`'s Stdio, so the
        // master sees EIO once the child side is all closed.
        drop(cmd);
        PtyChild {
            child,
            master: pty.master,
        }
    }

    /// Sets the terminal's window size (what the child's side reports).
    pub fn resize(&self, rows: u16, cols: u16) {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        use std::os::fd::AsRawFd;
        // SAFETY: TIOCSWINSZ reads a valid winsize from a live pointer.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        assert_eq!(rc, 0, "resize pty: {}", std::io::Error::last_os_error());
    }

    /// Types `s` into the terminal.
    pub fn write(&self, s: &str) {
        nix::unistd::write(&self.master, s.as_bytes()).expect("write pty");
    }

    /// Reads the terminal until `needle` shows up, EOF, or `timeout`; returns all read.
    pub fn read_until(&self, needle: &str, timeout: std::time::Duration) -> String {
        read_fd_until(&self.master, needle, timeout)
    }

    /// Waits up to `timeout` for the child to exit; returns its exit code (kills it on timeout).
    pub fn wait(&mut self, timeout: std::time::Duration) -> i32 {
        wait_child(&mut self.child, timeout)
    }
}

/// Reads `fd` (a pty master or pipe) until `needle` is seen, EOF/EIO, or
/// `timeout`; returns everything read, lossily decoded.
pub fn read_fd_until(
    fd: &std::os::fd::OwnedFd,
    needle: &str,
    timeout: std::time::Duration,
) -> String {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let deadline = std::time::Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(needle) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        let ms = PollTimeout::try_from(left.as_millis().min(1000) as i32).unwrap();
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => panic!("poll: {e}"),
        }
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}
