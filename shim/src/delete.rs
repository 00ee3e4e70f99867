//! The `delete` action: containerd found the server dead (killed, crashed,
//! or gone after a reboot of containerd) and asks the binary to clean up
//! what it left. Order as in the Go shim's `Stop`: force-delete the
//! container with the engine, unmount `<bundle>/rootfs`, then reply with a
//! protobuf `DeleteResponse{pid from init.pid, exit_status 137, now}` on
//! stdout. Unlike the Go shim, also remove the dead server's socket file,
//! which nothing else would. Problems along the way are warnings on stderr (containerd logs
//! them as "cleanup warnings") and do not fail the reply.

use std::path::{Path, PathBuf};

use containerd_shim_protos::api::DeleteResponse;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::{Message, MessageField};
use runtime_core::state::Root;

use crate::error::{Error, Result};
use crate::flags::Flags;
use crate::{mountinfo, options_file};

/// Engine state root when the options name none. Not runc's
/// `/run/containerd/runc`: our engine's state format is its own, and a
/// runc-typed runtime on the same host must not see (or delete) our state.
pub const DEFAULT_ROOT: &str = "/run/containerd/rs";

/// 128 + SIGKILL: what containerd reports for a task whose shim died.
pub const KILLED_STATUS: u32 = 128 + libc::SIGKILL as u32;

/// Runs `delete`; returns the encoded `DeleteResponse`.
pub fn run(flags: &Flags) -> Result<Vec<u8>> {
    if flags.namespace.is_empty() {
        return Err(Error::Usage("shim namespace cannot be empty".into()));
    }
    if flags.id.is_empty() {
        return Err(Error::Usage("shim id cannot be empty".into()));
    }
    let bundle = match &flags.bundle {
        Some(b) => b.clone(),
        None => std::env::current_dir().map_err(|source| Error::Io {
            op: "get working directory (the bundle)",
            source,
        })?,
    };
    let root = match options_file::load(&bundle) {
        Ok(opts) => state_root(opts.and_then(|o| o.root).as_deref(), &flags.namespace),
        Err(e) => {
            log::warn!("{e}; using the default engine root");
            state_root(None, &flags.namespace)
        }
    };
    delete_container(&root, &flags.id);
    unmount_rootfs(&bundle.join("rootfs"));
    remove_dead_socket(&bundle);
    let pid = read_init_pid(&bundle);
    Ok(response(pid))
}

/// `<root option or /run/containerd/rs>/<namespace>`: one engine root per
/// containerd namespace, as the Go shim joins runc's `--root` with the
/// namespace, so equal ids in two namespaces never collide.
pub fn state_root(root: Option<&Path>, namespace: &str) -> PathBuf {
    root.unwrap_or(Path::new(DEFAULT_ROOT)).join(namespace)
}

/// Force-deletes `id`: kills what is left in its cgroup, removes the cgroup
/// and the state. A container the engine does not know is fine (the server
/// died before `Create`, or after `Delete`).
fn delete_container(root: &Path, id: &str) {
    match runtime_core::container::delete(&Root::new(root), id, true) {
        Ok(()) | Err(runtime_core::Error::NotFound(_)) => {}
        Err(e) => log::warn!("force delete container {id} in {}: {e}", root.display()),
    }
}

/// Unmounts `rootfs` and everything below it, deepest first, lazily
/// (MNT_DETACH: a busy mount must not stop the cleanup). Not mounted
/// (EINVAL) or gone (ENOENT) is fine.
pub fn unmount_rootfs(rootfs: &Path) {
    let mounts = match mountinfo::read() {
        Ok(m) => m,
        Err(e) => {
            log::warn!("read mountinfo: {e}");
            return;
        }
    };
    for target in unmount_order(&mounts, rootfs) {
        // Stacked mounts on one point: unmount until it is no mount point.
        for _ in 0..16 {
            match nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH) {
                Ok(()) => continue,
                Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => break,
                Err(e) => {
                    log::warn!("unmount {}: {e}", target.display());
                    break;
                }
            }
        }
    }
}

/// Mount points at or below `rootfs`, deepest first, each once.
fn unmount_order(mounts: &[mountinfo::Mount], rootfs: &Path) -> Vec<PathBuf> {
    let mut targets: Vec<PathBuf> = mounts
        .iter()
        .map(|m| m.mount_point.clone())
        .filter(|p| p.starts_with(rootfs))
        .collect();
    // Deepest first; equal paths adjacent so dedup drops repeats.
    targets.sort_by(|a, b| {
        let depth = |p: &PathBuf| p.components().count();
        depth(b).cmp(&depth(a)).then_with(|| a.cmp(b))
    });
    targets.dedup();
    targets
}

