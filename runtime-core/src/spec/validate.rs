//! Checks that need more than types: cross-field rules a runtime must refuse
//! before creating anything (runc's configs/validate is the reference).

use oci_spec::runtime::{Process, Spec};

use crate::error::{Error, Result};
use crate::namespaces::{Kind, Namespaces};

/// Container ids: letters, digits, `_ + - .`; not `.`/`..`; at most 1024 bytes.
pub fn validate_id(id: &str) -> Result<()> {
    let ok_chars = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if id.is_empty() || !ok_chars || id == "." || id == ".." || id.len() > 1024 {
        return Err(Error::InvalidArgument(format!(
            "invalid container id {id:?}"
        )));
    }
    Ok(())
}

/// Rules for a process (init's or an exec's); `field` prefixes errors.
pub fn validate_process(p: &Process, field: &str) -> Result<()> {
    security_labels(p, field)?;
    let args = p.args().clone().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        return Err(Error::InvalidSpec(format!(
            "{field}.args: must not be empty"
        )));
    }
    if !p.cwd().is_absolute() {
        return Err(Error::InvalidSpec(format!(
            "{field}.cwd {}: must be an absolute path",
            p.cwd().display()
        )));
    }
    for e in p.env().clone().unwrap_or_default() {
        if !e.contains('=') {
            return Err(Error::InvalidSpec(format!(
                "{field}.env {e:?}: expected KEY=VALUE"
            )));
        }
    }
    let mut seen = Vec::new();
    for r in p.rlimits().clone().unwrap_or_default() {
        if seen.contains(&r.typ()) {
            return Err(Error::InvalidSpec(format!(
                "{field}.rlimits: {:?} listed twice",
                r.typ()
            )));
        }
        if r.soft() > r.hard() {
            return Err(Error::InvalidSpec(format!(
                "{field}.rlimits: {:?} soft limit {} exceeds hard limit {}",
                r.typ(),
                r.soft(),
                r.hard()
            )));
        }
        seen.push(r.typ());
    }
    Ok(())
}

/// LSM labels are not applied by this engine yet: asking for one must fail,
/// never run the process unconfined. (runc also refuses an AppArmor profile
/// on a host without AppArmor; an SELinux label is a no-op where SELinux is
/// off, as in runc.)
fn security_labels(p: &Process, field: &str) -> Result<()> {
    if let Some(profile) = p.apparmor_profile().as_deref().filter(|s| !s.is_empty()) {
        let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.trim() == "Y");
        let why = if enabled {
            "AppArmor profiles are not supported by rs yet"
        } else {
            "AppArmor is not enabled on this host"
        };
        return Err(Error::Unsupported(format!(
            "{field}.apparmorProfile {profile:?}: {why}"
        )));
    }
    let selinux_on = std::path::Path::new("/sys/fs/selinux/enforce").exists();
    if let Some(label) = p
        .selinux_label()
        .as_deref()
        .filter(|s| !s.is_empty() && selinux_on)
    {
        return Err(Error::Unsupported(format!(
            "{field}.selinuxLabel {label:?}: SELinux labels are not supported by rs yet"
        )));
    }
    Ok(())
}

/// Cross-field checks on the whole spec.
pub fn spec(spec: &Spec, ns: &Namespaces) -> Result<()> {
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !ns.creates(Kind::Uts) {
        return Err(Error::InvalidSpec(
            "hostname: unable to set hostname without a private UTS namespace".into(),
        ));
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty()) && !ns.creates(Kind::Uts) {
        return Err(Error::InvalidSpec(
            "domainname: unable to set domainname without a private UTS namespace".into(),
        ));
    }
    let linux = spec.linux().clone().unwrap_or_default();
    let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if ns.creates(Kind::User) && !has_maps {
        return Err(Error::InvalidSpec(
            "linux.uidMappings: a new user namespace needs uid and gid mappings".into(),
        ));
    }
    if has_maps && !ns.has(Kind::User) {
        return Err(Error::InvalidSpec(
            "linux.uidMappings: mappings given but no user namespace".into(),
        ));
    }
    if !ns.creates(Kind::Mount) {
        return Err(Error::InvalidSpec(
            "linux.namespaces: a new mount namespace is required".into(),
        ));
    }
    if let Some(p) = linux.rootfs_propagation() {
        let known = [
            "",
            "shared",
            "slave",
            "private",
            "unbindable",
            "rshared",
            "rslave",
            "rprivate",
            "runbindable",
        ];
        if !known.contains(&p.as_str()) {
            return Err(Error::InvalidSpec(format!(
                "linux.rootfsPropagation {p:?}: unknown mode"
            )));
        }
    }
    for m in spec.mounts().clone().unwrap_or_default() {
        if !m.destination().is_absolute() {
            return Err(Error::InvalidSpec(format!(
                "mounts: destination {} must be an absolute path",
                m.destination().display()
            )));
        }
    }
    for key in linux.sysctl().clone().unwrap_or_default().keys() {
        sysctl_allowed(key, ns)?;
    }
    Ok(())
}

/// A sysctl must be namespaced by a namespace the container owns.
fn sysctl_allowed(key: &str, ns: &Namespaces) -> Result<()> {
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let need = if key.starts_with("net.") {
        Kind::Net
    } else if ipc.contains(&key) || key.starts_with("fs.mqueue.") {
        Kind::Ipc
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Kind::Uts
    } else {
        return Err(Error::InvalidSpec(format!(
            "linux.sysctl {key}: not namespaced, refusing to change the host"
        )));
    };
    if !ns.creates(need) {
        return Err(Error::InvalidSpec(format!(
            "linux.sysctl {key}: needs a private {} namespace",
            need.spec_name()
        )));
    }
    if key.contains("..") || key.contains('/') {
        return Err(Error::InvalidSpec(format!(
            "linux.sysctl {key}: invalid name"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespaces::Namespace;

    #[test]
    fn ids() {
        assert!(validate_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sysctls_need_their_namespace() {
        let ns = Namespaces(vec![Namespace {
            kind: Kind::Net,
            path: None,
        }]);
        assert!(sysctl_allowed("net.ipv4.ip_forward", &ns).is_ok());
        assert!(sysctl_allowed("kernel.shmmax", &ns).is_err());
        assert!(sysctl_allowed("vm.swappiness", &ns).is_err());
    }
}
