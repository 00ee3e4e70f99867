//! The controllers beyond memory/cpu/pids/devices: blockIO, hugepageLimits, network and rdma,
//! plus [`Cgroup::check`], which validates every resource value before a container's cgroup
//! (or anything else) exists.
//!
//! On a hybrid host a controller may be bound to the cgroup2 mount instead of a v1 hierarchy
//! (e.g. hugetlb when no v1 hierarchy claims it): its files are then the v2 ones, in the
//! container's unified directory, and the levels above must enable it in
//! `cgroup.subtree_control` first. The root of that hierarchy is the host's: it is never
//! written here (a hybrid host's unified root belongs to whoever set the host up); when it
//! does not enable the controller, the request is refused, naming the file to change.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::detect::FsType;
use super::{blkio, fs, hugetlb, net, rdma, update, Cgroup, Error, Layout, Result};

/// Where a controller's files live, and in which format.
enum Target {
    V1(PathBuf),
    V2(PathBuf),
}

impl Cgroup {
    /// Checks every value of `r` without touching any cgroup: the errors name the field
    /// (e.g. "linux.resources.blockIO.weight: 5 is out of range 10-1000"). `create` calls this
    /// before making the state directory or the cgroup; `update` before any write.
    pub fn check(&self, r: &LinuxResources) -> Result<()> {
        update::check(r, self.layout == Layout::V2)?;
        if let Some(b) = r.block_io() {
            blkio::check(b)?;
        }
        if let Some(limits) = r.hugepage_limits().as_deref().filter(|l| !l.is_empty()) {
            hugetlb::check(limits, &hugetlb::host_sizes())?;
        }
        if let Some(n) = r.network() {
            net::check(n)?;
        }
        if let Some(map) = r.rdma() {
            rdma::check(map)?;
        }
        Ok(())
    }

    /// Applies blockIO, hugepageLimits, network and rdma (part of [`Cgroup::apply`]).
    pub(super) fn apply_extra(&self, r: &LinuxResources) -> Result<()> {
        if let Some(b) = r.block_io() {
            let plan_empty = blkio::plan_v1(b, true).is_empty();
            match self.target("blkio", plan_empty)? {
                Some(Target::V1(dir)) => blkio::apply_v1(b, &dir)?,
                Some(Target::V2(dir)) => blkio::apply_v2(b, &dir)?,
                None => {}
            }
        }
        if let Some(limits) = r.hugepage_limits().as_deref() {
            match self.target("hugetlb", limits.is_empty())? {
                Some(Target::V1(dir)) => hugetlb::apply_v1(limits, &dir)?,
                Some(Target::V2(dir)) => hugetlb::apply_v2(limits, &dir)?,
                None => {}
            }
        }
        if let Some(n) = r.network() {
            self.apply_network(n)?;
        }
        if let Some(map) = r.rdma() {
            if let Some(Target::V1(dir) | Target::V2(dir)) = self.target("rdma", map.is_empty())? {
                rdma::apply(map, &dir)?;
            }
        }
        Ok(())
    }

    fn apply_network(&self, n: &oci_spec::runtime::LinuxNetwork) -> Result<()> {
        if self.layout == Layout::V2 {
            net::warn_v2(n);
            return Ok(());
        }
        // v2 has no net_cls/net_prio, so a hybrid host can only offer them in v1.
        if net::has_classid(n) {
            net::apply_classid(n, &self.controller_dir("net_cls", "network classID")?)?;
        }
        if net::has_priorities(n) {
            net::apply_priorities(n, &self.controller_dir("net_prio", "network priorities")?)?;
        }
        Ok(())
    }

    /// The directory for `controller`'s files; None when there is nothing to write (`empty`).
    /// A controller the host does not offer is [`Error::Unsupported`] (runc: "cannot set
    /// ... limit").
    fn target(&self, controller: &str, empty: bool) -> Result<Option<Target>> {
        if empty {
            return Ok(None);
        }
        let v2_name = if controller == "blkio" {
            "io"
        } else {
            controller
        };
        if self.layout == Layout::V2 {
            return Ok(self.dirs.first().map(|h| Target::V2(h.dir.clone())));
        }
        if let Some(dir) = self.dir_for(controller) {
            return Ok(Some(Target::V1(dir)));
        }
        let unified = self
            .dirs
            .iter()
            .find(|h| h.mount.fs == FsType::Cgroup2)
            .filter(|h| offers(&h.mount.mount_point, v2_name));
        match unified {
            Some(h) => {
                let root_enables = fs::read(&h.mount.mount_point, "cgroup.subtree_control")
                    .is_ok_and(|c| c.split_whitespace().any(|x| x == v2_name));
                if !root_enables {
                    return Err(Error::Unsupported {
                        what: format!(
                            "linux.resources: the {controller} controller is bound to cgroup2 on \
                             this hybrid host but {} does not enable it (+{v2_name})",
                            h.mount.mount_point.join("cgroup.subtree_control").display()
                        ),
                    });
                }
                enable_one(&h.mount.mount_point, &h.dir, v2_name)?;
                Ok(Some(Target::V2(h.dir.clone())))
            }
            None => Err(Error::Unsupported {
                what: format!(
                    "linux.resources: the {controller} cgroup controller is not available"
                ),
            }),
        }
    }
}

