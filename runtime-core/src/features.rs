//! What this engine supports, in the runtime-spec `features.md` shape that
//! `runc features` prints (containerd reads it for `-info` and CRI).

use serde_json::{json, Value};

use crate::capabilities;
use crate::rootfs::options;

/// The features document.
pub fn document() -> Value {
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.0.2-dev",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": options::KNOWN,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": capabilities::NAMES.as_slice(),
            // v2 includes device rules: enforced by an eBPF program (cgroups/devices_bpf.rs).
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                // SCMP_ACT_NOTIFY needs a seccomp agent, which we do not run yet.
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64",
                          "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
                          "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE",
                          "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_X32", "SCMP_ARCH_X86",
                          "SCMP_ARCH_X86_64"],
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
        },
        "annotations": {
            "org.opencontainers.runc.checkpoint.enabled": "false",
            "io.github.rs.version": env!("CARGO_PKG_VERSION"),
            // The spec has no field for it; how linux.resources.devices is enforced per version.
            "io.github.rs.cgroup.devices": "v1: devices.allow/deny; v2: eBPF BPF_CGROUP_DEVICE",
        },
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn says_how_devices_are_enforced() {
        let d = super::document();
        assert_eq!(d["linux"]["cgroup"]["v2"], true);
        let how = d["annotations"]["io.github.rs.cgroup.devices"]
            .as_str()
            .unwrap();
        assert!(how.contains("v2: eBPF"), "{how}");
    }
}
