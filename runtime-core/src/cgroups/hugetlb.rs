//! hugetlb controller: `linux.resources.hugepageLimits` → hugetlb.<size>.limit_in_bytes (v1)
//! or hugetlb.<size>.max (v2), plus the `.rsvd.` reservation twin where the kernel has it
//! (Linux 5.7+), as runc 1.1+ does. Page size names ("2MB", "1GB") are the kernel's, derived
//! from /sys/kernel/mm/hugepages; a name the host does not have is refused before anything
//! is created. A limit of -1 means unlimited.

use std::path::Path;

use oci_spec::runtime::LinuxHugepageLimit;

use super::blkio::{write_lines, Line};
use super::{Error, Result};

const HUGEPAGES: &str = "/sys/kernel/mm/hugepages";

/// The host's page size names, e.g. ["1GB", "2MB"].
pub(crate) fn host_sizes() -> Vec<String> {
    let names = std::fs::read_dir(HUGEPAGES)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut sizes: Vec<String> = names.iter().filter_map(|n| size_name(n)).collect();
    sizes.sort();
    sizes
}

/// "hugepages-2048kB" → "2MB", as the kernel's hugetlb cgroup names its files.
pub(crate) fn size_name(dir_name: &str) -> Option<String> {
    let kb: u64 = dir_name
        .strip_prefix("hugepages-")?
        .strip_suffix("kB")?
        .parse()
        .ok()?;
    Some(match kb {
        kb if kb >= 1 << 20 => format!("{}GB", kb >> 20),
        kb if kb >= 1 << 10 => format!("{}MB", kb >> 10),
        kb => format!("{kb}KB"),
    })
}

/// Checks page sizes against `host` (from [`host_sizes`]) and limits.
pub(crate) fn check(limits: &[LinuxHugepageLimit], host: &[String]) -> Result<()> {
    for (i, l) in limits.iter().enumerate() {
        let field = format!("linux.resources.hugepageLimits[{i}]");
        if !host.iter().any(|s| s == l.page_size()) {
            let have = match host.is_empty() {
                true => "none".to_string(),
                false => host.join(", "),
            };
            return Err(Error::InvalidValue {
                field: format!("{field}.pageSize"),
                reason: format!(
                    "{:?} is not a huge page size of this host ({have})",
                    l.page_size()
                ),
            });
        }
        if l.limit() < -1 {
            return Err(Error::InvalidValue {
                field: format!("{field}.limit"),
                reason: format!("{} is neither a byte count nor -1", l.limit()),
            });
        }
    }
    Ok(())
}

pub(crate) fn apply_v1(limits: &[LinuxHugepageLimit], dir: &Path) -> Result<()> {
    write_lines(
        dir,
        &plan(
            limits,
            ".limit_in_bytes",
            "-1",
            has_rsvd(limits, dir, ".limit_in_bytes"),
        ),
    )
}

pub(crate) fn apply_v2(limits: &[LinuxHugepageLimit], dir: &Path) -> Result<()> {
    write_lines(
        dir,
        &plan(limits, ".max", "max", has_rsvd(limits, dir, ".max")),
    )
}

fn has_rsvd(limits: &[LinuxHugepageLimit], dir: &Path, suffix: &str) -> bool {
    limits.first().is_some_and(|l| {
        dir.join(format!("hugetlb.{}.rsvd{suffix}", l.page_size()))
            .exists()
    })
}

/// `suffix`: ".limit_in_bytes" or ".max"; `unlimited`: how the file spells no limit.
pub(crate) fn plan(
    limits: &[LinuxHugepageLimit],
    suffix: &str,
    unlimited: &str,
    rsvd: bool,
) -> Vec<Line> {
    let mut out = Vec::new();
    for l in limits {
        let value = match l.limit() {
            -1 => unlimited.to_string(),
            n => n.to_string(),
        };
        let prefix = format!("hugetlb.{}", l.page_size());
        out.push((format!("{prefix}{suffix}"), value.clone()));
        if rsvd {
            out.push((format!("{prefix}.rsvd{suffix}"), value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(v: serde_json::Value) -> Vec<LinuxHugepageLimit> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn size_names() {
        assert_eq!(size_name("hugepages-2048kB").unwrap(), "2MB");
        assert_eq!(size_name("hugepages-1048576kB").unwrap(), "1GB");
        assert_eq!(size_name("hugepages-64kB").unwrap(), "64KB");
        assert_eq!(size_name("hugepages-32768kB").unwrap(), "32MB");
        assert!(size_name("hugepages-2048").is_none());
        assert!(size_name("other").is_none());
    }

    #[test]
    fn v1_and_v2_files_with_rsvd() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let files = [
            "hugetlb.2MB.limit_in_bytes",
            "hugetlb.2MB.rsvd.limit_in_bytes",
            "hugetlb.2MB.max",
        ];
        for f in files {
            std::fs::write(d.join(f), "").unwrap();
        }
        let l = limits(serde_json::json!([{"pageSize": "2MB", "limit": 4194304}]));
        apply_v1(&l, d).unwrap();
        let read = |f| super::super::fs::read(d, f).unwrap();
        assert_eq!(read("hugetlb.2MB.limit_in_bytes"), "4194304");
        assert_eq!(read("hugetlb.2MB.rsvd.limit_in_bytes"), "4194304");
        // No hugetlb.2MB.rsvd.max: an older kernel; only .max is written.
        apply_v2(&l, d).unwrap();
        assert_eq!(read("hugetlb.2MB.max"), "4194304");
        assert!(!d.join("hugetlb.2MB.rsvd.max").exists());
    }

    #[test]
    fn unlimited_spelling() {
        let l = limits(serde_json::json!([{"pageSize": "1GB", "limit": -1}]));
        let v2 = plan(&l, ".max", "max", true);
        assert_eq!(
            v2,
            vec![
                ("hugetlb.1GB.max".to_string(), "max".to_string()),
                ("hugetlb.1GB.rsvd.max".to_string(), "max".to_string())
            ]
        );
        assert_eq!(plan(&l, ".limit_in_bytes", "-1", false)[0].1, "-1");
    }

    #[test]
    fn unknown_size_and_bad_limit_are_refused() {
        let host = vec!["1GB".to_string(), "2MB".to_string()];
        let ok = limits(serde_json::json!([{"pageSize": "2MB", "limit": 0}]));
        check(&ok, &host).unwrap();
        let bad = limits(serde_json::json!([{"pageSize": "3MB", "limit": 1}]));
        let err = check(&bad, &host).unwrap_err().to_string();
        assert!(
            err.contains("hugepageLimits[0].pageSize") && err.contains("1GB, 2MB"),
            "{err}"
        );
        let err = check(&ok, &[]).unwrap_err().to_string();
        assert!(err.contains("(none)"), "{err}");
        let neg = limits(serde_json::json!([{"pageSize": "2MB", "limit": -2}]));
        let err = check(&neg, &host).unwrap_err().to_string();
        assert!(err.contains("hugepageLimits[0].limit"), "{err}");
    }
}
