//! `<bundle>/rs-options.json`: the runtime options `start` received,
//! persisted so `delete` (run when the server is dead) finds the engine
//! root, and so the server can read them at startup (containerd ≤ 2.2 sends
//! them on `start` stdin only). The Go shim keeps `<bundle>/options.json`
//! for the same reason; we use our own name and schema.

use std::path::{Path, PathBuf};

use rs_proto::RuntimeOptions;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// File name inside the bundle.
pub const FILE: &str = "rs-options.json";

/// The JSON schema: [`RuntimeOptions`] field for field (that type lives in
/// `rs-proto`, which stays serde-free for its wire types).
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
struct Persisted {
    no_pivot_root: bool,
    no_new_keyring: bool,
    shim_cgroup: Option<String>,
    io_uid: u32,
    io_gid: u32,
    binary_name: Option<String>,
    root: Option<PathBuf>,
    systemd_cgroup: bool,
    criu_image_path: Option<PathBuf>,
    criu_work_path: Option<PathBuf>,
}

impl From<&RuntimeOptions> for Persisted {
    fn from(o: &RuntimeOptions) -> Self {
        Persisted {
            no_pivot_root: o.no_pivot_root,
            no_new_keyring: o.no_new_keyring,
            shim_cgroup: o.shim_cgroup.clone(),
            io_uid: o.io_uid,
            io_gid: o.io_gid,
            binary_name: o.binary_name.clone(),
            root: o.root.clone(),
            systemd_cgroup: o.systemd_cgroup,
            criu_image_path: o.criu_image_path.clone(),
            criu_work_path: o.criu_work_path.clone(),
        }
    }
}

impl From<Persisted> for RuntimeOptions {
    fn from(p: Persisted) -> Self {
        RuntimeOptions {
            no_pivot_root: p.no_pivot_root,
            no_new_keyring: p.no_new_keyring,
            shim_cgroup: p.shim_cgroup,
            io_uid: p.io_uid,
            io_gid: p.io_gid,
            binary_name: p.binary_name,
            root: p.root,
            systemd_cgroup: p.systemd_cgroup,
            criu_image_path: p.criu_image_path,
            criu_work_path: p.criu_work_path,
        }
    }
}

/// Writes the options atomically (temp file + rename) into `bundle`.
pub fn save(bundle: &Path, opts: &RuntimeOptions) -> Result<()> {
    let path = bundle.join(FILE);
    let tmp = bundle.join(format!(".{FILE}.tmp"));
    let data = serde_json::to_vec_pretty(&Persisted::from(opts)).expect("options serialize");
    std::fs::write(&tmp, data).map_err(|e| Error::path("write", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::path("rename into", &path, e))
}

/// Reads the options from `bundle`; `None` when the file does not exist
/// (a bundle from before this file, or `start` never ran).
pub fn load(bundle: &Path) -> Result<Option<RuntimeOptions>> {
    let path = bundle.join(FILE);
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::path("read", &path, e)),
    };
    let p: Persisted = serde_json::from_slice(&data).map_err(|e| {
        Error::path(
            "parse",
            &path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })?;
    Ok(Some(p.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_full() {
        let dir = tempfile::tempdir().unwrap();
        let opts = RuntimeOptions {
            no_pivot_root: true,
            no_new_keyring: true,
            shim_cgroup: Some("/system.slice/shim".into()),
            io_uid: 1000,
            io_gid: 1001,
            binary_name: Some("crun".into()),
            root: Some("/run/rs-root".into()),
            systemd_cgroup: true,
            criu_image_path: Some("/ci".into()),
            criu_work_path: Some("/cw".into()),
        };
        save(dir.path(), &opts).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(opts));
        assert!(!dir.path().join(format!(".{FILE}.tmp")).exists());
    }

    #[test]
    fn round_trip_default_and_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        save(
            dir.path(),
            &RuntimeOptions {
                root: Some("/x".into()),
                ..Default::default()
            },
        )
        .unwrap();
        save(dir.path(), &RuntimeOptions::default()).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(RuntimeOptions::default()));
    }

    #[test]
    fn missing_is_none_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        std::fs::write(dir.path().join(FILE), "{not json").unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains(FILE), "{err}");
    }

    #[test]
    fn missing_keys_default() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), r#"{"root":"/r"}"#).unwrap();
        let got = load(dir.path()).unwrap().unwrap();
        assert_eq!(got.root, Some(PathBuf::from("/r")));
        assert!(!got.systemd_cgroup);
    }
}
