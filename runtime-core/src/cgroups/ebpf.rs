//! The little eBPF this crate needs: raw `bpf_insn` encoding for the handful of opcodes the
//! device filter uses, and the bpf(2) commands that load a `BPF_PROG_TYPE_CGROUP_DEVICE`
//! program and attach it to (or detach it from) a cgroup directory.
//!
//! No libbpf, no maps, no relocations: the programs are straight-line code plus forward
//! jumps, so an 8-byte struct and a few opcode constants are all an assembler has to be.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high nibble (little-endian bitfields).
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

/// A register number (r0: return value, r1: context on entry, r2-r5: scratch here).
pub(crate) type Reg = u8;

// Opcode = operation | source (K: immediate, X: register) | class.
pub(crate) const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
pub(crate) const ALU_MOV_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
pub(crate) const ALU_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
pub(crate) const ALU_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
pub(crate) const ALU_AND_X: u8 = 0x5c; // BPF_ALU | BPF_AND | BPF_X
pub(crate) const ALU_OR_K: u8 = 0x44; // BPF_ALU | BPF_OR | BPF_K
pub(crate) const ALU_XOR_K: u8 = 0xa4; // BPF_ALU | BPF_XOR | BPF_K
pub(crate) const ALU_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
pub(crate) const JMP_JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
pub(crate) const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
pub(crate) const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

fn insn(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

impl Insn {
    /// dst = *(u32 *)(src + off)
    pub fn ldx_w(dst: Reg, src: Reg, off: i16) -> Insn {
        insn(LDX_MEM_W, dst, src, off, 0)
    }
    /// dst = imm (32-bit ALU ops zero the upper half)
    pub fn mov32_imm(dst: Reg, imm: i32) -> Insn {
        insn(ALU_MOV_K, dst, 0, 0, imm)
    }
    /// dst = src
    pub fn mov32_reg(dst: Reg, src: Reg) -> Insn {
        insn(ALU_MOV_X, dst, src, 0, 0)
    }
    /// dst &= imm
    pub fn and32_imm(dst: Reg, imm: i32) -> Insn {
        insn(ALU_AND_K, dst, 0, 0, imm)
    }
    /// dst &= src
    pub fn and32_reg(dst: Reg, src: Reg) -> Insn {
        insn(ALU_AND_X, dst, src, 0, 0)
    }
    /// dst |= imm
    pub fn or32_imm(dst: Reg, imm: i32) -> Insn {
        insn(ALU_OR_K, dst, 0, 0, imm)
    }
    /// dst ^= imm
    pub fn xor32_imm(dst: Reg, imm: i32) -> Insn {
        insn(ALU_XOR_K, dst, 0, 0, imm)
    }
    /// dst >>= imm
    pub fn rsh32_imm(dst: Reg, imm: i32) -> Insn {
        insn(ALU_RSH_K, dst, 0, 0, imm)
    }
    /// if dst == imm: skip `off` instructions
    pub fn jeq_imm(dst: Reg, imm: i32, off: i16) -> Insn {
        insn(JMP_JEQ_K, dst, 0, off, imm)
    }
    /// if dst != imm: skip `off` instructions
    pub fn jne_imm(dst: Reg, imm: i32, off: i16) -> Insn {
        insn(JMP_JNE_K, dst, 0, off, imm)
    }
    /// return r0
    pub fn exit() -> Insn {
        insn(JMP_EXIT, 0, 0, 0, 0)
    }
    #[cfg(test)]
    pub fn dst(&self) -> Reg {
        self.regs & 0x0f
    }
    #[cfg(test)]
    pub fn src(&self) -> Reg {
        self.regs >> 4
    }
}

// bpf(2) commands, program/attach types and flags from <linux/bpf.h>.
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Programs attached with this flag run alongside each other (and those of ancestors).
pub(crate) const BPF_F_ALLOW_MULTI: u32 = 2;

/// `union bpf_attr` for BPF_PROG_LOAD, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for BPF_PROG_ATTACH / BPF_PROG_DETACH.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

/// `union bpf_attr` for BPF_PROG_QUERY (the fields every kernel since 4.15 knows).
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// `union bpf_attr` for BPF_PROG_GET_FD_BY_ID.
#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// bpf(cmd, attr, sizeof attr).
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialised #[repr(C)] prefix of `union bpf_attr` for `cmd`
    // and the size passed is its own; the kernel treats the missing tail as zero. Pointers
    // inside it (instructions, license, log, id array) are owned by the caller's frame and
    // outlive this call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn owned_fd(ret: libc::c_long) -> OwnedFd {
    // SAFETY: bpf(2) returned a new file descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(ret as i32) }
}

