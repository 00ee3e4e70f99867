//! net_cls and net_prio (v1 only): `linux.resources.network` → net_cls.classid and one
//! "IFNAME PRIO" line per interface in net_prio.ifpriomap. cgroup v2 has neither (eBPF took
//! their place); runc ignores them there, and so do we, with a warning.

use std::path::Path;

use oci_spec::runtime::LinuxNetwork;

use super::{fs, Error, Result};

/// Interface names must be one word the kernel can parse back.
pub(crate) fn check(n: &LinuxNetwork) -> Result<()> {
    for (i, p) in n.priorities().iter().flatten().enumerate() {
        let name = p.name();
        if name.is_empty()
            || name.len() > 15
            || name.contains(|c: char| c.is_whitespace() || c == '/')
        {
            return Err(Error::InvalidValue {
                field: format!("linux.resources.network.priorities[{i}].name"),
                reason: format!("{name:?} is not an interface name"),
            });
        }
    }
    Ok(())
}

/// Whether anything would be written.
pub(crate) fn has_classid(n: &LinuxNetwork) -> bool {
    n.class_id().is_some()
}

pub(crate) fn has_priorities(n: &LinuxNetwork) -> bool {
    n.priorities().as_ref().is_some_and(|p| !p.is_empty())
}

pub(crate) fn apply_classid(n: &LinuxNetwork, dir: &Path) -> Result<()> {
    match n.class_id() {
        Some(id) => fs::write(dir, "net_cls.classid", &id.to_string()),
        None => Ok(()),
    }
}

/// One write per interface: the kernel parses a single "name prio" pair per write.
pub(crate) fn apply_priorities(n: &LinuxNetwork, dir: &Path) -> Result<()> {
    for p in n.priorities().iter().flatten() {
        fs::write(
            dir,
            "net_prio.ifpriomap",
            &format!("{} {}", p.name(), p.priority()),
        )?;
    }
    Ok(())
}

pub(crate) fn warn_v2(n: &LinuxNetwork) {
    if has_classid(n) || has_priorities(n) {
        log::warn!(
            "linux.resources.network has no cgroup v2 equivalent (net_cls/net_prio); ignored"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(v: serde_json::Value) -> LinuxNetwork {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn classid_and_priorities() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        for f in ["net_cls.classid", "net_prio.ifpriomap"] {
            std::fs::write(d.join(f), "").unwrap();
        }
        let n = net(serde_json::json!({"classID": 1048577,
            "priorities": [{"name": "eth0", "priority": 5}]}));
        check(&n).unwrap();
        apply_classid(&n, d).unwrap();
        apply_priorities(&n, d).unwrap();
        assert_eq!(fs::read(d, "net_cls.classid").unwrap(), "1048577");
        assert_eq!(fs::read(d, "net_prio.ifpriomap").unwrap(), "eth0 5");
        assert!(has_classid(&n) && has_priorities(&n));
        assert!(!has_priorities(&net(serde_json::json!({"priorities": []}))));
    }

    #[test]
    fn bad_interface_name() {
        for bad in ["", "eth 0", "a/b", "averyveryverylongname"] {
            let n = net(serde_json::json!({"priorities": [{"name": bad, "priority": 1}]}));
            let err = check(&n).unwrap_err().to_string();
            assert!(err.contains("network.priorities[0].name"), "{err}");
        }
    }
}
