//! `update`: change the resource limits of a created, running or paused
//! container, as `runc update` does. Only the fields given change: they are
//! merged into the resources saved at create time, the merged set is applied
//! to the cgroup (see [`crate::cgroups::Cgroup::update`]: checked before any
//! write, restored on refusal), and saved back so later updates see it.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources, Spec};

use crate::cgroups;
use crate::container::start::load_spec;
use crate::container::{open, require};
use crate::error::{Error, Result};
use crate::state::{self, Root, Status};

/// Applies the fields set in `resources` to container `id`'s cgroup.
pub fn update(root: &Root, id: &str, resources: &LinuxResources) -> Result<()> {
    let (st, _lock) = open(root, id)?;
    if st.status(root) == Status::Stopped {
        // runc's words.
        return Err(Error::InvalidState("container not running".into()));
    }
    require(
        &st,
        root,
        &[Status::Created, Status::Running, Status::Paused],
        "update",
    )?;
    let dir = root.container_dir(id);
    let mut spec = load_spec(&dir)?;
    let current = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    let merged = merge(&current, resources);
    st.cgroup.update(&merged).map_err(|e| match e {
        // Bad input, not a failure of the runtime.
        cgroups::Error::InvalidValue { .. } => Error::InvalidArgument(e.to_string()),
        e => Error::Cgroup(e),
    })?;
    let mut linux = spec.linux().clone().unwrap_or_default();
    linux.set_resources(Some(merged));
    spec.set_linux(Some(linux));
    save_spec(&dir, &spec)
}

/// `current` with the fields `new` sets. As in runc, 0 (and "") means
/// "unchanged" for the limits where 0 is no usable value (runc's
/// `--resources` template lists every field as 0), device rules are never
/// updated, and an unlimited memory without a swap value means unlimited swap.
pub(crate) fn merge(current: &LinuxResources, new: &LinuxResources) -> LinuxResources {
    let mut out = current.clone();
    if let Some(m) = new.memory() {
        let cur = current.memory().unwrap_or_default();
        out.set_memory(Some(merge_memory(cur, m)));
    }
    if let Some(c) = new.cpu() {
        let cur = current.cpu().clone().unwrap_or_default();
        out.set_cpu(Some(merge_cpu(cur, c)));
    }
    if let Some(p) = new.pids().as_ref().filter(|p| p.limit() != 0) {
        out.set_pids(Some(*p));
    }
    if let Some(w) = new.block_io().as_ref().and_then(|b| given(b.weight())) {
        let mut b: LinuxBlockIo = current.block_io().clone().unwrap_or_default();
        b.set_weight(Some(w));
        out.set_block_io(Some(b));
    }
    if let Some(map) = new.unified() {
        let mut u = current.unified().clone().unwrap_or_default();
        u.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
        out.set_unified(Some(u));
    }
    let not_updatable = [
        ("devices", new.devices().is_some()),
        ("hugepageLimits", new.hugepage_limits().is_some()),
        ("network", new.network().is_some()),
        ("rdma", new.rdma().is_some()),
    ];
    for (name, set) in not_updatable {
        if set {
            log::warn!("linux.resources.{name} cannot be updated; ignored");
        }
    }
    out
}

fn merge_memory(mut out: LinuxMemory, new: &LinuxMemory) -> LinuxMemory {
    if let Some(l) = given(new.limit()) {
        out.set_limit(Some(l));
        if l == -1 && given(new.swap()).is_none() {
            out.set_swap(Some(-1));
        }
    }
    if let Some(s) = given(new.swap()) {
        out.set_swap(Some(s));
    }
    if let Some(r) = given(new.reservation()) {
        out.set_reservation(Some(r));
    }
    if let Some(s) = new.swappiness() {
        out.set_swappiness(Some(s));
    }
    if let Some(d) = new.disable_oom_killer() {
        out.set_disable_oom_killer(Some(d));
    }
    if let Some(k) = new.kernel() {
        out.set_kernel(Some(k));
    }
    if let Some(k) = new.kernel_tcp() {
        out.set_kernel_tcp(Some(k));
    }
    // Only meaningful for this update (v2 checks usage before lowering the limit).
    out.set_check_before_update(new.check_before_update());
    out
}