/// Loads a cgroup device program. On a verifier refusal the error carries the tail of the
/// verifier's log (the load is retried once with logging on).
pub(crate) fn load_cgroup_device(insns: &[Insn], license: &CStr) -> io::Result<OwnedFd> {
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    attr.prog_name[..10].copy_from_slice(b"rs_devices");
    let err = match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => return Ok(owned_fd(fd)),
        Err(e) => e,
    };
    if !matches!(err.raw_os_error(), Some(libc::EINVAL) | Some(libc::EACCES)) {
        return Err(err);
    }
    let mut log = vec![0u8; 64 * 1024];
    attr.log_level = 1;
    attr.log_size = log.len() as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned_fd(fd)),
        Err(e) => {
            let text = CStr::from_bytes_until_nul(&log)
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(4).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            match tail.is_empty() {
                true => Err(e),
                false => Err(io::Error::new(
                    e.kind(),
                    format!("{e}; verifier: {}", tail.join(" | ")),
                )),
            }
        }
    }
}

/// The device programs attached directly to `cgroup` (not inherited ones), and the flags
/// they were attached with.
pub(crate) fn query_cgroup_device(cgroup: BorrowedFd<'_>) -> io::Result<(Vec<u32>, u32)> {
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr)?;
    ids.truncate(attr.prog_cnt as usize);
    Ok((ids, attr.attach_flags))
}

/// Attaches `prog` to `cgroup` as its device filter with `flags`.
pub(crate) fn attach_cgroup_device(
    cgroup: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    flags: u32,
) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: flags,
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(drop)
}

/// Detaches the program `prog` from `cgroup`.
pub(crate) fn detach_cgroup_device(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: 0,
    };
    bpf(BPF_PROG_DETACH, &mut attr).map(drop)
}

/// A file descriptor for the loaded program with kernel id `id`.
pub(crate) fn prog_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetFdAttr {
        prog_id: id,
        ..Default::default()
    };
    bpf(BPF_PROG_GET_FD_BY_ID, &mut attr).map(owned_fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(i: Insn) -> [u8; 8] {
        // SAFETY: Insn is #[repr(C)], 8 bytes, with no padding (1 + 1 + 2 + 4).
        unsafe { std::mem::transmute::<Insn, [u8; 8]>(i) }
    }

    #[test]
    fn encodes_like_the_kernel_struct() {
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        // ldxw r4, [r1 + 4]
        assert_eq!(bytes(Insn::ldx_w(4, 1, 4)), [0x61, 0x14, 4, 0, 0, 0, 0, 0]);
        // if r2 != 0x1234 goto +3
        assert_eq!(
            bytes(Insn::jne_imm(2, 0x1234, 3)),
            [0x55, 0x02, 3, 0, 0x34, 0x12, 0, 0]
        );
        assert_eq!(bytes(Insn::exit()), [0x95, 0, 0, 0, 0, 0, 0, 0]);
        let m = Insn::mov32_reg(3, 2);
        assert_eq!((m.dst(), m.src()), (3, 2));
    }

    #[test]
    fn attr_layouts_match_linux_bpf_h() {
        assert_eq!(std::mem::size_of::<ProgLoadAttr>(), 72);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, prog_name), 48);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, expected_attach_type), 68);
        assert_eq!(std::mem::size_of::<AttachAttr>(), 16);
        assert_eq!(std::mem::offset_of!(QueryAttr, prog_ids), 16);
        assert_eq!(std::mem::offset_of!(QueryAttr, prog_cnt), 24);
    }
}
