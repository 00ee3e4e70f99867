//! `kill`: signal init, or every process in the container's cgroup.

use nix::sys::signal::{kill as send, Signal};
use nix::unistd::Pid;

use crate::container::{open, require};
use crate::error::{Error, Result};
use crate::state::{Root, Status};

/// Parses "KILL", "SIGKILL", "kill" or "9".
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n)
            .map_err(|_| Error::InvalidArgument(format!("invalid signal: {s}")));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map_err(|_| Error::InvalidArgument(format!("invalid signal: {s}")))
}

/// Sends `sig` to init (or to all of the container's processes).
pub fn kill(root: &Root, id: &str, sig: Signal, all: bool) -> Result<()> {
    let (st, _lock) = open(root, id)?;
    let status = if all {
        st.status(root)
    } else {
        require(
            &st,
            root,
            &[Status::Created, Status::Running, Status::Paused],
            "kill",
        )?
    };
    if all {
        let pids = st.cgroup.pids()?;
        if pids.is_empty() && status == Status::Stopped {
            return Err(Error::InvalidState("container not running".into()));
        }
        // cgroup.kill (v2, Linux 5.14) kills the whole cgroup at once,
        // including what forks while we signal; else one pid at a time.
        let via_cgroup = sig == Signal::SIGKILL && st.cgroup.kill_all();
        if via_cgroup {
            log::debug!("kill {id}: every process through cgroup.kill");
        } else {
            for p in pids {
                let _ = send(Pid::from_raw(p), sig);
            }
        }
    } else {
        send(Pid::from_raw(st.pid), sig)
            .map_err(|e| Error::sys(format!("kill {} with {sig}", st.pid), e))?;
    }
    // v1 holds even SIGKILL until the cgroup thaws (v2 does not); thaw so
    // the container dies now, as runc does. Other signals wait for resume.
    if sig == Signal::SIGKILL && st.cgroup.frozen() {
        st.cgroup.thaw()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_and_numbers() {
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), Signal::SIGUSR1);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("999").is_err());
    }
}
