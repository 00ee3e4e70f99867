//! The typed parent↔child sync channel (a SOCK_SEQPACKET socketpair, one
//! JSON message per packet). Method names follow protocol steps.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, SysContext};

/// Every message of the spawn protocol (see the diagram in `process/mod.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    Go,
    UserNsCreated,
    MapsWritten,
    InitPid(i32),
    RuntimeHooks,
    HooksDone,
    Ready,
    Error(String),
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// Makes the (parent end, child end) pair.
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .ctx(|| "create sync socketpair".into())?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    /// Sends one message.
    pub fn send(&self, msg: &Msg) -> Result<()> {
        let data = serde_json::to_vec(msg).expect("message serializes");
        send(self.fd.as_raw_fd(), &data, MsgFlags::MSG_NOSIGNAL)
            .ctx(|| format!("send {msg:?} on sync socket"))?;
        Ok(())
    }

    /// Receives one message; `Ok(None)` on EOF (all peers gone).
    pub fn recv(&self) -> Result<Option<Msg>> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::errno::Errno::EINTR) => continue,
                // The peer died with our message unread (e.g. OOM-killed):
                // that is the same as EOF for the protocol.
                Err(nix::errno::Errno::ECONNRESET) => return Ok(None),
                r => break r.ctx(|| "receive on sync socket".into())?,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n])
            .map(Some)
            .map_err(|e| Error::Child(format!("bad sync message: {e}")))
    }

    /// Receives the next message and turns child errors and EOF into errors.
    pub fn expect_any(&self, waiting_for: &str) -> Result<Msg> {
        match self.recv()? {
            None => Err(Error::Child(format!(
                "container process exited before {waiting_for}"
            ))),
            Some(Msg::Error(text)) => Err(Error::Child(text)),
            Some(m) => Ok(m),
        }
    }

    /// Receives and requires exactly `want`.
    pub fn expect(&self, want: Msg) -> Result<()> {
        let got = self.expect_any(&format!("{want:?}"))?;
        if got != want {
            return Err(Error::Child(format!(
                "sync: expected {want:?}, got {got:?}"
            )));
        }
        Ok(())
    }

    /// Reports a failure to the other side (best effort).
    pub fn send_error(&self, text: &str) {
        let _ = self.send(&Msg::Error(text.to_string()));
    }

    pub fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_eof() {
        let (p, c) = pair().unwrap();
        c.send(&Msg::InitPid(42)).unwrap();
        assert_eq!(p.expect_any("pid").unwrap(), Msg::InitPid(42));
        c.send(&Msg::Error("mount /proc: denied".into())).unwrap();
        assert_eq!(
            p.expect(Msg::Ready).unwrap_err().to_string(),
            "mount /proc: denied"
        );
        drop(c);
        assert!(p.recv().unwrap().is_none());
        assert!(p
            .expect(Msg::Ready)
            .unwrap_err()
            .to_string()
            .contains("exited before"));
    }
}
