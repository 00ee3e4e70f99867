//! The narrow seam between the rootfs code and the kernel's mutating,
//! privileged calls (mount, umount2, pivot_root, mknod). Passed in explicitly
//! as `&dyn Sys`: [`Kernel`] in production, [`fake::Recorder`] in unit tests,
//! which records every call (with the real path behind `/proc/self/fd/N`
//! targets) so mount order and flags are tested without root.

#[cfg(test)]
pub mod fake;

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};

/// Privileged calls the rootfs code makes.
pub trait Sys {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()>;
    fn umount2(&self, target: &Path, flags: MntFlags) -> nix::Result<()>;
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> nix::Result<()>;
    /// mount_setattr(2) with AT_RECURSIVE: MOUNT_ATTR_* bits set/cleared on a subtree.
    fn mount_setattr(&self, target: &Path, set: u64, clr: u64) -> std::io::Result<()>;
    /// Creates a device node under an open directory with exactly `mode`
    /// (mknod is subject to umask) and `owner` (uid, gid).
    fn make_node(
        &self,
        dir: &OwnedFd,
        name: &Path,
        kind: SFlag,
        mode: Mode,
        dev: u64,
        owner: (u32, u32),
    ) -> nix::Result<()>;
}

/// The real kernel.
pub struct Kernel;

impl Sys for Kernel {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()> {
        nix::mount::mount(source, target, fstype, flags, data)
    }

    fn umount2(&self, target: &Path, flags: MntFlags) -> nix::Result<()> {
        nix::mount::umount2(target, flags)
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> nix::Result<()> {
        nix::unistd::pivot_root(new_root, put_old)
    }

    fn make_node(
        &self,
        dir: &OwnedFd,
        name: &Path,
        kind: SFlag,
        mode: Mode,
        dev: u64,
        owner: (u32, u32),
    ) -> nix::Result<()> {
        use nix::fcntl::AtFlags;
        use nix::sys::stat::FchmodatFlags;
        nix::sys::stat::mknodat(dir, name, kind, mode, dev)?;
        match nix::sys::stat::fchmodat(dir, name, mode, FchmodatFlags::NoFollowSymlink) {
            Ok(()) | Err(nix::errno::Errno::EOPNOTSUPP) => {}
            Err(e) => return Err(e),
        }
        let (uid, gid) = (
            nix::unistd::Uid::from_raw(owner.0),
            nix::unistd::Gid::from_raw(owner.1),
        );
        nix::unistd::fchownat(
            dir,
            name,
            Some(uid),
            Some(gid),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
    }

    fn mount_setattr(&self, target: &Path, set: u64, clr: u64) -> std::io::Result<()> {
        #[repr(C)]
        struct MountAttr {
            attr_set: u64,
            attr_clr: u64,
            propagation: u64,
            userns_fd: u64,
        }
        let attr = MountAttr {
            attr_set: set,
            attr_clr: clr,
            propagation: 0,
            userns_fd: 0,
        };
        let path = std::ffi::CString::new(target.as_os_str().as_encoded_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        const AT_RECURSIVE: libc::c_uint = 0x8000;
        // SAFETY: path is a valid C string and attr a live, correctly sized
        // mount_attr for the duration of the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                libc::AT_FDCWD,
                path.as_ptr(),
                AT_RECURSIVE,
                &attr as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}
