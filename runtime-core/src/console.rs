//! Terminals: the container side creates a pty inside the container's own
//! devpts, makes the peer its controlling terminal and /dev/console, and
//! sends the master over the console socket (SCM_RIGHTS); the receiving side
//! (`rsrun run -t` in the foreground) gets it back the same way.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{open, OFlag};
use nix::mount::MsFlags;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::sys::stat::Mode;

use crate::error::{Error, Result, SysContext};

/// A pty pair created in the container.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

impl Pty {
    pub fn slave_raw(&self) -> RawFd {
        self.slave.as_raw_fd()
    }
}

/// Opens /dev/ptmx (the container's devpts) and its peer via TIOCGPTPEER,
/// which never goes through a path that a container could swap for a
/// symlink (CVE-2025-52565).
pub fn open_pty() -> Result<Pty> {
    let master = open(
        "/dev/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open /dev/ptmx".into())?;
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one c_int from a valid pointer.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) };
    if rc != 0 {
        return Err(Error::io("unlock pty", std::io::Error::last_os_error()));
    }
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new fd.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    if fd < 0 {
        return Err(Error::io("open pty peer", std::io::Error::last_os_error()));
    }
    // SAFETY: fd is a fresh descriptor returned by the kernel and owned only here.
    let slave = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(Pty { master, slave })
}

/// Bind-mounts the pty peer over /dev/console (created as a plain file).
pub fn mount_console(slave: &OwnedFd, sys: &dyn crate::syscall::Sys) -> Result<()> {
    let target = open(
        "/dev/console",
        OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .or_else(|_| {
        open(
            "/dev/console",
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    })
    .ctx(|| "create /dev/console".into())?;
    let src = format!("/proc/self/fd/{}", slave.as_raw_fd());
    let dst = format!("/proc/self/fd/{}", target.as_raw_fd());
    let (src, dst) = (std::path::Path::new(&src), std::path::Path::new(&dst));
    sys.mount(Some(src), dst, None, MsFlags::MS_BIND, None)
        .ctx(|| "bind pty over /dev/console".into())
}

/// Makes `slave` the controlling terminal and the stdio of this process.
pub fn become_controlling(slave: &OwnedFd) -> Result<()> {
    // SAFETY: TIOCSCTTY with an integer argument on a tty fd we own.
    let rc = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) };
    if rc != 0 {
        return Err(Error::io(
            "set controlling terminal",
            std::io::Error::last_os_error(),
        ));
    }
    for target in 0..=2 {
        // SAFETY: dup2 onto stdio numbers; both are valid descriptors.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(Error::io(
                "dup pty onto stdio",
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

/// Sets the window size of a tty.
pub fn resize(fd: RawFd, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a valid winsize struct.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
    if rc != 0 {
        return Err(Error::io("resize tty", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Sends the master fd over a connected console socket.
pub fn send_master(socket: RawFd, master: &OwnedFd) -> Result<()> {
    let name = b"/dev/ptmx";
    let iov = [IoSlice::new(name)];
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        socket,
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .ctx(|| "send pty master over console socket".into())?;
    Ok(())
}

/// Receives a pty master sent by `send_master`.
pub fn recv_master(socket: RawFd) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        socket,
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ctx(|| "receive pty master".into())?;
    for c in msg.cmsgs().ctx(|| "read control message".into())? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(Error::Child(
        "console socket closed without sending a pty".into(),
    ))
}
