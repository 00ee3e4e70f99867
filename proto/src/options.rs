//! Runtime options: one normalized [`RuntimeOptions`] from either message
//! containerd may send (`containerd.runc.v1.Options` for runc-typed
//! runtimes, `runtimeoptions.v1.Options` with a TOML body for all others),
//! plus the systemd-cgroup inference from a `cgroupsPath`.

use std::path::{Path, PathBuf};

use prost::Message;
use serde::Deserialize;

use crate::messages::{
    RuncOptions, RuntimeConfigOptions, RUNC_OPTIONS_TYPE, RUNTIME_CONFIG_OPTIONS_TYPE,
};
use crate::Error;

/// Our normalized runtime options. Empty strings on the wire (proto3's
/// "unset") become `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeOptions {
    pub no_pivot_root: bool,
    pub no_new_keyring: bool,
    /// cgroup to move the shim server into at `start`.
    pub shim_cgroup: Option<String>,
    /// Owner for the IO FIFOs/pipes (user-namespaced containers).
    pub io_uid: u32,
    pub io_gid: u32,
    /// runc's `BinaryName`: the OCI runtime binary to use instead of ours.
    pub binary_name: Option<String>,
    /// Engine state root (runc's `--root`).
    pub root: Option<PathBuf>,
    pub systemd_cgroup: bool,
    pub criu_image_path: Option<PathBuf>,
    pub criu_work_path: Option<PathBuf>,
}

/// Which options message an `Any` carries, by its type URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OptionsKind {
    Runc,
    RuntimeConfig,
}

impl OptionsKind {
    /// Recognizes both containerd's bare full names (typeurl) and
    /// `type.googleapis.com/…` (anypb): the type is what follows the last `/`.
    pub(crate) fn from_type_url(type_url: &str) -> Option<Self> {
        let name = type_url.rsplit('/').next().unwrap_or(type_url);
        match name {
            RUNC_OPTIONS_TYPE => Some(Self::Runc),
            RUNTIME_CONFIG_OPTIONS_TYPE => Some(Self::RuntimeConfig),
            _ => None,
        }
    }
}

impl RuntimeOptions {
    /// Decodes an options `Any` of either supported type. For
    /// `runtimeoptions.v1.Options` the TOML comes from `config_path` when set
    /// (the file is read here), else from `config_body`.
    pub fn from_any(any: &prost_types::Any) -> Result<RuntimeOptions, Error> {
        match OptionsKind::from_type_url(&any.type_url) {
            Some(OptionsKind::Runc) => {
                let opts =
                    RuncOptions::decode(any.value.as_slice()).map_err(|source| Error::Decode {
                        message: RUNC_OPTIONS_TYPE,
                        source,
                    })?;
                Ok(Self::from(opts))
            }
            Some(OptionsKind::RuntimeConfig) => {
                let opts =
                    RuntimeConfigOptions::decode(any.value.as_slice()).map_err(|source| {
                        Error::Decode {
                            message: RUNTIME_CONFIG_OPTIONS_TYPE,
                            source,
                        }
                    })?;
                Self::from_runtime_config(&opts)
            }
            None => Err(Error::UnsupportedOptionsType {
                type_url: any.type_url.clone(),
            }),
        }
    }

    fn from_runtime_config(opts: &RuntimeConfigOptions) -> Result<RuntimeOptions, Error> {
        // The proto says config_body is used only when config_path is unset.
        if !opts.config_path.is_empty() {
            let path = Path::new(&opts.config_path);
            let bytes = std::fs::read(path).map_err(|source| Error::ReadConfig {
                path: path.to_path_buf(),
                source,
            })?;
            return Self::from_toml_bytes(&bytes, &opts.config_path);
        }
        Self::from_toml_bytes(&opts.config_body, "config_body")
    }

    fn from_toml_bytes(bytes: &[u8], origin: &str) -> Result<RuntimeOptions, Error> {
        let text = std::str::from_utf8(bytes).map_err(|_| Error::ConfigNotUtf8 {
            origin: origin.to_string(),
        })?;
        Self::from_toml(text, origin)
    }

    /// Parses the options table TOML with runc's key names; unknown keys
    /// (other runtimes' settings, `TypeUrl`, `ConfigPath`) are ignored.
    pub(crate) fn from_toml(text: &str, origin: &str) -> Result<RuntimeOptions, Error> {
        let t: TomlOptions = toml::from_str(text).map_err(|source| Error::Toml {
            origin: origin.to_string(),
            source,
        })?;
        Ok(RuntimeOptions {
            no_pivot_root: t.no_pivot_root.unwrap_or_default(),
            no_new_keyring: t.no_new_keyring.unwrap_or_default(),
            shim_cgroup: non_empty(t.shim_cgroup),
            io_uid: t.io_uid.unwrap_or_default(),
            io_gid: t.io_gid.unwrap_or_default(),
            binary_name: non_empty(t.binary_name),
            root: non_empty(t.root).map(PathBuf::from),
            systemd_cgroup: t.systemd_cgroup.unwrap_or_default(),
            criu_image_path: non_empty(t.criu_image_path).map(PathBuf::from),
            criu_work_path: non_empty(t.criu_work_path).map(PathBuf::from),
        })
    }
}