fn offers(root: &Path, controller: &str) -> bool {
    fs::read(root, "cgroup.controllers")
        .is_ok_and(|c| c.split_whitespace().any(|x| x == controller))
}

/// Enables `controller` in every level from `root` down to `dir`'s parent that does not
/// have it yet; `dir` itself is a leaf and needs nothing.
fn enable_one(root: &Path, dir: &Path, controller: &str) -> Result<()> {
    let mut level = root.to_path_buf();
    let rel = dir.strip_prefix(root).unwrap_or(Path::new(""));
    for comp in rel.components() {
        let enabled = fs::read(&level, "cgroup.subtree_control").unwrap_or_default();
        if !enabled.split_whitespace().any(|c| c == controller) {
            fs::write(&level, "cgroup.subtree_control", &format!("+{controller}"))?;
        }
        level.push(comp);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::detect::tests::{HYBRID, V2};

    fn at(tmp: &Path, mountinfo: &str) -> Cgroup {
        let cg = Cgroup::from_parts(mountinfo, "0::/\n", tmp, "/rs/c").unwrap();
        for h in &cg.dirs {
            std::fs::create_dir_all(&h.dir).unwrap();
        }
        cg
    }

    fn resources(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn hybrid_writes_v1_blkio_and_v2_bound_hugetlb() {
        let tmp = tempfile::tempdir().unwrap();
        let cg = at(tmp.path(), HYBRID);
        let blk = cg.dir_for("blkio").unwrap();
        std::fs::write(blk.join("blkio.bfq.weight"), "100").unwrap();
        let uni = cg.dir_for("").unwrap();
        let root = tmp.path().join("sys/fs/cgroup/unified");
        std::fs::write(root.join("cgroup.controllers"), "hugetlb").unwrap();
        std::fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        std::fs::write(root.join("rs/cgroup.subtree_control"), "").unwrap();
        std::fs::write(uni.join("hugetlb.2MB.max"), "max").unwrap();
        let r = resources(serde_json::json!({"blockIO": {"weight": 300},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]}));
        // The host's unified root does not enable hugetlb: refused, root untouched.
        let err = cg.apply(&r).unwrap_err();
        assert!(err.to_string().contains("does not enable it"), "{err}");
        assert_eq!(fs::read(&root, "cgroup.subtree_control").unwrap(), "");
        // It does: our levels below get it.
        std::fs::write(root.join("cgroup.subtree_control"), "hugetlb").unwrap();
        cg.apply(&r).unwrap();
        assert_eq!(fs::read(&blk, "blkio.bfq.weight").unwrap(), "300");
        assert_eq!(fs::read(&uni, "hugetlb.2MB.max").unwrap(), "2097152");
        assert_eq!(
            fs::read(&root, "cgroup.subtree_control").unwrap(),
            "hugetlb"
        );
        assert_eq!(
            fs::read(&root.join("rs"), "cgroup.subtree_control").unwrap(),
            "+hugetlb"
        );
        // rdma is in neither hierarchy: refused, naming it.
        let r = resources(serde_json::json!({"rdma": {"mlx5_0": {"hcaHandles": 1}}}));
        let err = cg.apply(&r).unwrap_err();
        assert!(err.to_string().contains("rdma"), "{err}");
    }

    #[test]
    fn v2_io_weight_and_network_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let cg = at(tmp.path(), V2);
        let d = cg.dir_for("").unwrap();
        for f in ["io.weight", "io.max", "rdma.max"] {
            std::fs::write(d.join(f), "").unwrap();
        }
        let r = resources(serde_json::json!({
            "blockIO": {"weight": 10,
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 512}]},
            "network": {"classID": 42, "priorities": [{"name": "lo", "priority": 1}]},
            "rdma": {"mlx5_0": {"hcaObjects": 9}}}));
        cg.check(&r).unwrap();
        cg.apply(&r).unwrap();
        assert_eq!(fs::read(&d, "io.weight").unwrap(), "1");
        assert_eq!(fs::read(&d, "io.max").unwrap(), "8:0 rbps=512");
        assert_eq!(fs::read(&d, "rdma.max").unwrap(), "mlx5_0 hca_object=9");
        assert!(!d.join("net_cls.classid").exists());
    }

    #[test]
    fn check_names_the_field_and_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let cg = Cgroup::from_parts(HYBRID, "0::/\n", tmp.path(), "/rs/c").unwrap();
        let cases = [
            (
                serde_json::json!({"blockIO": {"weight": 5}}),
                "blockIO.weight: 5 is out of range",
            ),
            (
                serde_json::json!({"memory": {"swappiness": 101}}),
                "memory.swappiness",
            ),
            (
                serde_json::json!({"hugepageLimits": [{"pageSize": "3KB", "limit": 1}]}),
                "hugepageLimits[0].pageSize",
            ),
            (serde_json::json!({"rdma": {"x": {}}}), "rdma[\"x\"]"),
        ];
        for (json, want) in cases {
            let err = cg.check(&resources(json)).unwrap_err();
            assert!(matches!(err, Error::InvalidValue { .. }), "{err}");
            assert!(err.to_string().contains(want), "{err} lacks {want}");
        }
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}
