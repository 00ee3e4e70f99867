//! Linux capabilities: names ↔ numbers, and applying the five OCI sets.
//! Order (see `apply`): bounding drops happen while we still hold
//! CAP_SETPCAP; inheritable stays empty unless the spec asks
//! (CVE-2022-29162); ambient is raised last, after capset.

use oci_spec::runtime::{Capability, LinuxCapabilities};

use crate::error::{Error, Result};

/// Highest capability number this engine knows (CAP_CHECKPOINT_RESTORE).
pub const LAST_CAP: u32 = 40;

/// The kernel number of an OCI capability.
pub fn number(c: Capability) -> u32 {
    use Capability::*;
    match c {
        Chown => 0,
        DacOverride => 1,
        DacReadSearch => 2,
        Fowner => 3,
        Fsetid => 4,
        Kill => 5,
        Setgid => 6,
        Setuid => 7,
        Setpcap => 8,
        LinuxImmutable => 9,
        NetBindService => 10,
        NetBroadcast => 11,
        NetAdmin => 12,
        NetRaw => 13,
        IpcLock => 14,
        IpcOwner => 15,
        SysModule => 16,
        SysRawio => 17,
        SysChroot => 18,
        SysPtrace => 19,
        SysPacct => 20,
        SysAdmin => 21,
        SysBoot => 22,
        SysNice => 23,
        SysResource => 24,
        SysTime => 25,
        SysTtyConfig => 26,
        Mknod => 27,
        Lease => 28,
        AuditWrite => 29,
        AuditControl => 30,
        Setfcap => 31,
        MacOverride => 32,
        MacAdmin => 33,
        Syslog => 34,
        WakeAlarm => 35,
        BlockSuspend => 36,
        AuditRead => 37,
        Perfmon => 38,
        Bpf => 39,
        CheckpointRestore => 40,
    }
}

/// Capability names in kernel order (index = number).
pub const NAMES: [&str; LAST_CAP as usize + 1] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The five sets as bitmasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

fn mask(set: &Option<oci_spec::runtime::Capabilities>) -> u64 {
    set.iter()
        .flatten()
        .fold(0u64, |m, c| m | (1u64 << number(*c)))
}

impl Sets {
    pub fn from_spec(c: &LinuxCapabilities) -> Sets {
        Sets {
            bounding: mask(c.bounding()),
            effective: mask(c.effective()),
            permitted: mask(c.permitted()),
            inheritable: mask(c.inheritable()),
            ambient: mask(c.ambient()),
        }
    }
}

/// Highest capability the running kernel supports.
fn kernel_last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(LAST_CAP)
}

/// Drops every capability not in the bounding set.
pub fn drop_bounding(sets: &Sets) -> Result<()> {
    let last = kernel_last_cap();
    for cap in 0..=last {
        if cap <= 63 && sets.bounding & (1 << cap) == 0 {
            // SAFETY: prctl with integer arguments only.
            let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
            if rc != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINVAL) {
                    return Err(Error::io(
                        format!("drop capability {cap} from bounding set"),
                        e,
                    ));
                }
            }
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

/// Sets effective, permitted and inheritable with capset(2), then raises the
/// ambient set.
pub fn set_process_caps(sets: &Sets) -> Result<()> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let split = |m: u64| [(m & 0xffff_ffff) as u32, (m >> 32) as u32];
    let (e, p, i) = (
        split(sets.effective),
        split(sets.permitted),
        split(sets.inheritable),
    );
    let mut data = [
        CapData {
            effective: e[0],
            permitted: p[0],
            inheritable: i[0],
        },
        CapData {
            effective: e[1],
            permitted: p[1],
            inheritable: i[1],
        },
    ];
    // SAFETY: hdr and data are valid, correctly laid out (repr(C)) and live
    // for the call; V3 takes exactly two data elements.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(Error::io("capset", std::io::Error::last_os_error()));
    }
    for cap in 0..=LAST_CAP {
        if sets.ambient & (1 << cap) != 0 {
            // SAFETY: prctl with integer arguments only.
            let rc = unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                    cap as libc::c_ulong,
                    0,
                    0,
                )
            };
            if rc != 0 {
                // Raising needs the cap in permitted and inheritable; runc's
                // default spec lists ambient caps without inheritable ones, and
                // runc only warns, so do we.
                log::debug!(
                    "raise ambient capability {cap}: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_agree_with_numbers() {
        for (n, name) in NAMES.iter().enumerate() {
            let cap: Capability = serde_json::from_value(serde_json::json!(name)).unwrap();
            assert_eq!(number(cap) as usize, n, "{name}");
        }
    }

    #[test]
    fn numbers_follow_the_kernel() {
        assert_eq!(number(Capability::Chown), 0);
        assert_eq!(number(Capability::NetBindService), 10);
        assert_eq!(number(Capability::SysAdmin), 21);
        assert_eq!(number(Capability::AuditWrite), 29);
        assert_eq!(number(Capability::CheckpointRestore), 40);
    }

    #[test]
    fn sets_from_runc_default() {
        let c: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"],"effective":["CAP_KILL"]}"#,
        )
        .unwrap();
        let s = Sets::from_spec(&c);
        assert_eq!(s.bounding, (1 << 29) | (1 << 5) | (1 << 10));
        assert_eq!(s.effective, 1 << 5);
        assert_eq!(s.inheritable, 0);
    }
}
