//! memory controller: `linux.resources.memory` → memory.limit_in_bytes & co. (v1) or
//! memory.max / memory.low / memory.swap.max (v2).
//!
//! OCI `swap` is memory+swap, as v1's memory.memsw.limit_in_bytes; v2's memory.swap.max counts
//! swap alone, so it gets `swap - limit`. -1 means unlimited ("max" on v2).

use std::path::Path;

use oci_spec::runtime::LinuxMemory;

use super::fs::{self, Setting};
use super::{Error, Result};

const V1_LIMIT: &str = "memory.limit_in_bytes";
const V1_MEMSW: &str = "memory.memsw.limit_in_bytes";

/// v1: the kernel keeps limit ≤ memsw at every instant, so the current memsw value decides
/// whether memsw goes first (raising) or last (lowering).
pub(crate) fn apply_v1(mem: &LinuxMemory, dir: &Path) -> Result<()> {
    let current_memsw = match dir.join(V1_MEMSW).exists() {
        true => Some(parse_bytes(&fs::read(dir, V1_MEMSW)?, &dir.join(V1_MEMSW))?),
        false => None,
    };
    fs::write_all(dir, &plan_v1(mem, current_memsw)?)
}

/// v2 limits are independent files; no ordering needed.
pub(crate) fn apply_v2(mem: &LinuxMemory, dir: &Path) -> Result<()> {
    if mem.check_before_update() == Some(true) {
        check_usage(mem, fs::read(dir, "memory.current").ok())?;
    }
    let swap_accounting = dir.join("memory.swap.max").exists();
    let plan = plan_v2(mem, swap_accounting)?;
    warn_v1_only(mem);
    fs::write_all(dir, &plan)
}

/// `current_memsw`: memsw.limit_in_bytes now, or None when the kernel has no swap accounting.
pub(crate) fn plan_v1(mem: &LinuxMemory, current_memsw: Option<i64>) -> Result<Vec<Setting>> {
    let limit = mem.limit();
    check_limits(limit, mem.swap())?;
    // Unlimited memory with swap unset means unlimited swap too; otherwise the old memsw
    // limit would make the kernel refuse the new "-1".
    let swap = match (limit, mem.swap()) {
        (Some(-1), None) => Some(-1),
        (_, s) => s,
    };
    let mut out = Vec::new();
    match (swap, current_memsw) {
        (Some(s), Some(cur)) if unlimited_as_max(s) >= cur => {
            out.push((V1_MEMSW, s.to_string()));
            out.extend(limit.map(|l| (V1_LIMIT, l.to_string())));
        }
        (Some(s), Some(_)) => {
            out.extend(limit.map(|l| (V1_LIMIT, l.to_string())));
            out.push((V1_MEMSW, s.to_string()));
        }
        (_, None) => {
            if mem.swap().is_some_and(|s| s != -1) {
                log::warn!("memory swap limit ignored: the kernel has no swap accounting");
            }
            out.extend(limit.map(|l| (V1_LIMIT, l.to_string())));
        }
        (None, Some(_)) => out.extend(limit.map(|l| (V1_LIMIT, l.to_string()))),
    }
    out.extend(extras_v1(mem)?);
    Ok(out)
}

fn extras_v1(mem: &LinuxMemory) -> Result<Vec<Setting>> {
    let mut out = Vec::new();
    if let Some(r) = mem.reservation() {
        check_bytes("linux.resources.memory.reservation", r)?;
        out.push(("memory.soft_limit_in_bytes", r.to_string()));
    }
    if let Some(s) = mem.swappiness() {
        if s > 100 {
            return Err(Error::InvalidValue {
                field: "linux.resources.memory.swappiness".into(),
                reason: format!("{s} is above 100"),
            });
        }
        out.push(("memory.swappiness", s.to_string()));
    }
    if mem.disable_oom_killer() == Some(true) {
        out.push(("memory.oom_control", "1".into()));
    }
    // runc (1.1+) ignores both: kmem limits are deprecated by the kernel (gone in 6.x).
    for (name, set) in [("kernel", mem.kernel()), ("kernelTCP", mem.kernel_tcp())] {
        if set.is_some() {
            log::warn!("linux.resources.memory.{name} is deprecated by the kernel and was ignored");
        }
    }
    Ok(out)
}

