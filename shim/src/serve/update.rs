//! Update: new resource limits for a task. containerd (`ctr`, CRI) sends
//! runtime-spec's `LinuxResources` through typeurl, which marshals a type
//! that is not protobuf as JSON: the Any's value is the JSON document (type
//! URL `types.containerd.io/opencontainers/runtime-spec/1/LinuxResources`).
//! The engine merges and applies it; annotations are ignored.

use containerd_shim_protos::api;
use containerd_shim_protos::protobuf::well_known_types::empty::Empty;
use oci_spec::runtime::LinuxResources;
use runtime_core::container;

use super::service::{container_of, Service};
use super::status::{RpcError, RpcResult};

impl Service {
    pub(super) fn do_update(&self, req: api::UpdateTaskRequest) -> RpcResult<Empty> {
        container_of(&self.tables(), &req.id)?;
        let resources = decode(&req)?;
        container::update(&self.root(), &req.id, &resources)?;
        log::debug!("updated resources of container {}", req.id);
        Ok(Empty::new())
    }
}

/// The LinuxResources in the request's Any.
fn decode(req: &api::UpdateTaskRequest) -> RpcResult<LinuxResources> {
    let any = req
        .resources
        .as_ref()
        .ok_or_else(|| RpcError::InvalidArgument("update: no resources given".into()))?;
    serde_json::from_slice(&any.value).map_err(|e| {
        RpcError::InvalidArgument(format!(
            "update: resources ({}) are not JSON LinuxResources: {e}",
            any.type_url
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::protobuf::well_known_types::any::Any;
    use containerd_shim_protos::protobuf::MessageField;

    fn req(value: &str) -> api::UpdateTaskRequest {
        api::UpdateTaskRequest {
            id: "c".into(),
            resources: MessageField::some(Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources".into(),
                value: value.as_bytes().to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn decodes_containerds_json() {
        // What `ctr`/CRI send: Go's encoding/json of specs.LinuxResources.
        let r = decode(&req(
            r#"{"devices":null,"memory":{"limit":67108864},"cpu":{"quota":20000,"period":100000}}"#,
        ))
        .unwrap();
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(67108864));
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(20000));
    }

    #[test]
    fn bad_or_missing_resources_are_invalid_arguments() {
        for r in [req("{\"memory\":"), req(r#"{"memory":{"limit":"x"}}"#)] {
            assert!(matches!(decode(&r), Err(RpcError::InvalidArgument(_))));
        }
        let none = api::UpdateTaskRequest {
            id: "c".into(),
            ..Default::default()
        };
        assert!(matches!(decode(&none), Err(RpcError::InvalidArgument(_))));
    }
}
