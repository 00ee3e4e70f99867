//! maskedPaths and readonlyPaths, applied after pivot_root. A masked file is
//! covered by the container's /dev/null, which is first verified to be the
//! real 1:3 character device (CVE-2025-31133); a masked directory by an
//! empty read-only tmpfs.

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::MsFlags;
use nix::sys::stat::{fstat, major, minor, Mode, SFlag};

use crate::error::{Error, Result, SysContext};
use crate::rootfs::mounts::remount_bind;
use crate::rootfs::paths::fd_path;
use crate::syscall::Sys;

fn open_path(p: &str) -> nix::Result<OwnedFd> {
    open(
        p,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Opens /dev/null and checks it is the real null device.
fn verified_dev_null() -> Result<OwnedFd> {
    let fd = open_path("/dev/null").ctx(|| "open /dev/null for masking".into())?;
    let st = fstat(&fd).ctx(|| "stat /dev/null".into())?;
    let is_chr = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_chr || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3 {
        return Err(Error::InvalidSpec(
            "/dev/null in the container is not the 1:3 character device; refusing to mask with it"
                .into(),
        ));
    }
    Ok(fd)
}

/// Masks each path that exists.
pub fn mask_paths(list: &[String], sys: &dyn Sys) -> Result<()> {
    if list.is_empty() {
        return Ok(());
    }
    let null = verified_dev_null()?;
    for p in list {
        let target = match open_path(p) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(Error::sys(format!("open masked path {p}"), e)),
        };
        let st = fstat(&target).ctx(|| format!("stat {p}"))?;
        let is_dir = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
        let tpath = fd_path(&target);
        let res = if is_dir {
            let tmpfs = Some(Path::new("tmpfs"));
            sys.mount(tmpfs, &tpath, Some("tmpfs"), MsFlags::MS_RDONLY, None)
        } else {
            sys.mount(Some(&fd_path(&null)), &tpath, None, MsFlags::MS_BIND, None)
        };
        res.ctx(|| format!("mask {p}"))?;
    }
    Ok(())
}

/// Makes each existing path a read-only bind of itself.
pub fn readonly_paths(list: &[String], sys: &dyn Sys) -> Result<()> {
    for p in list {
        let target = match open_path(p) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(Error::sys(format!("open readonly path {p}"), e)),
        };
        let tpath = fd_path(&target);
        sys.mount(
            Some(&tpath),
            &tpath,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )
        .ctx(|| format!("bind readonly path {p}"))?;
        remount_bind(sys, Path::new(p), MsFlags::MS_RDONLY | MsFlags::MS_REC)
            .ctx(|| format!("remount {p} read-only"))?;
    }
    Ok(())
}
