//! The process's identity and privileges, applied in the one order that
//! works: rlimits (may need CAP_SYS_RESOURCE), bounding-set drops (need
//! CAP_SETPCAP), groups/gid/uid with KEEPCAPS so the permitted set survives,
//! then capset + ambient, umask, and no_new_privs last.

use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::{PosixRlimit, PosixRlimitType, Process};

use crate::capabilities::{self, Sets};
use crate::error::{Error, Result, SysContext};

/// Applies rlimits; a refused raise names the limit.
pub fn apply_rlimits(limits: &[PosixRlimit]) -> Result<()> {
    for l in limits {
        let res = resource(l.typ());
        let lim = libc::rlimit {
            rlim_cur: l.soft(),
            rlim_max: l.hard(),
        };
        // SAFETY: setrlimit reads a valid, initialised rlimit struct.
        let rc = unsafe { libc::setrlimit(res, &lim) };
        if rc != 0 {
            return Err(Error::io(
                format!(
                    "setrlimit {:?} soft={} hard={}",
                    l.typ(),
                    l.soft(),
                    l.hard()
                ),
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

fn resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

fn keepcaps(on: bool) -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, libc::c_ulong::from(on), 0, 0, 0) };
    if rc != 0 {
        return Err(Error::io(
            "prctl(PR_SET_KEEPCAPS)",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Whether setgroups(2) is allowed (a user namespace may have it denied).
fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true)
}

/// User, groups, capabilities, umask and no_new_privs for `p`.
pub fn apply_identity(p: &Process) -> Result<()> {
    let sets = p.capabilities().as_ref().map(Sets::from_spec);
    if let Some(s) = &sets {
        capabilities::drop_bounding(s)?;
    }
    let user = p.user();
    keepcaps(true)?;
    let gids: Vec<Gid> = user
        .additional_gids()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(Gid::from_raw)
        .collect();
    if setgroups_allowed() {
        setgroups(&gids).ctx(|| format!("setgroups {:?}", user.additional_gids()))?;
    }
    let gid = Gid::from_raw(user.gid());
    setresgid(gid, gid, gid).ctx(|| format!("setgid {}", user.gid()))?;
    let uid = Uid::from_raw(user.uid());
    setresuid(uid, uid, uid).ctx(|| format!("setuid {}", user.uid()))?;
    keepcaps(false)?;
    if let Some(s) = &sets {
        capabilities::set_process_caps(s)?;
    }
    if let Some(mask) = user.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    if p.no_new_privileges().unwrap_or(false) {
        nix::sys::prctl::set_no_new_privs().ctx(|| "prctl(PR_SET_NO_NEW_PRIVS)".into())?;
    }
    Ok(())
}
