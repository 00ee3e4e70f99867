//! Seccomp filters. Not implemented yet: a spec that asks for one is refused
//! rather than silently run unconfined.

use crate::error::{Error, Result};

/// Fails while seccomp support is missing, so no container runs without the
/// filter its spec asked for.
pub fn check_supported() -> Result<()> {
    Err(Error::Unsupported(
        "linux.seccomp: seccomp filters are not supported yet by this build".into(),
    ))
}
