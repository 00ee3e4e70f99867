//! `start`: release a created container's init by reading the exec FIFO,
//! then run poststart hooks.

use std::io::Read;
use std::os::fd::AsFd;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::container::{open, require};
use crate::error::{Error, Result, SysContext};
use crate::hooks::{self, Point};
use crate::state::{self, Root, Status};

/// Starts the user process of a created container.
pub fn start(root: &Root, id: &str) -> Result<()> {
    let (st, _lock) = open(root, id)?;
    require(&st, root, &[Status::Created], "start")?;
    let dir = root.container_dir(id);
    let fifo_path = dir.join(state::FIFO);
    // Non-blocking open: succeeds at once; init's blocked open for writing
    // then completes and it writes one byte.
    let mut fifo = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo_path)
        .map_err(|e| Error::path("open", &fifo_path, e))?;
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        let n = poll(&mut fds, PollTimeout::from(100u16))
            .or_else(|e| {
                if e == nix::errno::Errno::EINTR {
                    Ok(0)
                } else {
                    Err(e)
                }
            })
            .ctx(|| "wait for container init".into())?;
        if n > 0 {
            let mut b = [0u8; 4096];
            let got = fifo.read(&mut b).ctx(|| "read exec fifo".into())?;
            match b[..got].split_first() {
                Some((b'0', _)) => break,
                Some((b'E', msg)) => {
                    let _ = std::fs::remove_file(&fifo_path);
                    return Err(Error::Hook(String::from_utf8_lossy(msg).into_owned()));
                }
                _ => {}
            }
        }
        if !state::process_matches(st.pid, st.start_time) {
            return Err(Error::InvalidState(
                "cannot start a container that has stopped".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    std::fs::remove_file(&fifo_path).map_err(|e| Error::path("remove", &fifo_path, e))?;
    if !st.poststart.is_empty() {
        let state = hooks::state_json(id, "running", st.pid, &st.bundle, &st.annotations);
        hooks::run_all(Point::Poststart, &st.poststart, &state)?;
    }
    Ok(())
}

/// The spec saved at create time.
pub(crate) fn load_spec(dir: &std::path::Path) -> Result<oci_spec::runtime::Spec> {
    let path = dir.join(state::CONFIG);
    let text = std::fs::read(&path).map_err(|e| Error::path("read", &path, e))?;
    crate::spec::parse(&text)
}

use std::os::unix::fs::OpenOptionsExt;
