//! `linux.resources.unified`: raw cgroup v2 "file → value" settings, written as given into the
//! container's v2 directory. Keys are single file names; anything that could leave the
//! directory is refused.

use std::collections::HashMap;
use std::path::Path;

use super::fs;
use super::{Error, Result};

pub(crate) fn apply(map: &HashMap<String, String>, dir: &Path) -> Result<()> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for key in keys {
        let ok =
            key.contains('.') && !key.starts_with('.') && !key.contains('/') && !key.contains('\0');
        if !ok {
            return Err(Error::InvalidValue {
                field: format!("linux.resources.unified[{key:?}]"),
                reason: "not a cgroup v2 control file name (controller.file)".into(),
            });
        }
        fs::write(dir, key, &map[key])?;
    }
    Ok(())
}

/// v1 and hybrid hosts have no single v2 directory holding the controllers.
pub(crate) fn reject_v1(map: &HashMap<String, String>) -> Result<()> {
    match map.is_empty() {
        true => Ok(()),
        false => Err(Error::Unsupported {
            what: "linux.resources.unified needs a cgroup v2 host".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_keys_and_refuses_escapes() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("memory.high"), "max").unwrap();
        let map = HashMap::from([("memory.high".to_string(), "1000".to_string())]);
        apply(&map, tmp.path()).unwrap();
        assert_eq!(fs::read(tmp.path(), "memory.high").unwrap(), "1000");
        for bad in ["../x.y", "memory", ".hidden.x", "a/b.c"] {
            let map = HashMap::from([(bad.to_string(), "1".to_string())]);
            assert!(apply(&map, tmp.path()).is_err(), "{bad}");
        }
        assert!(reject_v1(&HashMap::new()).is_ok());
        assert!(reject_v1(&map).is_err());
    }
}
