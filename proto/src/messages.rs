//! The protobuf messages containerd exchanges with a shim, written as
//! hand-derived prost structs so no `protoc` is needed to build.
//!
//! Field numbers, types and names follow containerd's .proto files exactly:
//! - `containerd.runc.v1.Options`           api/types/runc/options/oci.proto
//! - `runtimeoptions.v1.Options`            api/types/runtimeoptions/v1/api.proto
//! - `containerd.runtime.bootstrap.v1.*`    api/runtime/bootstrap/v1/bootstrap.proto (containerd 2.3)
//!
//! `google.protobuf.Any` is `prost_types::Any`.

use std::collections::BTreeMap;

/// Full protobuf name of [`RuncOptions`]; containerd's typeurl uses it bare as
/// the `Any.type_url`, `anypb.New` prefixes it with `type.googleapis.com/`.
pub const RUNC_OPTIONS_TYPE: &str = "containerd.runc.v1.Options";
/// Full protobuf name of [`RuntimeConfigOptions`].
pub const RUNTIME_CONFIG_OPTIONS_TYPE: &str = "runtimeoptions.v1.Options";

/// The `type.googleapis.com/` form Go's `anypb.New` writes; prost's default
/// is a bare leading `/`, which containerd also accepts but is unusual.
fn google_type_url<M: prost::Name>() -> String {
    format!("type.googleapis.com/{}", M::full_name())
}

/// `containerd.runc.v1.Options`: sent only when the runtime type is
/// `io.containerd.runc.v2`, but we accept it too so Docker/ctr users who pass
/// runc flags get them honored.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RuncOptions {
    #[prost(bool, tag = "1")]
    pub no_pivot_root: bool,
    #[prost(bool, tag = "2")]
    pub no_new_keyring: bool,
    #[prost(string, tag = "3")]
    pub shim_cgroup: String,
    #[prost(uint32, tag = "4")]
    pub io_uid: u32,
    #[prost(uint32, tag = "5")]
    pub io_gid: u32,
    #[prost(string, tag = "6")]
    pub binary_name: String,
    #[prost(string, tag = "7")]
    pub root: String,
    /// Reserved since containerd 2.0 (was `criu_path`); kept so 1.x senders
    /// still decode and round-trip, never used.
    #[prost(string, tag = "8")]
    pub criu_path: String,
    #[prost(bool, tag = "9")]
    pub systemd_cgroup: bool,
    #[prost(string, tag = "10")]
    pub criu_image_path: String,
    #[prost(string, tag = "11")]
    pub criu_work_path: String,
    /// Deprecated in containerd 2.3; decoded only so it is not lost.
    #[prost(string, tag = "12")]
    pub task_api_address: String,
    /// Deprecated in containerd 2.3; decoded only so it is not lost.
    #[prost(uint32, tag = "13")]
    pub task_api_version: u32,
}

impl prost::Name for RuncOptions {
    const NAME: &'static str = "Options";
    const PACKAGE: &'static str = "containerd.runc.v1";
    fn type_url() -> String {
        google_type_url::<Self>()
    }
}

/// `runtimeoptions.v1.Options`: what CRI sends for every non-runc runtime
/// type. `config_body` is the TOML of the `[...runtimes.<handler>.options]`
/// table, used only when `config_path` is empty.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RuntimeConfigOptions {
    /// Informational type of the config content; we do not branch on it.
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(string, tag = "2")]
    pub config_path: String,
    #[prost(bytes = "vec", tag = "3")]
    pub config_body: Vec<u8>,
}

impl prost::Name for RuntimeConfigOptions {
    const NAME: &'static str = "Options";
    const PACKAGE: &'static str = "runtimeoptions.v1";
    fn type_url() -> String {
        google_type_url::<Self>()
    }
}

/// `containerd.runtime.bootstrap.v1.BootstrapParams`: what containerd ≥ 2.3
/// writes to `start` stdin instead of a bare options `Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BootstrapParams {
    #[prost(string, tag = "1")]
    pub instance_id: String,
    #[prost(string, tag = "2")]
    pub namespace: String,
    /// Open enum: keep the raw value, see [`BootstrapParams::log_level_nearest`].
    #[prost(enumeration = "LogLevel", tag = "3")]
    pub log_level: i32,
    #[prost(string, tag = "4")]
    pub containerd_version: String,
    #[prost(string, tag = "5")]
    pub containerd_ttrpc_address: String,
    #[prost(string, tag = "6")]
    pub containerd_grpc_address: String,
    /// containerd's own binary, used as `-publish-binary` for events.
    #[prost(string, tag = "7")]
    pub containerd_binary: String,
    /// The runtime options ride here, each wrapped in an [`Extension`].
    #[prost(message, repeated, tag = "8")]
    pub extensions: Vec<Extension>,
    /// Where to put the shim socket; `None` means the default
    /// `/run/containerd/s`.
    #[prost(string, optional, tag = "9")]
    pub socket_dir: Option<String>,
}

impl prost::Name for BootstrapParams {
    const NAME: &'static str = "BootstrapParams";
    const PACKAGE: &'static str = "containerd.runtime.bootstrap.v1";
    fn type_url() -> String {
        google_type_url::<Self>()
    }
}

impl BootstrapParams {
    /// The requested log level, mapping values this build does not know to
    /// the nearest known level, as the proto asks shims to do.
    pub fn log_level_nearest(&self) -> LogLevel {
        LogLevel::nearest(self.log_level)
    }
}

/// `containerd.runtime.bootstrap.v1.Extension`: one typed configuration
/// section. Note the extra message layer: `extensions` is not a bare
/// `repeated Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Extension {
    #[prost(message, optional, tag = "1")]
    pub value: Option<prost_types::Any>,
}

