//! pids controller: `linux.resources.pids.limit` → pids.max (same file on v1 and v2);
//! a limit of 0 or below means no limit ("max").

use std::path::Path;

use oci_spec::runtime::LinuxPids;

use super::fs::{self, Setting};
use super::Result;

pub(crate) fn apply(pids: &LinuxPids, dir: &Path) -> Result<()> {
    fs::write_all(dir, &plan(pids))
}

pub(crate) fn plan(pids: &LinuxPids) -> Vec<Setting> {
    let value = match pids.limit() {
        l if l > 0 => l.to_string(),
        _ => "max".to_string(),
    };
    vec![("pids.max", value)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxPidsBuilder;

    fn pids(limit: i64) -> LinuxPids {
        LinuxPidsBuilder::default().limit(limit).build().unwrap()
    }

    #[test]
    fn limit_or_max() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("pids.max"), "max").unwrap();
        apply(&pids(20), tmp.path()).unwrap();
        assert_eq!(fs::read(tmp.path(), "pids.max").unwrap(), "20");
        for unlimited in [0, -1] {
            apply(&pids(unlimited), tmp.path()).unwrap();
            assert_eq!(fs::read(tmp.path(), "pids.max").unwrap(), "max");
        }
    }

    #[test]
    fn missing_file_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let err = apply(&pids(5), tmp.path()).unwrap_err().to_string();
        assert!(err.contains("pids.max") && err.contains("\"5\""), "{err}");
    }
}