/// `checkBeforeUpdate` (runc's semantics, v2 only): a positive memory or memory+swap limit
/// must stay above the current usage, else the update is refused instead of OOM-killing. An
/// unreadable memory.current (no cgroup yet) lets the update through.
pub(crate) fn check_usage(mem: &LinuxMemory, current: Option<String>) -> Result<()> {
    let Some(usage) = current.and_then(|c| c.trim().parse::<i64>().ok()) else {
        return Ok(());
    };
    for (name, v) in [("swap", mem.swap()), ("limit", mem.limit())] {
        if let Some(v) = v.filter(|v| *v > 0 && *v <= usage) {
            return Err(Error::InvalidValue {
                field: format!("linux.resources.memory.{name}"),
                reason: format!("{v} is not above the current usage {usage} (checkBeforeUpdate)"),
            });
        }
    }
    Ok(())
}

/// `swap_accounting`: whether memory.swap.max exists.
pub(crate) fn plan_v2(mem: &LinuxMemory, swap_accounting: bool) -> Result<Vec<Setting>> {
    let limit = mem.limit();
    check_limits(limit, mem.swap())?;
    let mut out = Vec::new();
    if let Some(l) = limit {
        out.push(("memory.max", max_or(l)));
    }
    if let Some(r) = mem.reservation() {
        check_bytes("linux.resources.memory.reservation", r)?;
        out.push(("memory.low", max_or(r)));
    }
    if let Some(s) = mem.swap() {
        let value = swap_v2(limit, s)?;
        match swap_accounting {
            true => out.push(("memory.swap.max", value)),
            false => log::warn!("memory swap limit ignored: no memory.swap.max on this host"),
        }
    }
    Ok(out)
}

/// runc ignores these on v2; say so (once, when applying, not when only checking).
fn warn_v1_only(mem: &LinuxMemory) {
    let v1_only = [
        ("swappiness", mem.swappiness().is_some()),
        ("disableOOMKiller", mem.disable_oom_killer() == Some(true)),
        ("kernel", mem.kernel().is_some()),
        ("kernelTCP", mem.kernel_tcp().is_some()),
    ];
    for (name, set) in v1_only {
        if set {
            log::warn!("linux.resources.memory.{name} has no cgroup v2 equivalent; ignored");
        }
    }
}

/// OCI memory+swap → v2 swap-only limit.
pub(crate) fn swap_v2(limit: Option<i64>, swap: i64) -> Result<String> {
    match (limit, swap) {
        (_, -1) => Ok("max".into()),
        (Some(l), s) if l >= 0 => Ok((s - l).to_string()),
        _ => Err(Error::InvalidValue {
            field: "linux.resources.memory.swap".into(),
            reason: format!("swap {swap} needs a memory limit on cgroup v2"),
        }),
    }
}

/// Limits are bytes or -1; memory+swap can never be below memory.
fn check_limits(limit: Option<i64>, swap: Option<i64>) -> Result<()> {
    if let Some(l) = limit {
        check_bytes("linux.resources.memory.limit", l)?;
    }
    if let Some(s) = swap {
        check_bytes("linux.resources.memory.swap", s)?;
    }
    let invalid = |reason: String| Error::InvalidValue {
        field: "linux.resources.memory.swap".into(),
        reason,
    };
    match (limit, swap) {
        (Some(-1), Some(s)) if s >= 0 => Err(invalid(format!(
            "swap {s} with unlimited memory (limit -1)"
        ))),
        (Some(l), Some(s)) if s >= 0 && s < l => Err(invalid(format!(
            "memory+swap {s} is below the memory limit {l}"
        ))),
        _ => Ok(()),
    }
}