impl prost::Name for Extension {
    const NAME: &'static str = "Extension";
    const PACKAGE: &'static str = "containerd.runtime.bootstrap.v1";
    fn type_url() -> String {
        google_type_url::<Self>()
    }
}

/// `containerd.runtime.bootstrap.v1.BootstrapResult`: what a shim prints on
/// stdout at the end of `start`. containerd tries this first, then falls
/// back to the legacy plain-address and JSON forms.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BootstrapResult {
    /// Task API version containerd will speak: 2 = `containerd.task.v2.Task`,
    /// 3 = `containerd.task.v3.Task`; containerd rejects > 3.
    #[prost(int32, tag = "1")]
    pub version: i32,
    #[prost(string, tag = "2")]
    pub address: String,
    /// `"ttrpc"` or `"grpc"` (gRPC requires version 3).
    #[prost(string, tag = "3")]
    pub protocol: String,
    #[prost(enumeration = "Capability", repeated, tag = "4")]
    pub capabilities: Vec<i32>,
    /// A BTreeMap so encoding is deterministic.
    #[prost(btree_map = "string, string", tag = "5")]
    pub metadata: BTreeMap<String, String>,
}

impl prost::Name for BootstrapResult {
    const NAME: &'static str = "BootstrapResult";
    const PACKAGE: &'static str = "containerd.runtime.bootstrap.v1";
    fn type_url() -> String {
        google_type_url::<Self>()
    }
}

/// `containerd.runtime.bootstrap.v1.LogLevel`: INFO = 0, more critical
/// levels positive, more verbose levels negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum LogLevel {
    Info = 0,
    Trace = -8,
    Debug = -4,
    Warn = 4,
    Error = 8,
    Fatal = 10,
    Panic = 12,
}

impl LogLevel {
    const ALL: [LogLevel; 7] = [
        LogLevel::Trace,
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
        LogLevel::Fatal,
        LogLevel::Panic,
    ];

    /// The known level closest to `raw`; on a tie the more verbose one, so
    /// an unexpected value never hides messages the sender wanted.
    pub fn nearest(raw: i32) -> LogLevel {
        let mut best = LogLevel::Info;
        let mut best_dist = u64::MAX;
        for level in Self::ALL {
            let dist = (i64::from(raw) - i64::from(level as i32)).unsigned_abs();
            if dist < best_dist {
                best = level;
                best_dist = dist;
            }
        }
        best
    }
}

/// `containerd.runtime.bootstrap.v1.Capability`: reserved for future
/// negotiation; containerd defines only the zero value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Capability {
    Unspecified = 0,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::{Message, Name};

    #[test]
    fn type_urls_match_containerd_package_names() {
        assert_eq!(RuncOptions::full_name(), RUNC_OPTIONS_TYPE);
        assert_eq!(
            RuntimeConfigOptions::full_name(),
            RUNTIME_CONFIG_OPTIONS_TYPE
        );
        assert_eq!(
            BootstrapParams::full_name(),
            "containerd.runtime.bootstrap.v1.BootstrapParams"
        );
    }

    #[test]
    fn log_level_nearest_maps_unknown_values() {
        assert_eq!(LogLevel::nearest(0), LogLevel::Info);
        assert_eq!(LogLevel::nearest(-4), LogLevel::Debug);
        assert_eq!(LogLevel::nearest(-100), LogLevel::Trace);
        assert_eq!(LogLevel::nearest(-6), LogLevel::Trace); // tie → more verbose
        assert_eq!(LogLevel::nearest(9), LogLevel::Error); // tie → more verbose
        assert_eq!(LogLevel::nearest(i32::MAX), LogLevel::Panic);
    }

    #[test]
    fn negative_log_level_is_a_ten_byte_varint() {
        // Go encodes int32 enums sign-extended to 64 bits: -4 → 10 bytes.
        let params = BootstrapParams {
            log_level: LogLevel::Debug as i32,
            ..Default::default()
        };
        let bytes = params.encode_to_vec();
        assert_eq!(
            bytes,
            [0x18, 0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        let back = BootstrapParams::decode(bytes.as_slice()).unwrap();
        assert_eq!(back.log_level_nearest(), LogLevel::Debug);
    }

    #[test]
    fn runc_options_hand_assembled_bytes() {
        // root = "/r" (7), systemd_cgroup = true (9), io_uid = 1000 (4).
        let bytes = [0x20, 0xe8, 0x07, 0x3a, 0x02, b'/', b'r', 0x48, 0x01];
        let opts = RuncOptions::decode(bytes.as_slice()).unwrap();
        assert_eq!(opts.io_uid, 1000);
        assert_eq!(opts.root, "/r");
        assert!(opts.systemd_cgroup);
        assert_eq!(opts.encode_to_vec(), bytes);
    }

    #[test]
    fn bootstrap_result_hand_assembled_bytes() {
        let result = BootstrapResult {
            version: 3,
            address: "unix:///s".into(),
            protocol: "ttrpc".into(),
            capabilities: vec![],
            metadata: BTreeMap::from([("k".to_string(), "v".to_string())]),
        };
        let mut want = vec![0x08, 0x03, 0x12, 0x09];
        want.extend_from_slice(b"unix:///s");
        want.extend_from_slice(&[0x1a, 0x05]);
        want.extend_from_slice(b"ttrpc");
        // map entry: field 5, LEN 6, { key(1) "k", value(2) "v" }
        want.extend_from_slice(&[0x2a, 0x06, 0x0a, 0x01, b'k', 0x12, 0x01, b'v']);
        assert_eq!(result.encode_to_vec(), want);
        assert_eq!(BootstrapResult::decode(want.as_slice()).unwrap(), result);
    }
}
