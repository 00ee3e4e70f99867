//! The server socket: its address (the same one containerd's Go shims
//! compute, so a grouped pod always lands on one server) and binding it.
//!
//! Address (containerd `pkg/shim/util_unix.go` `CreateSocketAddress`):
//!
//! ```text
//! unix://<socket dir>/<hex sha256(filepath.Join(grpc address, ns, grouping))>
//! ```
//!
//! Go's `filepath.Join` drops empty elements and cleans the result (`//`,
//! `.`, `..`), so [`go_join`] does the same: a containerd configured with
//! `/run/containerd//containerd.sock` must hash to the same name.
//!
//! The socket is always a file (never abstract: those ignore file
//! permissions and escape mount namespaces), created with mode 0600.

use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
use nix::sys::stat::{umask, Mode};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// containerd's default socket directory (`defaults.DefaultStateDir` + `/s`).
pub const DEFAULT_SOCKET_DIR: &str = "/run/containerd/s";

/// `unix://<socket_dir>/<hex sha256(go_join(grpc_address, ns, grouping))>`.
pub fn socket_address(socket_dir: &str, grpc_address: &str, ns: &str, grouping: &str) -> String {
    let hashed = go_join(&[grpc_address, ns, grouping]);
    let digest = Sha256::digest(hashed.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("unix://{socket_dir}/{hex}")
}

/// The file path of a `unix://` address.
pub fn socket_path(address: &str) -> &Path {
    Path::new(address.strip_prefix("unix://").unwrap_or(address))
}

/// Go's `path/filepath.Join` on Unix: empty elements are skipped, the rest
/// joined with `/` and cleaned; all empty gives "".
pub fn go_join(elems: &[&str]) -> String {
    let parts: Vec<&str> = elems.iter().copied().filter(|e| !e.is_empty()).collect();
    if parts.is_empty() {
        return String::new();
    }
    go_clean(&parts.join("/"))
}

/// Go's `path.Clean`: the shortest equivalent path by lexical processing.
pub fn go_clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match out.last() {
                Some(&last) if last != ".." => {
                    out.pop();
                }
                // `/..` is `/`; a relative path keeps leading `..`s.
                _ if rooted => {}
                _ => out.push(".."),
            },
            name => out.push(name),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// What binding the server socket found.
#[derive(Debug)]
pub enum Bound {
    /// We own a fresh listener at the address.
    New(UnixListener),
    /// A live server already listens there: share it (grouped containers).
    Shared,
}

/// Binds `address` (a `unix://` file socket), creating its directory 0711.
/// On EADDRINUSE a connectable socket means another server owns it
/// ([`Bound::Shared`]); an unconnectable one is stale and is replaced once.
pub fn bind(address: &str) -> Result<Bound> {
    let path = socket_path(address);
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(dir)
            .map_err(|e| Error::path("create socket directory", dir, e))?;
    }
    match bind_0600(path) {
        Ok(l) => return Ok(Bound::New(l)),
        Err(e) if e.kind() == ErrorKind::AddrInUse => {}
        Err(e) => return Err(Error::path("bind shim socket", path, e)),
    }
    if server_alive(path) {
        return Ok(Bound::Shared);
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(Error::path("remove stale shim socket", path, e)),
    }
    bind_0600(path)
        .map(Bound::New)
        .map_err(|e| Error::path("bind shim socket (second try)", path, e))
}

/// Binds with umask 0177 so the socket is 0600 from its first instant,
/// then chmods anyway (a umask cannot add bits, but say what we mean).
/// `start` is single-threaded, so the process-wide umask change is safe.
fn bind_0600(path: &Path) -> std::io::Result<UnixListener> {
    let old = umask(Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    umask(old);
    let listener = bound?;
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(listener)
}

/// True when something accepts connections at `path`. The connect is
/// non-blocking: a server with a full backlog (EAGAIN) is alive too, and
/// must not have its socket removed from under it.
pub fn server_alive(path: &Path) -> bool {
    let Ok(addr) = UnixAddr::new(path) else {
        return false;
    };
    let Ok(fd) = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    ) else {
        return false;
    };
    use std::os::fd::AsRawFd;
    match connect(fd.as_raw_fd(), &addr) {
        Ok(()) => true,
        Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINPROGRESS) => true,
        Err(_) => false,
    }
}

