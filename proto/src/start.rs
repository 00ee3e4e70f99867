//! The `start` subcommand's wire: classifying what containerd wrote on
//! stdin, and encoding the `BootstrapResult` we print back.
//!
//! What arrives on stdin, by containerd version:
//!
//! ```text
//! ≤ 2.2, no options configured   (nothing)
//! ≤ 2.2, options configured      Any { 1: type_url, 2: value }
//! ≥ 2.3, every start             BootstrapParams { 1: instance_id, 2: namespace,
//!                                  3: log_level, 4..7: version/addresses/binary,
//!                                  8: Extension { 1: Any(options) }*, 9: socket_dir? }
//! ```
//!
//! The trap: fields 1 and 2 of both messages are length-delimited, so a
//! `BootstrapParams` decodes "successfully" as an `Any` whose `value` is the
//! namespace (then decoding `"k8s.io"` as runc Options fails), and a bare
//! `Any` decodes as a `BootstrapParams` with `instance_id = type_url` (then
//! the options are silently lost — containerd's own Go shim tries that
//! order). Decoding alone cannot decide, so we look at which top-level
//! fields are present: anything in 3..=9 is a `BootstrapParams` (containerd
//! always sets `containerd_version` and `containerd_binary`); only 1 and 2
//! is an `Any`, accepted only when its type URL names an options message.

use prost::Message;

use crate::messages::{BootstrapParams, BootstrapResult};
use crate::options::{OptionsKind, RuntimeOptions};
use crate::wire::{self, WIRE_LEN};
use crate::Error;

/// What containerd sent on `start` stdin.
#[derive(Debug, Clone, PartialEq)]
pub enum StartInput {
    /// Legacy protocol without runtime options.
    Empty,
    /// Legacy protocol: a bare options `Any`, already decoded.
    Options(RuntimeOptions),
    /// containerd ≥ 2.3. Options inside are decoded on demand by
    /// [`BootstrapParams::runtime_options`], so a bad extension does not
    /// hide the namespace, addresses and socket dir.
    Bootstrap(BootstrapParams),
}

impl StartInput {
    /// The runtime options, whichever protocol carried them.
    pub fn runtime_options(&self) -> Result<Option<RuntimeOptions>, Error> {
        match self {
            StartInput::Empty => Ok(None),
            StartInput::Options(opts) => Ok(Some(opts.clone())),
            StartInput::Bootstrap(params) => params.runtime_options(),
        }
    }
}

impl BootstrapParams {
    /// Decodes the first extension whose type is a runtime options message;
    /// other extensions (CRI, NRI, sandbox configs) are skipped.
    pub fn runtime_options(&self) -> Result<Option<RuntimeOptions>, Error> {
        let found = self
            .extensions
            .iter()
            .filter_map(|ext| ext.value.as_ref())
            .find(|any| OptionsKind::from_type_url(&any.type_url).is_some());
        found.map(RuntimeOptions::from_any).transpose()
    }
}

/// Decides what containerd wrote on `start` stdin; see the module docs for
/// why this looks at field numbers before decoding.
///
/// Errors: [`Error::Malformed`] for non-protobuf bytes,
/// [`Error::UnexpectedField`] for protobuf of another shape,
/// [`Error::UnsupportedOptionsType`] for a bare `Any` of an unknown type
/// (a caller may choose to continue with defaults), [`Error::Decode`] and
/// the TOML errors when the recognized message is itself broken.
pub fn parse_start_stdin(bytes: &[u8]) -> Result<StartInput, Error> {
    if bytes.is_empty() {
        return Ok(StartInput::Empty);
    }
    let fields = wire::top_level_fields(bytes)?;
    if fields.iter().any(|f| (3..=9).contains(&f.number)) {
        let params = BootstrapParams::decode(bytes).map_err(|source| Error::Decode {
            message: "containerd.runtime.bootstrap.v1.BootstrapParams",
            source,
        })?;
        return Ok(StartInput::Bootstrap(params));
    }
    if let Some(odd) = fields
        .iter()
        .find(|f| !matches!(f.number, 1 | 2) || f.wire_type != WIRE_LEN)
    {
        return Err(Error::UnexpectedField {
            field: odd.number,
            wire_type: odd.wire_type,
        });
    }
    let any = prost_types::Any::decode(bytes).map_err(|source| Error::Decode {
        message: "google.protobuf.Any",
        source,
    })?;
    RuntimeOptions::from_any(&any).map(StartInput::Options)
}

/// Task API protocol announced in the [`BootstrapResult`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShimProtocol {
    Ttrpc,
    /// containerd accepts gRPC only with version 3.
    Grpc,
}

impl ShimProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            ShimProtocol::Ttrpc => "ttrpc",
            ShimProtocol::Grpc => "grpc",
        }
    }
}

/// The protobuf `BootstrapResult` to print on `start` stdout (containerd
/// ≥ 2.3 decodes it; older ones need the legacy plain address instead).
///
/// `version` is the task API containerd will call: 2 means
/// `containerd.task.v2.Task`, 3 means `containerd.task.v3.Task` (what the Go
/// runc shim announces); containerd rejects anything above 3.
pub fn encode_bootstrap_result(version: i32, address: &str, protocol: ShimProtocol) -> Vec<u8> {
    BootstrapResult {
        version,
        address: address.to_string(),
        protocol: protocol.as_str().to_string(),
        ..Default::default()
    }
    .encode_to_vec()
}

#[cfg(test)]
#[path = "start_tests.rs"]
mod tests;