fn check_bytes(field: &str, v: i64) -> Result<()> {
    match v >= -1 {
        true => Ok(()),
        false => Err(Error::InvalidValue {
            field: field.into(),
            reason: format!("{v} is neither a byte count nor -1"),
        }),
    }
}

fn max_or(v: i64) -> String {
    match v {
        -1 => "max".into(),
        v => v.to_string(),
    }
}

fn unlimited_as_max(v: i64) -> i64 {
    if v < 0 {
        i64::MAX
    } else {
        v
    }
}

fn parse_bytes(text: &str, path: &Path) -> Result<i64> {
    text.parse::<i64>().map_err(|_| Error::Parse {
        what: path.display().to_string(),
        reason: format!("{text:?} is not a byte count"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxMemoryBuilder;

    const MIB: i64 = 1 << 20;
    const V1_UNLIMITED: &str = "9223372036854771712";

    fn mem(limit: Option<i64>, swap: Option<i64>) -> LinuxMemory {
        let mut m = LinuxMemoryBuilder::default().build().unwrap();
        m.set_limit(limit);
        m.set_swap(swap);
        m
    }

    fn files(dir: &Path, names: &[(&str, &str)]) {
        for (n, v) in names {
            std::fs::write(dir.join(n), v).unwrap();
        }
    }

    fn s(file: &'static str, v: i64) -> Setting {
        (file, v.to_string())
    }

    #[test]
    fn v1_raising_writes_memsw_first() {
        let plan = plan_v1(&mem(Some(64 * MIB), Some(128 * MIB)), Some(32 * MIB)).unwrap();
        assert_eq!(plan, vec![s(V1_MEMSW, 128 * MIB), s(V1_LIMIT, 64 * MIB)]);
    }

    #[test]
    fn v1_lowering_writes_limit_first() {
        let cur = V1_UNLIMITED.parse().unwrap();
        let plan = plan_v1(&mem(Some(64 * MIB), Some(96 * MIB)), Some(cur)).unwrap();
        assert_eq!(plan, vec![s(V1_LIMIT, 64 * MIB), s(V1_MEMSW, 96 * MIB)]);
    }

    #[test]
    fn v1_unlimited_memory_implies_unlimited_swap() {
        let plan = plan_v1(&mem(Some(-1), None), Some(64 * MIB)).unwrap();
        assert_eq!(plan, vec![s(V1_MEMSW, -1), s(V1_LIMIT, -1)]);
    }

    #[test]
    fn v1_without_swap_accounting_sets_limit_only() {
        let plan = plan_v1(&mem(Some(64 * MIB), Some(128 * MIB)), None).unwrap();
        assert_eq!(plan, vec![s(V1_LIMIT, 64 * MIB)]);
    }

    #[test]
    fn inconsistent_values_are_rejected() {
        for (l, sw) in [
            (Some(64 * MIB), Some(MIB)),
            (Some(-1), Some(MIB)),
            (Some(-5), None),
        ] {
            assert!(matches!(
                plan_v1(&mem(l, sw), Some(0)),
                Err(Error::InvalidValue { .. })
            ));
            assert!(plan_v2(&mem(l, sw), true).is_err());
        }
        let mut m = mem(None, None);
        m.set_swappiness(Some(101));
        assert!(plan_v1(&m, None).is_err());
    }

    #[test]
    fn v1_apply_on_fake_files() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        files(
            d,
            &[
                (V1_LIMIT, V1_UNLIMITED),
                (V1_MEMSW, V1_UNLIMITED),
                ("memory.soft_limit_in_bytes", V1_UNLIMITED),
                ("memory.swappiness", "60"),
                ("memory.oom_control", "0"),
            ],
        );
        let mut m = mem(Some(64 * MIB), Some(128 * MIB));
        m.set_reservation(Some(32 * MIB));
        m.set_swappiness(Some(10));
        m.set_disable_oom_killer(Some(true));
        apply_v1(&m, d).unwrap();
        let read = |f| fs::read(d, f).unwrap();
        assert_eq!(read(V1_LIMIT), (64 * MIB).to_string());
        assert_eq!(read(V1_MEMSW), (128 * MIB).to_string());
        assert_eq!(read("memory.soft_limit_in_bytes"), (32 * MIB).to_string());
        assert_eq!(read("memory.swappiness"), "10");
        assert_eq!(read("memory.oom_control"), "1");
    }

    #[test]
    fn unset_fields_are_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        files(tmp.path(), &[(V1_LIMIT, "7"), ("memory.max", "8")]);
        apply_v1(&mem(None, None), tmp.path()).unwrap();
        apply_v2(&mem(None, None), tmp.path()).unwrap();
        assert_eq!(fs::read(tmp.path(), V1_LIMIT).unwrap(), "7");
        assert_eq!(fs::read(tmp.path(), "memory.max").unwrap(), "8");
    }

    #[test]
    fn v2_apply_on_fake_files() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        files(
            d,
            &[
                ("memory.max", "max"),
                ("memory.low", "0"),
                ("memory.swap.max", "max"),
            ],
        );
        let mut m = mem(Some(64 * MIB), Some(96 * MIB));
        m.set_reservation(Some(16 * MIB));
        apply_v2(&m, d).unwrap();
        assert_eq!(fs::read(d, "memory.max").unwrap(), (64 * MIB).to_string());
        assert_eq!(fs::read(d, "memory.low").unwrap(), (16 * MIB).to_string());
        assert_eq!(
            fs::read(d, "memory.swap.max").unwrap(),
            (32 * MIB).to_string()
        );
        apply_v2(&mem(Some(-1), Some(-1)), d).unwrap();
        assert_eq!(fs::read(d, "memory.max").unwrap(), "max");
        assert_eq!(fs::read(d, "memory.swap.max").unwrap(), "max");
    }

    #[test]
    fn swap_conversion() {
        assert_eq!(swap_v2(Some(100), 300).unwrap(), "200");
        assert_eq!(swap_v2(Some(100), 100).unwrap(), "0");
        assert_eq!(swap_v2(None, -1).unwrap(), "max");
        assert_eq!(swap_v2(Some(100), -1).unwrap(), "max");
        assert!(swap_v2(None, 300).is_err());
        assert!(swap_v2(Some(-1), 300).is_err());
    }

    #[test]
    fn check_before_update_refuses_limit_below_usage() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        files(d, &[("memory.max", "max"), ("memory.current", "5000")]);
        let mut m = mem(Some(4096), None);
        apply_v2(&m, d).unwrap();
        assert_eq!(fs::read(d, "memory.max").unwrap(), "4096");
        m.set_check_before_update(Some(true));
        m.set_limit(Some(5000));
        let err = apply_v2(&m, d).unwrap_err().to_string();
        assert!(
            err.contains("memory.limit") && err.contains("5000"),
            "{err}"
        );
        assert_eq!(
            fs::read(d, "memory.max").unwrap(),
            "4096",
            "nothing written"
        );
        m.set_limit(Some(5001));
        apply_v2(&m, d).unwrap();
        m.set_swap(Some(5000));
        assert!(check_usage(&m, Some("5000".into())).is_err());
        assert!(check_usage(&m, None).is_ok());
        m.set_swap(Some(-1));
        m.set_limit(Some(-1));
        assert!(check_usage(&m, Some("5000".into())).is_ok());
    }

    #[test]
    fn v1_kernel_limits_are_ignored() {
        let mut m = mem(None, None);
        m.set_kernel(Some(1 << 20));
        m.set_kernel_tcp(Some(1 << 20));
        assert!(plan_v1(&m, None).unwrap().is_empty());
    }

    #[test]
    fn v2_missing_swap_file_skips_swap() {
        let plan = plan_v2(&mem(Some(10), Some(20)), false).unwrap();
        assert_eq!(plan, vec![("memory.max", "10".to_string())]);
    }
}
