//! Performing the spec's mounts inside the rootfs, in spec order. Each
//! target is resolved inside the rootfs, created by fd-walk, checked to be
//! under the rootfs, and mounted through its `/proc/self/fd/N` path.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use oci_spec::runtime::Mount;

use crate::cgroups::Cgroup;
use crate::error::{Error, Result, SysContext};
use crate::rootfs::copyup;
use crate::rootfs::options::{self, MountOptions};
use crate::rootfs::paths::{self, Leaf};
use crate::syscall::Sys;

/// Everything a mount needs to know about the container being built.
pub struct Ctx<'a> {
    pub rootfs: &'a Path,
    pub root_fd: &'a OwnedFd,
    pub bundle: &'a Path,
    pub cgroup: Option<&'a Cgroup>,
    /// Whether the container has its own cgroup namespace.
    pub cgroupns: bool,
    pub sys: &'a dyn Sys,
}

/// Mounts one spec entry.
pub fn mount_one(ctx: &Ctx, m: &Mount) -> Result<()> {
    let opts = options::parse(&m.options().clone().unwrap_or_default());
    let typ = m.typ().clone().unwrap_or_default();
    let dest_name = m.destination().display().to_string();
    if typ == "cgroup" {
        return mount_cgroup(ctx, m, &opts);
    }
    let source = source_of(ctx, m, &opts);
    let leaf = if opts.is_bind() && source.as_ref().is_some_and(|s| !s.is_dir()) {
        Leaf::File
    } else {
        Leaf::Dir
    };
    if opts.is_bind() {
        if let Some(src) = &source {
            std::fs::symlink_metadata(src).map_err(|e| {
                Error::InvalidSpec(format!("mount {dest_name}: source {}: {e}", src.display()))
            })?;
        }
    }
    let (target, real) = target_fd(ctx, m.destination(), leaf, &typ)?;
    let tpath = paths::fd_path(&target);
    let what = |step: &str| format!("mount {typ} {step}on {dest_name}");
    if opts.is_bind() {
        let flags = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
        let sys = ctx.sys;
        sys.mount(source.as_deref(), &tpath, None, flags, None)
            .ctx(|| what(""))?;
        if !opts.remount_flags().is_empty() {
            // After mounting, the fd still names the covered directory; flag
            // changes go through the path (this namespace only).
            remount_bind(ctx.sys, &real, opts.remount_flags()).ctx(|| what("(remount) "))?;
        }
    } else {
        let src = source.clone().unwrap_or_else(|| PathBuf::from(&typ));
        let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
        let fstype = Some(typ.as_str());
        ctx.sys
            .mount(Some(&src), &tpath, fstype, opts.flags, data)
            .ctx(|| what(""))?;
        if opts.tmpcopyup {
            // `target` still names the covered directory: copy it up.
            copyup::copy_tree(&target, &real).ctx(|| what("(tmpcopyup) "))?;
        }
    }
    if opts.rec_set != 0 || opts.rec_clr != 0 {
        ctx.sys
            .mount_setattr(&real, opts.rec_set, opts.rec_clr)
            .ctx(|| what("(recursive options) "))?;
    }
    for p in &opts.propagation {
        ctx.sys
            .mount(None, &real, None, *p, None)
            .ctx(|| what("propagation "))?;
    }
    Ok(())
}

/// Remounts a bind mount with extra flags, keeping the flags the kernel
/// locks (nosuid/nodev/noexec/atime) so the remount is not refused.
pub fn remount_bind(sys: &dyn Sys, target: &Path, extra: MsFlags) -> nix::Result<()> {
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | locked_flags(target) | extra;
    sys.mount(None, target, None, flags, None)
}

/// The per-mount flags currently set on the mount containing `path`.
fn locked_flags(path: &Path) -> MsFlags {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let Ok(st) = statvfs(path) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let pairs = [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
    ];
    pairs
        .iter()
        .filter(|(s, _)| f.contains(*s))
        .fold(MsFlags::empty(), |acc, (_, m)| acc | *m)
}