impl From<RuncOptions> for RuntimeOptions {
    fn from(o: RuncOptions) -> Self {
        RuntimeOptions {
            no_pivot_root: o.no_pivot_root,
            no_new_keyring: o.no_new_keyring,
            shim_cgroup: non_empty(Some(o.shim_cgroup)),
            io_uid: o.io_uid,
            io_gid: o.io_gid,
            binary_name: non_empty(Some(o.binary_name)),
            root: non_empty(Some(o.root)).map(PathBuf::from),
            systemd_cgroup: o.systemd_cgroup,
            criu_image_path: non_empty(Some(o.criu_image_path)).map(PathBuf::from),
            criu_work_path: non_empty(Some(o.criu_work_path)).map(PathBuf::from),
        }
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// The options table as CRI writes it: Go field names of runc's `Options`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TomlOptions {
    no_pivot_root: Option<bool>,
    no_new_keyring: Option<bool>,
    shim_cgroup: Option<String>,
    io_uid: Option<u32>,
    io_gid: Option<u32>,
    binary_name: Option<String>,
    root: Option<String>,
    systemd_cgroup: Option<bool>,
    criu_image_path: Option<String>,
    criu_work_path: Option<String>,
}

/// True when `path` has the systemd `slice:prefix:name` shape (e.g. CRI's
/// `kubepods-besteffort.slice:cri-containerd:<id>`), meaning the caller
/// wants the systemd cgroup driver even if no option said so: CRI picks
/// this shape from the kubelet's cgroup parent, not from our options.
///
/// Exactly three `:`-separated parts; the slice is empty (runc then uses
/// `system.slice`) or a `*.slice` unit without `/`; the name is non-empty.
pub fn systemd_from_cgroups_path(path: &str) -> bool {
    let mut parts = path.split(':');
    let (Some(slice), Some(_prefix), Some(name), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let slice_ok = slice.is_empty() || (slice.ends_with(".slice") && !slice.contains('/'));
    slice_ok && !name.is_empty() && !name.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Name;

    fn any(type_url: &str, value: Vec<u8>) -> prost_types::Any {
        prost_types::Any {
            type_url: type_url.to_string(),
            value,
        }
    }

    #[test]
    fn runc_options_any_with_and_without_prefix() {
        let opts = RuncOptions {
            systemd_cgroup: true,
            root: "/run/rs".into(),
            shim_cgroup: "/shim".into(),
            io_uid: 1000,
            io_gid: 1001,
            criu_path: "/ignored".into(),
            ..Default::default()
        };
        let prefixed = prost_types::Any::from_msg(&opts).unwrap();
        assert_eq!(prefixed.type_url, RuncOptions::type_url());
        let bare = any(RUNC_OPTIONS_TYPE, opts.encode_to_vec());
        for a in [prefixed, bare] {
            let got = RuntimeOptions::from_any(&a).unwrap();
            assert_eq!(
                got,
                RuntimeOptions {
                    systemd_cgroup: true,
                    root: Some("/run/rs".into()),
                    shim_cgroup: Some("/shim".into()),
                    io_uid: 1000,
                    io_gid: 1001,
                    ..Default::default()
                }
            );
        }
    }

    #[test]
    fn type_url_forms() {
        for url in [
            "containerd.runc.v1.Options",
            "/containerd.runc.v1.Options",
            "type.googleapis.com/containerd.runc.v1.Options",
        ] {
            assert_eq!(
                OptionsKind::from_type_url(url),
                Some(OptionsKind::Runc),
                "{url}"
            );
        }
        assert_eq!(
            OptionsKind::from_type_url("runtimeoptions.v1.Options"),
            Some(OptionsKind::RuntimeConfig)
        );
        assert_eq!(
            OptionsKind::from_type_url("containerd.runc.v1.Optionsx"),
            None
        );
        assert_eq!(OptionsKind::from_type_url(""), None);
    }

    #[test]
    fn runtime_config_toml_body() {
        let opts = RuntimeConfigOptions {
            config_body: b"SystemdCgroup = true\nBinaryName = \"crun\"\n".to_vec(),
            ..Default::default()
        };
        let got = RuntimeOptions::from_any(&prost_types::Any::from_msg(&opts).unwrap()).unwrap();
        assert!(got.systemd_cgroup);
        assert_eq!(got.binary_name.as_deref(), Some("crun"));
        assert_eq!(got.root, None);
    }

    #[test]
    fn runtime_config_hand_assembled_bytes() {
        // runtimeoptions.v1.Options { config_body (3) = "SystemdCgroup = true\n" }
        let body = b"SystemdCgroup = true\n";
        let mut value = vec![0x1a, body.len() as u8];
        value.extend_from_slice(body);
        let got = RuntimeOptions::from_any(&any(RUNTIME_CONFIG_OPTIONS_TYPE, value)).unwrap();
        assert!(got.systemd_cgroup);
    }

    #[test]
    fn toml_keeps_all_runc_keys_and_ignores_unknown_ones() {
        let text = r#"
            TypeUrl = "io.containerd.rs.v1.Config"
            NoPivotRoot = true
            NoNewKeyring = true
            ShimCgroup = "/system.slice/shim"
            IoUid = 65534
            IoGid = 65533
            BinaryName = ""
            Root = "/run/rs-root"
            SystemdCgroup = false
            CriuImagePath = "/ci"
            CriuWorkPath = "/cw"
            SomethingElse = [1, 2]
            [nested]
            x = 1
        "#;
        let got = RuntimeOptions::from_toml(text, "test").unwrap();
        assert_eq!(
            got,
            RuntimeOptions {
                no_pivot_root: true,
                no_new_keyring: true,
                shim_cgroup: Some("/system.slice/shim".into()),
                io_uid: 65534,
                io_gid: 65533,
                binary_name: None,
                root: Some("/run/rs-root".into()),
                systemd_cgroup: false,
                criu_image_path: Some("/ci".into()),
                criu_work_path: Some("/cw".into()),
            }
        );
    }

    #[test]
    fn empty_toml_body_gives_defaults() {
        let got = RuntimeOptions::from_any(&any(RUNTIME_CONFIG_OPTIONS_TYPE, vec![])).unwrap();
        assert_eq!(got, RuntimeOptions::default());
    }

    #[test]
    fn mistyped_toml_key_names_the_origin() {
        let opts = RuntimeConfigOptions {
            config_body: b"SystemdCgroup = \"yes\"\n".to_vec(),
            ..Default::default()
        };
        let err = RuntimeOptions::from_any(&prost_types::Any::from_msg(&opts).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("config_body"), "{err}");
        assert!(err.contains("SystemdCgroup"), "{err}");
    }

    #[test]
    fn config_path_wins_over_body() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rs.toml");
        std::fs::write(&path, "NoPivotRoot = true\nRoot = \"/x\"\n").unwrap();
        let opts = RuntimeConfigOptions {
            config_path: path.to_str().unwrap().into(),
            config_body: b"SystemdCgroup = true\n".to_vec(),
            ..Default::default()
        };
        let got = RuntimeOptions::from_any(&prost_types::Any::from_msg(&opts).unwrap()).unwrap();
        assert!(got.no_pivot_root);
        assert_eq!(got.root, Some(PathBuf::from("/x")));
        assert!(!got.systemd_cgroup);
    }

    #[test]
    fn missing_config_path_is_a_read_error() {
        let opts = RuntimeConfigOptions {
            config_path: "/nonexistent/rs-options.toml".into(),
            ..Default::default()
        };
        let err =
            RuntimeOptions::from_any(&prost_types::Any::from_msg(&opts).unwrap()).unwrap_err();
        assert!(matches!(err, Error::ReadConfig { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/rs-options.toml"));
    }

    #[test]
    fn non_utf8_body_is_rejected() {
        let value = vec![0x1a, 0x02, 0xff, 0xfe];
        let err = RuntimeOptions::from_any(&any(RUNTIME_CONFIG_OPTIONS_TYPE, value)).unwrap_err();
        assert!(matches!(err, Error::ConfigNotUtf8 { .. }), "{err}");
    }

    #[test]
    fn unknown_type_url_is_reported_by_name() {
        let err =
            RuntimeOptions::from_any(&any("type.googleapis.com/foo.Bar", vec![])).unwrap_err();
        assert!(matches!(err, Error::UnsupportedOptionsType { .. }));
        assert!(err.to_string().contains("foo.Bar"), "{err}");
    }

    #[test]
    fn garbage_runc_value_names_the_message() {
        let err = RuntimeOptions::from_any(&any(RUNC_OPTIONS_TYPE, b"k8s.io".to_vec()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("containerd.runc.v1.Options"), "{err}");
    }

    #[test]
    fn systemd_shape() {
        assert!(systemd_from_cgroups_path(
            "kubepods-besteffort-pod1.slice:cri-containerd:abc"
        ));
        assert!(systemd_from_cgroups_path("system.slice:docker:abc"));
        assert!(systemd_from_cgroups_path(":rs:abc"));
        assert!(!systemd_from_cgroups_path("/kubepods/besteffort/pod1/abc"));
        assert!(!systemd_from_cgroups_path("abc"));
        assert!(!systemd_from_cgroups_path(""));
        assert!(!systemd_from_cgroups_path("a.slice:b:c:d"));
        assert!(!systemd_from_cgroups_path("a.slice:b:"));
        assert!(!systemd_from_cgroups_path("/x/y.slice:b:c"));
        assert!(!systemd_from_cgroups_path("notaslice:b:c"));
    }
}
