//! The crate's one error type. Variants say which input was wrong so the
//! shim can branch on them (e.g. warn and continue on
//! [`Error::UnsupportedOptionsType`], fail `start` on the rest).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not protobuf at all.
    #[error("not a protobuf message: {reason} at byte {offset}")]
    Malformed { offset: usize, reason: &'static str },

    /// Valid protobuf, but shaped like neither a `google.protobuf.Any` nor a
    /// `BootstrapParams`.
    #[error(
        "start stdin is neither google.protobuf.Any nor BootstrapParams: \
         unexpected field {field} (wire type {wire_type})"
    )]
    UnexpectedField { field: u32, wire_type: u8 },

    /// The field layout matched `message`, but prost could not decode it.
    #[error("decode {message}: {source}")]
    Decode {
        message: &'static str,
        #[source]
        source: prost::DecodeError,
    },

    /// An options `Any` whose type we do not know; callers may ignore it.
    #[error(
        "unsupported runtime options type {type_url:?} \
         (expected containerd.runc.v1.Options or runtimeoptions.v1.Options)"
    )]
    UnsupportedOptionsType { type_url: String },

    /// `runtimeoptions.v1.Options.config_path` could not be read.
    #[error("read runtime options config file {path}: {source}", path = path.display())]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The options TOML (from `origin`: `config_body` or a file path) is not UTF-8.
    #[error("runtime options TOML from {origin} is not UTF-8")]
    ConfigNotUtf8 { origin: String },

    /// The options TOML (from `origin`) does not parse or has a mistyped key.
    #[error("parse runtime options TOML from {origin}: {source}")]
    Toml {
        origin: String,
        #[source]
        source: toml::de::Error,
    },
}
