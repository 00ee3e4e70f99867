//! config.json → a validated [`Plan`]. Everything the container will be is
//! decided here, in the parent, with errors that name the offending field;
//! nothing is created on a bad spec, and the child never re-reads config.json.

mod validate;

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Process, Spec};

use crate::error::{Error, Result};
use crate::namespaces::{Kind, Namespace, Namespaces};

pub use validate::{validate_id, validate_process};

/// A validated container configuration.
#[derive(Debug, Clone)]
pub struct Plan {
    pub id: String,
    /// Absolute bundle directory.
    pub bundle: PathBuf,
    /// Absolute, symlink-free root filesystem path.
    pub rootfs: PathBuf,
    pub spec: Spec,
    pub process: Process,
    pub namespaces: Namespaces,
    /// The cgroup path requested (or the default `/rsrun/<id>`).
    pub cgroups_path: String,
    /// `linux.seccomp`, compiled.
    pub seccomp: Option<crate::seccomp::Program>,
}

/// Reads and parses `<bundle>/config.json`, naming the field on a type error.
pub fn load(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).map_err(|e| Error::path("read", &path, e))?;
    parse(&text)
}

/// Parses spec JSON; errors say which field is wrong.
pub fn parse(text: &[u8]) -> Result<Spec> {
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        if field == "." {
            Error::InvalidSpec(format!("config.json: {}", e.inner()))
        } else {
            Error::InvalidSpec(format!("config.json field {field}: {}", e.inner()))
        }
    })
}

/// Parses an OCI `Process` (exec --process), naming the field on error.
pub fn parse_process(text: &[u8]) -> Result<Process> {
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de)
        .map_err(|e| Error::InvalidSpec(format!("process field {}: {}", e.path(), e.inner())))
}

impl Plan {
    /// Loads and validates the bundle for container `id`.
    pub fn from_bundle(id: &str, bundle: &Path) -> Result<Plan> {
        validate_id(id)?;
        let bundle =
            std::path::absolute(bundle).map_err(|e| Error::path("resolve bundle", bundle, e))?;
        let spec = load(&bundle)?;
        Plan::from_spec(id, &bundle, spec)
    }

    /// Validates an already parsed spec.
    pub fn from_spec(id: &str, bundle: &Path, spec: Spec) -> Result<Plan> {
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| Error::InvalidSpec("root: missing".into()))?;
        let rootfs = bundle.join(root.path());
        let rootfs = std::fs::canonicalize(&rootfs)
            .map_err(|e| Error::InvalidSpec(format!("root.path {}: {e}", rootfs.display())))?;
        if !rootfs.is_dir() {
            return Err(Error::InvalidSpec(format!(
                "root.path {}: not a directory",
                rootfs.display()
            )));
        }
        let process = spec
            .process()
            .clone()
            .ok_or_else(|| Error::InvalidSpec("process: missing".into()))?;
        let namespaces = namespaces_of(&spec)?;
        validate::spec(&spec, &namespaces)?;
        validate_process(&process, "process")?;
        let cgroups_path = cgroups_path_of(id, &spec)?;
        let seccomp = seccomp_of(&spec)?;
        Ok(Plan {
            id: id.to_string(),
            bundle: bundle.to_path_buf(),
            rootfs,
            spec,
            process,
            namespaces,
            cgroups_path,
            seccomp,
        })
    }

    /// Whether the container's process gets a pty.
    pub fn terminal(&self) -> bool {
        self.process.terminal().unwrap_or(false)
    }
}

fn namespaces_of(spec: &Spec) -> Result<Namespaces> {
    let mut out: Vec<Namespace> = Vec::new();
    let list = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    for ns in list {
        let kind = Kind::from(ns.typ());
        if out.iter().any(|n| n.kind == kind) {
            return Err(Error::InvalidSpec(format!(
                "linux.namespaces: {} namespace listed twice",
                kind.spec_name()
            )));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() || !p.exists() {
                return Err(Error::InvalidSpec(format!(
                    "linux.namespaces: {} namespace path {} does not exist",
                    kind.spec_name(),
                    p.display()
                )));
            }
        }
        out.push(Namespace {
            kind,
            path: ns.path().clone(),
        });
    }
    Ok(Namespaces(out))
}

/// Compiles the spec's seccomp profile, if any.
pub fn seccomp_of(spec: &Spec) -> Result<Option<crate::seccomp::Program>> {
    let profile = spec.linux().as_ref().and_then(|l| l.seccomp().clone());
    profile.as_ref().map(crate::seccomp::compile).transpose()
}

fn cgroups_path_of(id: &str, spec: &Spec) -> Result<String> {
    let given = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .map(|p| p.to_string_lossy().into_owned());
    match given {
        Some(p) if !p.is_empty() => {
            if p.split('/').any(|c| c == "..") {
                return Err(Error::InvalidSpec(format!(
                    "linux.cgroupsPath {p}: must not contain '..'"
                )));
            }
            Ok(p)
        }
        _ => Ok(format!("/rsrun/{id}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_the_bad_field() {
        let bad = br#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"bogus"}]}}"#;
        let err = parse(bad).unwrap_err().to_string();
        assert!(err.contains("linux.namespaces[0].type"), "{err}");
        let err = parse(b"{not json").unwrap_err().to_string();
        assert!(err.starts_with("invalid spec: config.json"), "{err}");
    }

    #[test]
    fn plan_rejects_missing_rootfs_and_duplicate_ns() {
        let dir = tempfile::tempdir().unwrap();
        let spec = parse(br#"{"ociVersion":"1.0.2","root":{"path":"nope"},"process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0}}}"#).unwrap();
        let err = Plan::from_spec("a", dir.path(), spec)
            .unwrap_err()
            .to_string();
        assert!(err.contains("root.path"), "{err}");

        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        let spec = parse(br#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0}},"linux":{"namespaces":[{"type":"pid"},{"type":"pid"}]}}"#).unwrap();
        let err = Plan::from_spec("a", dir.path(), spec)
            .unwrap_err()
            .to_string();
        assert!(err.contains("listed twice"), "{err}");
    }

    #[test]
    fn default_cgroup_path_and_dotdot() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        let ok = br#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0}},"linux":{"namespaces":[{"type":"mount"}]}}"#;
        let plan = Plan::from_spec("c1", dir.path(), parse(ok).unwrap()).unwrap();
        assert_eq!(plan.cgroups_path, "/rsrun/c1");
        let bad = br#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0}},"linux":{"cgroupsPath":"/a/../b","namespaces":[{"type":"mount"}]}}"#;
        assert!(Plan::from_spec("c1", dir.path(), parse(bad).unwrap()).is_err());
    }
}
