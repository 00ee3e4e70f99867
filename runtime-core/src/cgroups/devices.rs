//! devices controller (v1): `linux.resources.devices` → devices.deny / devices.allow.
//!
//! Everything is denied first, then the spec's rules apply in order, then the default set every
//! container needs (runc's: mknod of any node, null, zero, full, random, urandom, tty,
//! console, ptmx, pts) is allowed, so a spec cannot lock a container out of /dev/null.
//! cgroup v2 has no device files: the same rules become an eBPF program (`devices_bpf.rs`).

use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::fs::{self, Setting};
use super::{Error, Result};

/// "type major:minor access" lines always allowed.
pub(super) const DEFAULT_ALLOW: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
];

pub(crate) fn apply_v1(rules: &[LinuxDeviceCgroup], dir: &Path) -> Result<()> {
    // One rule per write(2): the kernel parses a single rule per write.
    fs::write_all(dir, &plan_v1(rules)?)
}

pub(crate) fn plan_v1(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Setting>> {
    let mut out = vec![("devices.deny", "a".to_string())];
    for (i, rule) in rules.iter().enumerate() {
        let file = match rule.allow() {
            true => "devices.allow",
            false => "devices.deny",
        };
        out.push((file, rule_line(i, rule)?));
    }
    out.extend(
        DEFAULT_ALLOW
            .iter()
            .map(|r| ("devices.allow", r.to_string())),
    );
    Ok(out)
}

/// The kernel's syntax: "a" for all devices, else "c|b major|* :minor|* access".
fn rule_line(index: usize, rule: &LinuxDeviceCgroup) -> Result<String> {
    let invalid = |reason: String| Error::InvalidValue {
        field: format!("linux.resources.devices[{index}]"),
        reason,
    };
    let typ = match rule.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => return Ok("a".into()),
        LinuxDeviceType::C | LinuxDeviceType::U => 'c',
        LinuxDeviceType::B => 'b',
        LinuxDeviceType::P => return Err(invalid("type \"p\" cannot be a cgroup rule".into())),
    };
    let num = |n: Option<i64>| match n {
        None | Some(-1) => Ok("*".to_string()),
        Some(n) if n >= 0 => Ok(n.to_string()),
        Some(n) => Err(invalid(format!("device number {n}"))),
    };
    let access = rule.access().as_deref().unwrap_or("rwm");
    if access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) {
        return Err(invalid(format!(
            "access {access:?} is not a subset of \"rwm\""
        )));
    }
    Ok(format!(
        "{typ} {}:{} {access}",
        num(rule.major())?,
        num(rule.minor())?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    fn rule(
        allow: bool,
        typ: LinuxDeviceType,
        major: Option<i64>,
        access: &str,
    ) -> LinuxDeviceCgroup {
        let mut r = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .access(access)
            .build()
            .unwrap();
        r.set_major(major);
        r
    }

    #[test]
    fn deny_all_then_rules_in_order_then_defaults() {
        let rules = [
            rule(false, LinuxDeviceType::A, None, "rwm"),
            rule(true, LinuxDeviceType::C, Some(10), "rw"),
            rule(false, LinuxDeviceType::B, Some(8), "m"),
        ];
        let plan = plan_v1(&rules).unwrap();
        assert_eq!(plan[0], ("devices.deny", "a".to_string()));
        assert_eq!(plan[1], ("devices.deny", "a".to_string()));
        assert_eq!(plan[2], ("devices.allow", "c 10:* rw".to_string()));
        assert_eq!(plan[3], ("devices.deny", "b 8:* m".to_string()));
        assert_eq!(plan.len(), 4 + DEFAULT_ALLOW.len());
        assert!(plan.contains(&("devices.allow", "c 1:3 rwm".to_string())));
        assert!(plan.contains(&("devices.allow", "c 136:* rwm".to_string())));
    }

    #[test]
    fn bad_rules_are_rejected() {
        for r in [
            rule(true, LinuxDeviceType::C, Some(1), "rwx"),
            rule(true, LinuxDeviceType::C, Some(-7), "r"),
            rule(true, LinuxDeviceType::P, Some(1), "r"),
        ] {
            let err = plan_v1(&[r]).unwrap_err();
            assert!(err.to_string().contains("devices[0]"), "{err}");
        }
    }

    #[test]
    fn applies_to_fake_files() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("devices.allow"), "").unwrap();
        std::fs::write(tmp.path().join("devices.deny"), "").unwrap();
        apply_v1(&[], tmp.path()).unwrap();
        assert_eq!(fs::read(tmp.path(), "devices.deny").unwrap(), "a");
        assert_eq!(
            fs::read(tmp.path(), "devices.allow").unwrap(),
            "c 136:* rwm"
        );
    }
}