/// Removes the socket named by `<bundle>/address` when nothing answers on
/// it: a server that died without its Shutdown (SIGKILL, OOM kill) leaves
/// it, and neither containerd nor a later `start` at another address would
/// remove it. A live server (grouped, still serving other containers)
/// keeps its socket, and only a socket file is ever removed.
fn remove_dead_socket(bundle: &Path) {
    use std::os::unix::fs::FileTypeExt;
    let Ok(address) = std::fs::read_to_string(bundle.join(crate::start::ADDRESS_FILE)) else {
        return;
    };
    let path = crate::socket::socket_path(address.trim());
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    if !is_socket || crate::socket::server_alive(path) {
        return;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => log::warn!("remove dead shim socket {}: {e}", path.display()),
    }
}

/// The init pid the server recorded at create; 0 when there is none.
fn read_init_pid(bundle: &Path) -> u32 {
    let path = bundle.join("init.pid");
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| {
            log::warn!("{}: not a pid: {:?}", path.display(), text.trim());
            0
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => {
            log::warn!("read {}: {e}", path.display());
            0
        }
    }
}

/// `DeleteResponse{pid, exit_status: 137, exited_at: now}`, encoded.
pub fn response(pid: u32) -> Vec<u8> {
    let resp = DeleteResponse {
        pid,
        exit_status: KILLED_STATUS,
        exited_at: MessageField::some(Timestamp::now()),
        ..Default::default()
    };
    resp.write_to_bytes().expect("DeleteResponse encodes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_joined_with_namespace() {
        assert_eq!(
            state_root(None, "k8s.io"),
            PathBuf::from("/run/containerd/rs/k8s.io")
        );
        assert_eq!(
            state_root(Some(Path::new("/run/custom")), "default"),
            PathBuf::from("/run/custom/default")
        );
    }

    #[test]
    fn response_decodes() {
        let bytes = response(42);
        let got = DeleteResponse::parse_from_bytes(&bytes).unwrap();
        assert_eq!(got.pid, 42);
        assert_eq!(got.exit_status, 137);
        let now = Timestamp::now().seconds;
        assert!((now - got.exited_at.seconds).abs() < 60);
    }

    #[test]
    fn init_pid_forms() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_init_pid(dir.path()), 0);
        std::fs::write(dir.path().join("init.pid"), "1234\n").unwrap();
        assert_eq!(read_init_pid(dir.path()), 1234);
        std::fs::write(dir.path().join("init.pid"), "junk").unwrap();
        assert_eq!(read_init_pid(dir.path()), 0);
    }

    #[test]
    fn unmount_order_is_deepest_first_and_only_below_rootfs() {
        let mounts = mountinfo::parse(
            "\
1 0 0:1 / / rw - ext4 /dev/sda rw
2 1 0:2 / /b/rootfs rw - overlay overlay rw
3 2 0:3 / /b/rootfs/proc rw - proc proc rw
4 2 0:4 / /b/rootfs/dev/pts rw - devpts devpts rw
5 1 0:5 / /b/rootfs2 rw - tmpfs tmpfs rw
6 2 0:6 / /b/rootfs rw - tmpfs tmpfs rw
",
        );
        assert_eq!(
            unmount_order(&mounts, Path::new("/b/rootfs")),
            vec![
                PathBuf::from("/b/rootfs/dev/pts"),
                PathBuf::from("/b/rootfs/proc"),
                PathBuf::from("/b/rootfs"),
            ]
        );
    }

    #[test]
    fn unmount_of_unmounted_dir_is_quiet() {
        let dir = tempfile::tempdir().unwrap();
        unmount_rootfs(&dir.path().join("rootfs"));
    }

    #[test]
    fn dead_servers_socket_is_removed_a_live_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s");
        let address = format!("unix://{}", sock.display());
        crate::start::write_address(dir.path(), &address).unwrap();
        let live = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        remove_dead_socket(dir.path());
        assert!(sock.exists(), "a live server keeps its socket");
        drop(live);
        remove_dead_socket(dir.path());
        assert!(!sock.exists(), "a dead server's socket is removed");
        // Not a socket: never removed, whatever the address file says.
        std::fs::write(&sock, "data").unwrap();
        remove_dead_socket(dir.path());
        assert!(sock.exists());
        // No address file: nothing to do.
        remove_dead_socket(&dir.path().join("none"));
    }

    #[test]
    fn unknown_container_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        // Must not panic or fail; the engine answers NotFound.
        delete_container(dir.path(), "nope");
    }
}
