//! The generated device filter run by a tiny eBPF interpreter (only the opcodes the generator
//! emits; it panics on anything else, on reads of unset registers and on backward jumps, the
//! way the verifier would refuse them).

use oci_spec::runtime::LinuxDeviceCgroupBuilder;

use super::*;
use crate::cgroups::ebpf::*;

/// Runs `prog` on a device access; true = allowed (the program returned 1).
fn run(prog: &[Insn], typ: char, major: u32, minor: u32, access: &str) -> bool {
    let dev_type = match typ {
        'b' => DEV_BLOCK,
        _ => DEV_CHAR,
    };
    let acc = access_bits(access).unwrap() as u32;
    let ctx = [(acc << 16) | dev_type, major, minor];
    let mut regs: [Option<u64>; 11] = [None; 11];
    regs[1] = Some(0); // the context "pointer"
    let mut pc = 0usize;
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 10_000, "runaway program");
        let i = prog[pc];
        let (dst, src) = (i.dst() as usize, i.src() as usize);
        let (at, snapshot) = (pc, regs);
        let get = |r: usize| snapshot[r].unwrap_or_else(|| panic!("r{r} read before set at {at}"));
        let alu = |v: u64| Some(v & 0xffff_ffff);
        pc += 1;
        match i.code {
            LDX_MEM_W => {
                assert_eq!(get(src), 0, "ldx from a non-context register");
                let off = i.off as usize;
                assert!(off.is_multiple_of(4) && off < 12, "ctx read at {off}");
                regs[dst] = Some(ctx[off / 4] as u64);
            }
            ALU_MOV_K => regs[dst] = alu(i.imm as u32 as u64),
            ALU_MOV_X => regs[dst] = alu(get(src)),
            ALU_AND_K => regs[dst] = alu(get(dst) & i.imm as u32 as u64),
            ALU_AND_X => regs[dst] = alu(get(dst) & get(src)),
            ALU_OR_K => regs[dst] = alu(get(dst) | i.imm as u32 as u64),
            ALU_XOR_K => regs[dst] = alu(get(dst) ^ i.imm as u32 as u64),
            ALU_RSH_K => regs[dst] = alu(get(dst) >> i.imm),
            JMP_JEQ_K | JMP_JNE_K => {
                assert!(i.off >= 0, "backward jump");
                let eq = get(dst) == i.imm as i64 as u64;
                if eq == (i.code == JMP_JEQ_K) {
                    pc += i.off as usize;
                }
            }
            JMP_EXIT => {
                let r0 = get(0);
                assert!(r0 <= 1, "returns {r0}");
                return r0 == 1;
            }
            other => panic!("unexpected opcode {other:#x}"),
        }
    }
}

fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: i64,
    minor: i64,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .access(access)
        .build()
        .unwrap();
    r.set_major(Some(major));
    r.set_minor(Some(minor));
    r
}

fn deny_all() -> LinuxDeviceCgroup {
    LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .unwrap()
}

fn prog_for(spec: &[LinuxDeviceCgroup]) -> Vec<Insn> {
    program(&effective(spec).unwrap())
}

use LinuxDeviceType::{A, B, C};

#[test]
fn default_rules_allow_the_standard_nodes_only() {
    // What `rsrun spec` writes: deny everything; the defaults are appended.
    let p = prog_for(&[deny_all()]);
    // 7 header + 7 tail; c *:* m and b *:* m: 2 each; 8 fully specified nodes: 4 each;
    // c 136:* rwm: 3. The two deny-all rules are folded into r0's start value.
    assert_eq!(p.len(), 7 + 2 + 2 + 8 * 4 + 3 + 7);
    for (maj, min) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
    ] {
        assert!(run(&p, 'c', maj, min, "rw"), "c {maj}:{min} rw");
        assert!(run(&p, 'c', maj, min, "r"), "c {maj}:{min} r");
    }
    assert!(run(&p, 'c', 136, 4, "rw"), "pts");
    assert!(run(&p, 'b', 8, 0, "m"), "mknod of any node");
    assert!(run(&p, 'c', 10, 200, "m"), "mknod of any node");
    assert!(!run(&p, 'b', 8, 0, "r"), "b 8:0 r");
    assert!(!run(&p, 'b', 1, 3, "r"), "type matters");
    assert!(!run(&p, 'c', 1, 11, "w"), "kmsg");
    assert!(
        !run(&p, 'c', 1, 11, "rm"),
        "one denied bit denies the request"
    );
    assert!(!run(&p, 'c', 137, 0, "r"));
    // No rules at all in the spec means the same.
    assert_eq!(prog_for(&[]), p);
}

#[test]
fn later_rules_win_per_access_bit() {
    let spec = [
        rule(true, C, 1, 11, "rw"),
        rule(false, C, 1, 11, "w"),
        rule(false, B, 7, -1, "r"),
        rule(true, B, 7, 3, "r"),
    ];
    let p = prog_for(&spec);
    assert!(run(&p, 'c', 1, 11, "r"));
    assert!(
        !run(&p, 'c', 1, 11, "w"),
        "later deny overrides earlier allow"
    );
    assert!(!run(&p, 'c', 1, 11, "rw"), "O_RDWR needs both bits");
    assert!(
        run(&p, 'b', 7, 3, "r"),
        "later allow overrides earlier deny"
    );
    assert!(!run(&p, 'b', 7, 4, "r"));
}