fn source_of(ctx: &Ctx, m: &Mount, opts: &MountOptions) -> Option<PathBuf> {
    let src = m.source().clone()?;
    if opts.is_bind() && src.is_relative() {
        return Some(ctx.bundle.join(src));
    }
    Some(src)
}

/// Resolves, creates and opens a mount target; proc and sysfs must land on a
/// real directory, never a symlink (CVE-2023-27561).
fn target_fd(ctx: &Ctx, dest: &Path, leaf: Leaf, typ: &str) -> Result<(OwnedFd, PathBuf)> {
    let resolved = paths::resolve_in_root(ctx.rootfs, dest)?;
    if (typ == "proc" || typ == "sysfs")
        && resolved != ctx.rootfs.join(dest.strip_prefix("/").unwrap_or(dest))
    {
        return Err(Error::InvalidSpec(format!(
            "mount {typ} on {}: must be mounted on ordinary directory",
            dest.display()
        )));
    }
    let rel = paths::relative_to(ctx.rootfs, &resolved);
    let fd = paths::create_in_root(ctx.root_fd, &rel, leaf)?;
    let real = paths::verify_under(&fd, ctx.rootfs)?;
    Ok((fd, real))
}

/// cgroupfs inside the container: v2 → one cgroup2 mount; v1 → a tmpfs with
/// one mount per host hierarchy. Fresh mounts when the container has its own
/// cgroup namespace (they show only its subtree), bind mounts of its own
/// cgroup dirs otherwise.
fn mount_cgroup(ctx: &Ctx, m: &Mount, opts: &MountOptions) -> Result<()> {
    let Some(cg) = ctx.cgroup else {
        return Ok(());
    };
    let dest = m.destination();
    let (target, _) = target_fd(ctx, dest, Leaf::Dir, "cgroup")?;
    let tpath = paths::fd_path(&target);
    let what = |x: &str| format!("mount cgroup {x}on {}", dest.display());
    let hier = cg.hierarchies();
    let flags = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC);
    if let [only] = hier.as_slice() {
        if only.fstype == "cgroup2" {
            let real = paths::verify_under(&target, ctx.rootfs)?;
            return mount_hierarchy(ctx, &tpath, &real, only, flags).ctx(|| what(""));
        }
    }
    let base = flags & !MsFlags::MS_RDONLY;
    let tmpfs = Some(Path::new("tmpfs"));
    ctx.sys
        .mount(tmpfs, &tpath, Some("tmpfs"), base, Some("mode=755"))
        .ctx(|| what("tmpfs "))?;
    // The fd still names the directory under the new tmpfs; walk again.
    let (target, real) = target_fd(ctx, dest, Leaf::Dir, "cgroup")?;
    for h in &hier {
        let sub = paths::create_in_root(&target, Path::new(&h.name), Leaf::Dir)?;
        let spath = paths::fd_path(&sub);
        mount_hierarchy(ctx, &spath, &real.join(&h.name), h, flags)
            .ctx(|| what(&format!("{} ", h.name)))?;
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        remount_bind(ctx.sys, &real, MsFlags::MS_RDONLY).ctx(|| what("(read-only) "))?;
    }
    Ok(())
}

/// Mounts one hierarchy on `target` (an fd path); `real` is the same place
/// by path, used for the remount that follows a bind.
fn mount_hierarchy(
    ctx: &Ctx,
    target: &Path,
    real: &Path,
    h: &crate::cgroups::Hierarchy,
    flags: MsFlags,
) -> nix::Result<()> {
    if ctx.cgroupns {
        let data = (!h.data.is_empty()).then_some(h.data.as_str());
        let fstype = Some(h.fstype.as_str());
        return ctx
            .sys
            .mount(Some(Path::new("cgroup")), target, fstype, flags, data);
    }
    let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
    ctx.sys.mount(Some(&h.dir), target, None, bind, None)?;
    let extra = flags & !MsFlags::MS_REC;
    if extra.is_empty() {
        return Ok(());
    }
    remount_bind(ctx.sys, real, extra)
}
