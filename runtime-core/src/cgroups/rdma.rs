//! rdma controller: `linux.resources.rdma` → one "DEV hca_handle=N hca_object=M" line per
//! device in rdma.max (same file on v1 and v2, as runc writes it).

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::LinuxRdma;

use super::blkio::{write_lines, Line};
use super::{Error, Result};

/// A device needs a name the kernel can parse and at least one limit.
pub(crate) fn check(map: &HashMap<String, LinuxRdma>) -> Result<()> {
    for (dev, l) in map {
        let field = format!("linux.resources.rdma[{dev:?}]");
        if dev.is_empty() || dev.contains(char::is_whitespace) {
            return Err(Error::InvalidValue {
                field,
                reason: "not an RDMA device name".into(),
            });
        }
        if l.hca_handles().is_none() && l.hca_objects().is_none() {
            return Err(Error::InvalidValue {
                field,
                reason: "sets neither hcaHandles nor hcaObjects".into(),
            });
        }
    }
    Ok(())
}

pub(crate) fn apply(map: &HashMap<String, LinuxRdma>, dir: &Path) -> Result<()> {
    write_lines(dir, &plan(map))
}

/// Sorted by device so the order of writes is stable.
pub(crate) fn plan(map: &HashMap<String, LinuxRdma>) -> Vec<Line> {
    let mut devs: Vec<&String> = map.keys().collect();
    devs.sort();
    devs.into_iter()
        .map(|dev| {
            let l = &map[dev];
            let mut line = dev.clone();
            if let Some(h) = l.hca_handles() {
                line.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = l.hca_objects() {
                line.push_str(&format!(" hca_object={o}"));
            }
            ("rdma.max".to_string(), line)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rdma(v: serde_json::Value) -> HashMap<String, LinuxRdma> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn lines_per_device() {
        let m = rdma(serde_json::json!({
            "mlx5_1": {"hcaObjects": 7},
            "mlx5_0": {"hcaHandles": 3, "hcaObjects": 1000},
        }));
        check(&m).unwrap();
        let want = [
            ("rdma.max", "mlx5_0 hca_handle=3 hca_object=1000"),
            ("rdma.max", "mlx5_1 hca_object=7"),
        ];
        let want: Vec<Line> = want
            .iter()
            .map(|(f, l)| (f.to_string(), l.to_string()))
            .collect();
        assert_eq!(plan(&m), want);
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("rdma.max"), "").unwrap();
        apply(&m, tmp.path()).unwrap();
        let got = super::super::fs::read(tmp.path(), "rdma.max").unwrap();
        assert_eq!(got, "mlx5_1 hca_object=7");
    }

    #[test]
    fn refused() {
        let err = check(&rdma(serde_json::json!({"mlx5_0": {}}))).unwrap_err();
        assert!(err.to_string().contains("rdma[\"mlx5_0\"]"), "{err}");
        assert!(check(&rdma(serde_json::json!({"a b": {"hcaHandles": 1}}))).is_err());
    }
}
