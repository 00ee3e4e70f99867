//! Resolving container paths inside the root filesystem without ever leaving
//! it, and creating them by walking directory fds with O_NOFOLLOW, so a
//! symlink swapped in by a racing container cannot redirect a mount or a
//! mkdir onto the host (CVE-2021-30465, CVE-2024-45310).

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, OFlag};
use nix::sys::stat::{mkdirat, Mode};

use crate::error::{Error, Result, SysContext};

const MAX_LINKS: usize = 255;

/// Resolves `unsafe_path` as seen from inside `root` (symlinks, absolute or
/// relative, are followed but clamped to `root`; `..` stops at `root`). The
/// result is `root` joined with a symlink-free relative path; components that
/// do not exist yet are kept as given.
pub fn resolve_in_root(root: &Path, unsafe_path: &Path) -> Result<PathBuf> {
    let mut parts: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: Vec<std::ffi::OsString> = components(unsafe_path);
    pending.reverse();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            parts.pop();
            continue;
        }
        let candidate: PathBuf = root.join(parts.iter().collect::<PathBuf>()).join(&c);
        match std::fs::symlink_metadata(&candidate) {
            Ok(md) if md.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Error::io(
                        format!("resolve {} in rootfs", unsafe_path.display()),
                        Errno::ELOOP,
                    ));
                }
                let target = std::fs::read_link(&candidate)
                    .map_err(|e| Error::path("readlink", &candidate, e))?;
                if target.is_absolute() {
                    parts.clear();
                }
                let mut more = components(&target);
                more.reverse();
                pending.extend(more);
            }
            _ => parts.push(c),
        }
    }
    Ok(root.join(parts.iter().collect::<PathBuf>()))
}

fn components(p: &Path) -> Vec<std::ffi::OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// Opens the root directory as an O_PATH fd.
pub fn open_root(root: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open rootfs {}", root.display()))
}

/// What to create at the end of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    Dir,
    File,
}

/// Creates (if needed) the already-resolved `rel` path under the root fd,
/// walking one component at a time with O_NOFOLLOW: a symlink anywhere on the
/// way is an error, never followed. Returns an O_PATH fd of the leaf.
pub fn create_in_root(root: &OwnedFd, rel: &Path, leaf: Leaf) -> Result<OwnedFd> {
    let comps = components(rel);
    let what = || format!("create {} in rootfs", rel.display());
    let mut dir = nix::unistd::dup(root.as_fd()).ctx(what)?;
    for (i, c) in comps.iter().enumerate() {
        if c == ".." {
            return Err(Error::io(what(), Errno::EINVAL));
        }
        let last = i + 1 == comps.len();
        let want_file = last && leaf == Leaf::File;
        dir = step(&dir, c, want_file).ctx(what)?;
    }
    Ok(dir)
}

fn step(dir: &OwnedFd, name: &OsStr, file: bool) -> nix::Result<OwnedFd> {
    let path_flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let dir_flags = if file {
        path_flags
    } else {
        path_flags | OFlag::O_DIRECTORY
    };
    match openat(dir, name, dir_flags, Mode::empty()) {
        Ok(fd) => return check_not_symlink(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    if file {
        let fd = openat(
            dir,
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        );
        match fd {
            Ok(_) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
    } else {
        match mkdirat(dir, name, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
    }
    openat(dir, name, dir_flags, Mode::empty()).and_then(check_not_symlink)
}

fn check_not_symlink(fd: OwnedFd) -> nix::Result<OwnedFd> {
    // O_PATH|O_NOFOLLOW on a symlink opens the link itself; refuse it.
    if readlinkat(&fd, "").is_ok() {
        return Err(Errno::ELOOP);
    }
    Ok(fd)
}

/// The `/proc/self/fd/N` path of an fd, used as a mount source or target so
/// the kernel acts on exactly the inode we checked.
pub fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Verifies the fd still names a path under `root` (defence in depth after
/// opening: the fd is what gets mounted on).
pub fn verify_under(fd: &impl AsRawFd, root: &Path) -> Result<PathBuf> {
    let real = std::fs::read_link(fd_path(fd)).ctx(|| "readlink mount target".into())?;
    if !real.starts_with(root) {
        return Err(Error::InvalidSpec(format!(
            "mount target {} escapes the rootfs {}",
            real.display(),
            root.display()
        )));
    }
    Ok(real)
}

/// A path relative to root, for create_in_root.
pub fn relative_to(root: &Path, full: &Path) -> PathBuf {
    full.strip_prefix(root)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| PathBuf::from(OsStr::from_bytes(b".")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_are_clamped_to_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        symlink("/etc", root.join("a/abs")).unwrap();
        symlink("../../..", root.join("a/b/up")).unwrap();
        symlink("b", root.join("a/rel")).unwrap();
        assert_eq!(
            resolve_in_root(root, Path::new("/a/abs/x")).unwrap(),
            root.join("etc/x")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("/a/b/up/y")).unwrap(),
            root.join("y")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("/../../z")).unwrap(),
            root.join("z")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("/a/rel/c")).unwrap(),
            root.join("a/b/c")
        );
    }

    #[test]
    fn symlink_loop_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        symlink("l2", d.path().join("l1")).unwrap();
        symlink("l1", d.path().join("l2")).unwrap();
        assert!(resolve_in_root(d.path(), Path::new("/l1")).is_err());
    }

    #[test]
    fn create_walks_without_following_links() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = open_root(d.path()).unwrap();
        create_in_root(&root, Path::new("x/y/z"), Leaf::Dir).unwrap();
        assert!(d.path().join("x/y/z").is_dir());
        create_in_root(&root, Path::new("x/f"), Leaf::File).unwrap();
        assert!(d.path().join("x/f").is_file());
        symlink(outside.path(), d.path().join("evil")).unwrap();
        assert!(create_in_root(&root, Path::new("evil/new"), Leaf::Dir).is_err());
        assert!(!outside.path().join("new").exists());
    }
}