fn merge_cpu(mut out: LinuxCpu, new: &LinuxCpu) -> LinuxCpu {
    if let Some(v) = given(new.shares()) {
        out.set_shares(Some(v));
    }
    if let Some(v) = given(new.quota()) {
        out.set_quota(Some(v));
    }
    if let Some(v) = given(new.period()) {
        out.set_period(Some(v));
    }
    if let Some(v) = given(new.realtime_runtime()) {
        out.set_realtime_runtime(Some(v));
    }
    if let Some(v) = given(new.realtime_period()) {
        out.set_realtime_period(Some(v));
    }
    if let Some(v) = new.burst() {
        out.set_burst(Some(v));
    }
    if let Some(v) = new.idle() {
        out.set_idle(Some(v));
    }
    if let Some(v) = new.cpus().clone().filter(|s| !s.trim().is_empty()) {
        out.set_cpus(Some(v));
    }
    if let Some(v) = new.mems().clone().filter(|s| !s.trim().is_empty()) {
        out.set_mems(Some(v));
    }
    out
}

/// A value that is set and not 0.
fn given<T: PartialEq + Default>(v: Option<T>) -> Option<T> {
    v.filter(|v| *v != T::default())
}

/// Replaces the saved config.json atomically, so `exec` and later updates
/// read either the old or the new resources.
fn save_spec(dir: &Path, spec: &Spec) -> Result<()> {
    let path = dir.join(state::CONFIG);
    let tmp = dir.join(".config.json.tmp");
    let data = serde_json::to_vec(spec).expect("spec serializes");
    std::fs::write(&tmp, data).map_err(|e| Error::path("write", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::path("rename", &tmp, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn json(r: &LinuxResources) -> serde_json::Value {
        serde_json::to_value(r).unwrap()
    }

    #[test]
    fn only_given_fields_change() {
        let cur = res(r#"{"memory":{"limit":100,"swap":200,"reservation":50},
            "cpu":{"shares":512,"quota":1000,"period":100000,"cpus":"0"},
            "pids":{"limit":20},"devices":[{"allow":false,"access":"rwm"}]}"#);
        let new = res(r#"{"memory":{"limit":150},"cpu":{"quota":2000,"cpus":""}}"#);
        let m = json(&merge(&cur, &new));
        assert_eq!(m["memory"]["limit"], 150);
        assert_eq!(m["memory"]["swap"], 200);
        assert_eq!(m["memory"]["reservation"], 50);
        assert_eq!(m["cpu"]["shares"], 512);
        assert_eq!(m["cpu"]["quota"], 2000);
        assert_eq!(m["cpu"]["period"], 100000);
        assert_eq!(m["cpu"]["cpus"], "0");
        assert_eq!(m["pids"]["limit"], 20);
        assert_eq!(m["devices"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn zero_means_unchanged_as_in_runcs_template() {
        let cur = res(r#"{"memory":{"limit":100},"cpu":{"shares":512},"pids":{"limit":20}}"#);
        let new = res(r#"{"memory":{"limit":0,"reservation":0,"swap":0},
            "cpu":{"shares":0,"quota":0,"period":0},"pids":{"limit":0},"blockIO":{"weight":0}}"#);
        assert_eq!(json(&merge(&cur, &new)), json(&cur));
    }

    #[test]
    fn unlimited_memory_without_swap_means_unlimited_swap() {
        let cur = res(r#"{"memory":{"limit":100,"swap":200}}"#);
        let m = json(&merge(&cur, &res(r#"{"memory":{"limit":-1}}"#)));
        assert_eq!(
            (m["memory"]["limit"].clone(), m["memory"]["swap"].clone()),
            (json!(-1), json!(-1))
        );
        let m = json(&merge(&cur, &res(r#"{"memory":{"limit":-1,"swap":300}}"#)));
        assert_eq!(m["memory"]["swap"], 300);
    }

    #[test]
    fn new_sections_pids_blkio_and_unified() {
        let cur = LinuxResources::default();
        let new = res(r#"{"pids":{"limit":-1},"blockIO":{"weight":300},
            "unified":{"memory.high":"1000"},"cpu":{"idle":1}}"#);
        let m = json(&merge(&cur, &new));
        assert_eq!(m["pids"]["limit"], -1);
        assert_eq!(m["blockIO"]["weight"], 300);
        assert_eq!(m["unified"]["memory.high"], "1000");
        assert_eq!(m["cpu"]["idle"], 1);
        let again = res(r#"{"unified":{"pids.max":"5"}}"#);
        let m2 = json(&merge(&merge(&cur, &new), &again));
        assert_eq!(m2["unified"]["memory.high"], "1000");
        assert_eq!(m2["unified"]["pids.max"], "5");
    }

    use serde_json::json;
}
