//! Building the container's filesystem view, in the container's own mount
//! namespace: propagation first (so nothing we do reaches the host), then the
//! rootfs bind, the spec's mounts in order, /dev, pivot_root, and finally the
//! read-only root, masked and read-only paths.

mod copyup;
pub mod devices;
mod masked;
pub mod mounts;
pub mod options;
pub mod paths;

use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::fchdir;

use crate::cgroups::Cgroup;
use crate::error::{Result, SysContext};
use crate::namespaces::Kind;
use crate::spec::Plan;
use crate::syscall::Sys;

pub use masked::{mask_paths, readonly_paths};

/// Everything up to (not including) pivot_root.
pub fn prepare(plan: &Plan, cgroup: Option<&Cgroup>, sys: &dyn Sys) -> Result<()> {
    // Why first: until / is a slave (or private) in this namespace, every
    // mount and unmount below would propagate to the host.
    let prop = root_propagation(plan).unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    let first = if prop.contains(MsFlags::MS_SHARED) {
        MsFlags::MS_SLAVE | MsFlags::MS_REC
    } else {
        prop | MsFlags::MS_REC
    };
    sys.mount(None, Path::new("/"), None, first, None)
        .ctx(|| "make / non-shared in the container's mount namespace".into())?;
    // pivot_root needs the new root to be a mount point.
    let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
    sys.mount(Some(&plan.rootfs), &plan.rootfs, None, bind, None)
        .ctx(|| format!("bind rootfs {}", plan.rootfs.display()))?;
    let root_fd = paths::open_root(&plan.rootfs)?;
    let ctx = mounts::Ctx {
        rootfs: &plan.rootfs,
        root_fd: &root_fd,
        bundle: &plan.bundle,
        cgroup,
        cgroupns: plan.namespaces.has(Kind::Cgroup),
        sys,
    };
    let spec_mounts = plan.spec.mounts().clone().unwrap_or_default();
    for m in &spec_mounts {
        mounts::mount_one(&ctx, m)?;
    }
    let dev_bound = spec_mounts.iter().any(|m| {
        m.destination() == Path::new("/dev")
            && options::parse(&m.options().clone().unwrap_or_default()).is_bind()
    });
    if !dev_bound {
        let mut nodes = devices::defaults();
        for d in plan
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.devices().clone())
            .unwrap_or_default()
        {
            nodes.push(devices::from_spec(&d)?);
        }
        devices::populate(
            &root_fd,
            &plan.rootfs,
            &nodes,
            plan.namespaces.creates(Kind::User),
            sys,
        )?;
    }
    Ok(())
}

/// The mapped `linux.rootfsPropagation`, if set.
fn root_propagation(plan: &Plan) -> Option<MsFlags> {
    let p = plan.spec.linux().as_ref()?.rootfs_propagation().clone()?;
    options::propagation(&p)
}

/// Switches the process's root to the rootfs (pivot_root, or MS_MOVE +
/// chroot with `--no-pivot`).
pub fn enter(rootfs: &Path, no_pivot: bool, sys: &dyn Sys) -> Result<()> {
    if no_pivot {
        nix::unistd::chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
        sys.mount(Some(rootfs), Path::new("/"), None, MsFlags::MS_MOVE, None)
            .ctx(|| "move rootfs to /".into())?;
        nix::unistd::chroot(".").ctx(|| "chroot".into())?;
        return nix::unistd::chdir("/").ctx(|| "chdir /".into());
    }
    let dir = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old_root = open("/", dir, Mode::empty()).ctx(|| "open old root".into())?;
    let new_root = open(rootfs, dir, Mode::empty()).ctx(|| format!("open {}", rootfs.display()))?;
    fchdir(&new_root).ctx(|| format!("chdir {}", rootfs.display()))?;
    let dot = Path::new(".");
    sys.pivot_root(dot, dot).ctx(|| "pivot_root".into())?;
    // The old root is now stacked on the new one. Act on it through its fd
    // (the kernel does not promise where "." is after pivot_root): make it a
    // slave so its unmount cannot propagate anywhere, then detach it.
    fchdir(&old_root).ctx(|| "chdir to old root".into())?;
    sys.mount(None, dot, None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None)
        .ctx(|| "make old root a slave".into())?;
    sys.umount2(dot, MntFlags::MNT_DETACH)
        .ctx(|| "unmount old root".into())?;
    nix::unistd::chdir("/").ctx(|| "chdir /".into())
}

/// After entering the root: the spec's root propagation, read-only root.
pub fn finish_root(plan: &Plan, sys: &dyn Sys) -> Result<()> {
    if let Some(p) = root_propagation(plan) {
        sys.mount(None, Path::new("/"), None, p, None)
            .ctx(|| "set rootfs propagation".into())?;
    }
    let readonly = plan
        .spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false);
    if readonly {
        mounts::remount_bind(sys, Path::new("/"), MsFlags::MS_RDONLY)
            .ctx(|| "remount / read-only".into())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
