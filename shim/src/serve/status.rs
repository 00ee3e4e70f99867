//! The server's error type and its mapping to ttrpc status codes: the one
//! place where engine and server errors become what containerd branches on.

use containerd_shim_protos::ttrpc::{self, Code};

/// Why a request failed.
#[derive(Debug)]
pub enum RpcError {
    /// The engine failed; its variant decides the code.
    Engine(runtime_core::Error),
    NotFound(String),
    AlreadyExists(String),
    FailedPrecondition(String),
    InvalidArgument(String),
    Unimplemented(String),
    Internal(String),
}

pub type RpcResult<T> = Result<T, RpcError>;

impl From<runtime_core::Error> for RpcError {
    fn from(e: runtime_core::Error) -> Self {
        RpcError::Engine(e)
    }
}

impl RpcError {
    /// The ttrpc code and message.
    pub fn code(&self) -> (Code, String) {
        use runtime_core::Error as E;
        match self {
            RpcError::Engine(e) => {
                let code = match e {
                    E::NotFound(_) => Code::NOT_FOUND,
                    E::AlreadyExists(_) => Code::ALREADY_EXISTS,
                    E::InvalidState(_) => Code::FAILED_PRECONDITION,
                    E::InvalidSpec(_) | E::InvalidArgument(_) => Code::INVALID_ARGUMENT,
                    E::Unsupported(_) => Code::UNIMPLEMENTED,
                    _ => Code::INTERNAL,
                };
                (code, e.to_string())
            }
            RpcError::NotFound(m) => (Code::NOT_FOUND, m.clone()),
            RpcError::AlreadyExists(m) => (Code::ALREADY_EXISTS, m.clone()),
            RpcError::FailedPrecondition(m) => (Code::FAILED_PRECONDITION, m.clone()),
            RpcError::InvalidArgument(m) => (Code::INVALID_ARGUMENT, m.clone()),
            RpcError::Unimplemented(m) => (Code::UNIMPLEMENTED, m.clone()),
            RpcError::Internal(m) => (Code::INTERNAL, m.clone()),
        }
    }
}

/// Converts a handler result into what the ttrpc server sends, logging
/// failures.
pub fn reply<T>(method: &str, r: RpcResult<T>) -> ttrpc::Result<T> {
    r.map_err(|e| {
        let (code, msg) = e.code();
        if code != Code::UNIMPLEMENTED {
            log::warn!("{method}: {msg}");
        }
        ttrpc::Error::RpcStatus(ttrpc::get_status(code, msg))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_codes() {
        use runtime_core::Error as E;
        let c = |e: E| RpcError::from(e).code().0;
        assert_eq!(c(E::NotFound("x".into())), Code::NOT_FOUND);
        assert_eq!(c(E::AlreadyExists("x".into())), Code::ALREADY_EXISTS);
        assert_eq!(c(E::InvalidState("x".into())), Code::FAILED_PRECONDITION);
        assert_eq!(c(E::InvalidSpec("x".into())), Code::INVALID_ARGUMENT);
        assert_eq!(c(E::InvalidArgument("x".into())), Code::INVALID_ARGUMENT);
        assert_eq!(c(E::Child("x".into())), Code::INTERNAL);
        assert_eq!(
            RpcError::Unimplemented("x".into()).code().0,
            Code::UNIMPLEMENTED
        );
    }
}
