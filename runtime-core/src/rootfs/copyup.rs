//! runc's `tmpcopyup` mount option: after a tmpfs is mounted over a
//! directory, copy what the directory held into it (modes, owners, links).
//! The source is read through an fd of the covered directory, so the walk
//! never crosses into the new tmpfs or follows a symlink out of the rootfs.

use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use nix::dir::Dir;
use nix::fcntl::{openat, readlinkat, OFlag};
use nix::sys::stat::{fstatat, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};

/// Copies the directory behind `src` (any fd naming it) into `dst`.
pub fn copy_tree(src: &OwnedFd, dst: &Path) -> std::io::Result<()> {
    let dir = openat(
        src,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    copy_dir(dir, dst, 0)
}

fn copy_dir(dir: OwnedFd, dst: &Path, depth: u32) -> std::io::Result<()> {
    if depth > 64 {
        return Err(std::io::Error::other("tmpcopyup: directory tree too deep"));
    }
    let fd = dir.try_clone()?;
    let mut entries = Dir::from_fd(fd)?;
    let names: Vec<std::ffi::CString> = entries
        .iter()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    for name in names {
        let st = fstatat(
            &dir,
            name.as_c_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
        let target = dst.join(std::ffi::OsStr::from_bytes(name.as_bytes()));
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        let mode = st.st_mode & 0o7777;
        if kind == SFlag::S_IFDIR {
            std::fs::DirBuilder::new().mode(mode).create(&target)?;
            let sub = openat(
                &dir,
                name.as_c_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            copy_dir(sub, &target, depth + 1)?;
        } else if kind == SFlag::S_IFREG {
            let from = openat(
                &dir,
                name.as_c_str(),
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            let mut to = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&target)?;
            std::io::copy(&mut std::fs::File::from(from), &mut to)?;
        } else if kind == SFlag::S_IFLNK {
            symlink(readlinkat(&dir, name.as_c_str())?, &target)?;
        } else {
            continue; // device nodes, fifos and sockets are not copied up
        }
        let owner = (
            Some(Uid::from_raw(st.st_uid)),
            Some(Gid::from_raw(st.st_gid)),
        );
        fchownat(
            nix::fcntl::AT_FDCWD,
            &target,
            owner.0,
            owner.1,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
        if kind != SFlag::S_IFLNK {
            // create honours umask; restore the exact mode (incl. setuid bits).
            std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        }
    }
    Ok(())
}
