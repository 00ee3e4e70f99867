//! Pause and Resume: the engine freezes or thaws the container's cgroup,
//! then TaskPaused / TaskResumed go out. State reports PAUSED from the
//! engine's status (the freezer), not from a flag of ours, so a container
//! paused with `rsrun pause` on the same root shows as paused too.

use containerd_shim_protos::api;
use containerd_shim_protos::events::task::{TaskPaused, TaskResumed};
use containerd_shim_protos::protobuf::well_known_types::empty::Empty;
use runtime_core::container;
use runtime_core::state::Status;

use super::service::{container_of, Service};
use super::status::{RpcError, RpcResult};

impl Service {
    pub(super) fn do_pause(&self, req: api::PauseRequest) -> RpcResult<Empty> {
        self.require_started(&req.id, "pause")?;
        container::pause(&self.root(), &req.id)?;
        self.events.publish(TaskPaused {
            container_id: req.id.clone(),
            ..Default::default()
        });
        log::debug!("paused container {}", req.id);
        Ok(Empty::new())
    }

    pub(super) fn do_resume(&self, req: api::ResumeRequest) -> RpcResult<Empty> {
        self.require_started(&req.id, "resume")?;
        container::resume(&self.root(), &req.id)?;
        self.events.publish(TaskResumed {
            container_id: req.id.clone(),
            ..Default::default()
        });
        log::debug!("resumed container {}", req.id);
        Ok(Empty::new())
    }

    /// A State answer RUNNING becomes PAUSED when the container's cgroup
    /// is frozen; execs of a paused container are paused too (as
    /// containerd's runc shim reports them). Asked after `do_state` has
    /// released the tables: this is an engine call.
    pub(super) fn mark_paused(&self, mut resp: api::StateResponse) -> api::StateResponse {
        let running = resp.status.enum_value() == Ok(api::Status::RUNNING);
        if running && container::status(&self.root(), &resp.id).ok() == Some(Status::Paused) {
            resp.status = api::Status::PAUSED.into();
        }
        resp
    }

    /// As containerd's runc shim: only a started, not exited, init can be
    /// paused or resumed (the engine then checks running / paused).
    fn require_started(&self, id: &str, verb: &str) -> RpcResult<()> {
        let t = self.tables();
        let c = container_of(&t, id)?;
        if c.init.exited().is_some() || c.held_init_exit.is_some() {
            return Err(RpcError::FailedPrecondition(format!(
                "cannot {verb} a stopped container"
            )));
        }
        if !c.init.started {
            return Err(RpcError::FailedPrecondition(format!(
                "cannot {verb} a container that is not started"
            )));
        }
        Ok(())
    }
}