#[test]
fn partial_allows_add_up() {
    let p = prog_for(&[rule(true, C, 10, 229, "r"), rule(true, C, 10, 229, "w")]);
    assert!(run(&p, 'c', 10, 229, "rw"));
    assert!(!run(&p, 'c', 10, 228, "r"));
}

#[test]
fn wildcards() {
    let p = prog_for(&[
        rule(true, C, 10, -1, "r"),
        rule(true, B, -1, 3, "w"),
        rule(true, A, 4, 64, "r"),
    ]);
    assert!(run(&p, 'c', 10, 0, "r") && run(&p, 'c', 10, 999, "r"));
    assert!(!run(&p, 'c', 10, 0, "w"));
    assert!(!run(&p, 'c', 11, 0, "r"));
    assert!(run(&p, 'b', 8, 3, "w") && run(&p, 'b', 259, 3, "w"));
    assert!(!run(&p, 'c', 8, 3, "w"), "type b only");
    assert!(
        run(&p, 'c', 4, 64, "r") && run(&p, 'b', 4, 64, "r"),
        "type a: both"
    );
    assert!(!run(&p, 'c', 4, 65, "r"));
}

#[test]
fn allow_all_then_deny_some() {
    let allow_all = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .access("rwm")
        .build()
        .unwrap();
    let rules = effective(std::slice::from_ref(&allow_all)).unwrap();
    assert!(allows_everything(&rules));
    let p = program(&rules);
    assert!(run(&p, 'b', 8, 0, "rwm") && run(&p, 'c', 1, 11, "rw"));

    let rules = effective(&[allow_all, rule(false, B, 8, -1, "w")]).unwrap();
    assert!(!allows_everything(&rules));
    let p = program(&rules);
    assert!(run(&p, 'b', 8, 0, "r"));
    assert!(!run(&p, 'b', 8, 0, "w"));
    assert!(!allows_everything(&effective(&[]).unwrap()));
}

#[test]
fn bad_rules_are_rejected() {
    for (r, what) in [
        (rule(true, C, 1, 3, "rwx"), "access"),
        (rule(true, C, -7, 3, "r"), "device number -7"),
        (rule(true, C, 1, 1 << 40, "r"), "device number"),
        (rule(true, LinuxDeviceType::P, 1, 3, "r"), "\"p\""),
        (rule(true, C, 1, 3, ""), "access"),
    ] {
        let err = effective(&[deny_all(), r]).unwrap_err().to_string();
        assert!(err.contains("devices[1]") && err.contains(what), "{err}");
    }
}

/// The kernel's verifier accepts what we generate (root only: BPF_PROG_LOAD needs
/// CAP_BPF/CAP_SYS_ADMIN; nothing is attached).
#[test]
fn kernel_verifier_accepts_the_programs() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping kernel_verifier_accepts_the_programs: needs root");
        return;
    }
    for spec in [
        vec![deny_all()],
        vec![rule(true, C, 1, 11, "rw"), rule(false, B, 7, -1, "r")],
    ] {
        let insns = prog_for(&spec);
        if let Err(e) = ebpf::load_cgroup_device(&insns, LICENSE) {
            panic!("load: {e}");
        }
    }
    let bad = [Insn::exit()]; // r0 never set
    let err = ebpf::load_cgroup_device(&bad, LICENSE).unwrap_err();
    assert!(err.to_string().contains("verifier"), "{err}");
}

/// The first cgroup2 mount point (the hybrid host's "unified" one or the v2 root).
fn cgroup2_mount() -> Option<std::path::PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines()
        .find(|l| l.contains(" - cgroup2 "))
        .and_then(|l| l.split(' ').nth(4))
        .map(Into::into)
}

/// A second apply replaces the first filter instead of stacking another (root only; on a
/// cgroup2 directory this test creates and removes, with no process in it).
#[test]
fn apply_replaces_the_previous_filter() {
    let Some(mount) = cgroup2_mount().filter(|_| nix::unistd::geteuid().is_root()) else {
        eprintln!("skipping apply_replaces_the_previous_filter: needs root and cgroup2");
        return;
    };
    let dir = mount.join(format!("rstest-devbpf-{}", std::process::id()));
    std::fs::create_dir(&dir).unwrap();
    let attached = || {
        let f = std::fs::File::open(&dir).unwrap();
        ebpf::query_cgroup_device(f.as_fd()).unwrap()
    };
    let result = std::panic::catch_unwind(|| {
        apply(&[deny_all()], &dir).unwrap();
        let (first, flags) = attached();
        assert_eq!((first.len(), flags), (1, BPF_F_ALLOW_MULTI));
        apply(&[deny_all(), rule(true, C, 1, 11, "r")], &dir).unwrap();
        let (second, _) = attached();
        assert_eq!(second.len(), 1, "old filter not detached");
        assert_ne!(first, second);
    });
    std::fs::remove_dir(&dir).unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