/// The directory sockets go in: BootstrapParams' `socket_dir` when given.
pub fn socket_dir(from_bootstrap: Option<&str>) -> PathBuf {
    PathBuf::from(
        from_bootstrap
            .filter(|d| !d.is_empty())
            .unwrap_or(DEFAULT_SOCKET_DIR),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn known_vector() {
        assert_eq!(
            socket_address(
                DEFAULT_SOCKET_DIR,
                "/run/containerd/containerd.sock",
                "default",
                "abc"
            ),
            format!("unix:///run/containerd/s/{}", KNOWN_HEX)
        );
    }

    /// `printf '%s' '/run/containerd/containerd.sock/default/abc' | sha256sum`
    const KNOWN_HEX: &str = "8cb244a719603fe00870d5ce1d8e1f1db43a654cb993d107df1f1ae23ddffa59";

    #[test]
    fn hashed_string_is_cleaned_like_go() {
        let a = socket_address("/s", "/run/containerd/containerd.sock", "default", "abc");
        for addr in [
            "/run/containerd//containerd.sock",
            "/run/containerd/./containerd.sock/",
            "/run/x/../containerd/containerd.sock",
        ] {
            assert_eq!(socket_address("/s", addr, "default", "abc"), a, "{addr}");
        }
        assert!(a.starts_with("unix:///s/"));
        assert_eq!(a.len(), "unix:///s/".len() + 64);
    }

    #[test]
    fn go_join_cases() {
        // Cases from Go's path/filepath join tests.
        assert_eq!(go_join(&[]), "");
        assert_eq!(go_join(&["", ""]), "");
        assert_eq!(go_join(&["a"]), "a");
        assert_eq!(go_join(&["a", "b"]), "a/b");
        assert_eq!(go_join(&["a", ""]), "a");
        assert_eq!(go_join(&["", "b"]), "b");
        assert_eq!(go_join(&["/", "a"]), "/a");
        assert_eq!(go_join(&["/", "a/b"]), "/a/b");
        assert_eq!(go_join(&["/", ""]), "/");
        assert_eq!(go_join(&["//", "a"]), "/a");
        assert_eq!(go_join(&["directory", "file"]), "directory/file");
        assert_eq!(go_join(&["a", "b/../c"]), "a/c");
        assert_eq!(go_join(&["a", "../../b"]), "../b");
        assert_eq!(go_join(&["/a", "../../b"]), "/b");
    }

    #[test]
    fn go_clean_cases() {
        for (input, want) in [
            ("", "."),
            ("abc/", "abc"),
            ("/abc/def/", "/abc/def"),
            ("a//c", "a/c"),
            ("abc/./../def", "def"),
            ("/../abc", "/abc"),
            ("../../abc", "../../abc"),
            ("abc/../..", ".."),
            ("/", "/"),
            (".", "."),
        ] {
            assert_eq!(go_clean(input), want, "{input}");
        }
    }

    #[test]
    fn socket_dir_default_and_override() {
        assert_eq!(socket_dir(None), PathBuf::from(DEFAULT_SOCKET_DIR));
        assert_eq!(socket_dir(Some("")), PathBuf::from(DEFAULT_SOCKET_DIR));
        assert_eq!(socket_dir(Some("/run/x/s")), PathBuf::from("/run/x/s"));
    }

    #[test]
    fn bind_creates_0600_file_socket_then_shares_or_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let sdir = dir.path().join("s");
        let address = format!("unix://{}/sock", sdir.display());
        let path = socket_path(&address).to_path_buf();

        let Bound::New(listener) = bind(&address).unwrap() else {
            panic!("fresh bind must be New");
        };
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let dmode = std::fs::metadata(&sdir).unwrap().permissions().mode() & 0o777;
        assert_eq!(dmode & 0o700, 0o700, "dir mode {dmode:o}");

        // A live listener: the second start shares it.
        assert!(server_alive(&path));
        assert!(matches!(bind(&address).unwrap(), Bound::Shared));

        // The listener gone, the file stays behind: stale, replaced.
        drop(listener);
        assert!(!server_alive(&path));
        assert!(matches!(bind(&address).unwrap(), Bound::New(_)));
    }

    #[test]
    fn socket_path_strips_scheme() {
        assert_eq!(socket_path("unix:///run/s/x"), Path::new("/run/s/x"));
        assert_eq!(socket_path("/run/s/x"), Path::new("/run/s/x"));
    }
}
