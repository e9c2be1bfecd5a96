//! The XDP steering program (`engine/bpf/steer.bpf.c`): loading it with
//! libbpf, attaching it to an interface with a bpf_link, and keeping its
//! maps equal to the engine's [`Steering`].
//!
//! A bpf_link detaches the program when its last fd closes, so a crash or
//! `kill -9` of the process leaves nothing on the interface and a restart
//! just works. A program already attached by another tool (netlink
//! attach, e.g. `ip link set dev X xdp obj ...`) makes the link fail with
//! `EBUSY`; the error names the interface and how to remove it.

use std::collections::HashSet;
use std::ffi::CString;
use std::net::IpAddr;
use std::os::fd::{FromRawFd, OwnedFd};

use crate::io::{IoError, Steering};

/// The compiled steering program, built by `engine/build.rs`.
static STEER_OBJ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/steer.bpf.o"));

/// Where the XDP program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XdpMode {
    /// Native (driver) mode when the driver has it, else generic.
    #[default]
    Auto,
    /// Driver mode only.
    Native,
    /// Generic (skb) mode only: works on every device, slower.
    Generic,
}

/// Key of `vip_map` / `nat_map`; must match `struct key` in steer.bpf.c.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
struct Key {
    addr: [u8; 16],
    port: u16,
    proto: u8,
    family: u8,
}

/// Key of `local_map` / `addr_map`; must match `struct addr_key`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
struct AddrKey {
    addr: [u8; 16],
    family: u8,
    pad: [u8; 3],
}

/// Value of `cfg_map[0]`; must match `struct cfg`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct Cfg {
    fnat_lo: u16,
    fnat_hi: u16,
}

fn addr_bytes(addr: IpAddr) -> ([u8; 16], u8) {
    let mut out = [0u8; 16];
    match addr {
        IpAddr::V4(a) => {
            out[..4].copy_from_slice(&a.octets());
            (out, 4)
        }
        IpAddr::V6(a) => (a.octets(), 6),
    }
}

fn key(proto: u8, addr: IpAddr, port: u16) -> Key {
    let (addr, family) = addr_bytes(addr);
    Key {
        addr,
        port: port.to_be(),
        proto,
        family,
    }
}

fn addr_key(addr: IpAddr) -> AddrKey {
    let (addr, family) = addr_bytes(addr);
    AddrKey {
        addr,
        family,
        pad: [0; 3],
    }
}

/// The map contents a [`Steering`] asks for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Entries {
    vips: HashSet<Key>,
    nats: HashSet<Key>,
    locals: HashSet<AddrKey>,
    addrs: HashSet<AddrKey>,
    ports: (u16, u16),
}

impl Entries {
    fn from(steering: &Steering) -> Entries {
        let mut e = Entries {
            ports: steering.fullnat_ports,
            ..Entries::default()
        };
        for &(proto, addr, port) in &steering.virtual_services {
            e.vips.insert(key(proto, addr, port));
            e.addrs.insert(addr_key(addr));
        }
        for &(proto, addr, port) in &steering.nat_sources {
            e.nats.insert(key(proto, addr, port));
        }
        for &addr in &steering.fullnat_locals {
            e.locals.insert(addr_key(addr));
            e.addrs.insert(addr_key(addr));
        }
        e
    }
}

fn os_err(context: String) -> IoError {
    IoError::Os {
        context,
        source: std::io::Error::last_os_error(),
    }
}

fn neg_err(context: String, ret: i64) -> IoError {
    IoError::Os {
        context,
        source: std::io::Error::from_raw_os_error(i32::try_from(-ret).unwrap_or(libc::EINVAL)),
    }
}

/// One loaded and attached instance of the steering program (one per
/// interface: each has its own XSKMAP indexed by RX queue).
#[derive(Debug)]
pub struct Program {
    ifname: String,
    obj: *mut libbpf_sys::bpf_object,
    /// Held for the program's life: closing it detaches the program.
    _link: OwnedFd,
    xsks_fd: i32,
    vip_fd: i32,
    nat_fd: i32,
    local_fd: i32,
    addr_fd: i32,
    cfg_fd: i32,
    stats_fd: i32,
    entries: Entries,
    /// The mode the program ended up attached in.
    pub mode: XdpMode,
}

// SAFETY: the bpf_object is only touched through &mut self (updates) or
// on drop; libbpf objects have no thread affinity.
unsafe impl Send for Program {}
// SAFETY: shared access only reads plain fields (fds, names).
unsafe impl Sync for Program {}

impl Program {
    /// Load the program and attach it to `ifname` with a bpf_link.
    pub fn attach(ifname: &str, mode: XdpMode) -> Result<Program, IoError> {
        let cname = CString::new(ifname)
            .map_err(|_| IoError::Setup(format!("bad interface name {ifname:?}")))?;
        // SAFETY: cname is a valid C string.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(os_err(format!("interface {ifname}")));
        }
        let name = CString::new("uvs_steer").expect("no NUL");
        // SAFETY: plain-data options struct; zero is its documented default.
        let mut opts: libbpf_sys::bpf_object_open_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<libbpf_sys::bpf_object_open_opts>() as _;
        opts.object_name = name.as_ptr();
        // SAFETY: the buffer is 'static; opts is valid for the call.
        let obj = unsafe {
            libbpf_sys::bpf_object__open_mem(STEER_OBJ.as_ptr().cast(), STEER_OBJ.len() as _, &opts)
        };
        if obj.is_null() {
            return Err(os_err("open the XDP steering object".into()));
        }
        let mut guard = ObjGuard(obj);
        // SAFETY: obj is a valid, opened object.
        let ret = unsafe { libbpf_sys::bpf_object__load(obj) };
        if ret != 0 {
            return Err(neg_err(
                format!("load the XDP steering program for {ifname}"),
                ret.into(),
            ));
        }
        let map_fd = |map: &str| -> Result<i32, IoError> {
            let c = CString::new(map).expect("no NUL");
            // SAFETY: obj is loaded; c is a valid C string.
            let m = unsafe { libbpf_sys::bpf_object__find_map_by_name(obj, c.as_ptr()) };
            if m.is_null() {
                return Err(IoError::Setup(format!("steering program has no map {map}")));
            }
            // SAFETY: m is a map of the loaded object.
            Ok(unsafe { libbpf_sys::bpf_map__fd(m) })
        };
        let prog_name = CString::new("uvs_steer").expect("no NUL");
        // SAFETY: obj is loaded.
        let prog = unsafe { libbpf_sys::bpf_object__find_program_by_name(obj, prog_name.as_ptr()) };
        if prog.is_null() {
            return Err(IoError::Setup("steering object has no uvs_steer".into()));
        }
        // SAFETY: prog belongs to the loaded object.
        let prog_fd = unsafe { libbpf_sys::bpf_program__fd(prog) };

        let tries: &[(XdpMode, u32)] = match mode {
            XdpMode::Auto => &[
                (XdpMode::Native, libbpf_sys::XDP_FLAGS_DRV_MODE),
                (XdpMode::Generic, libbpf_sys::XDP_FLAGS_SKB_MODE),
            ],
            XdpMode::Native => &[(XdpMode::Native, libbpf_sys::XDP_FLAGS_DRV_MODE)],
            XdpMode::Generic => &[(XdpMode::Generic, libbpf_sys::XDP_FLAGS_SKB_MODE)],
        };
        let mut last = 0i32;
        let mut attached = None;
        for &(m, flags) in tries {
            // SAFETY: plain-data options; zero is the default.
            let mut lopts: libbpf_sys::bpf_link_create_opts = unsafe { std::mem::zeroed() };
            lopts.sz = std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _;
            lopts.flags = flags;
            // SAFETY: prog_fd is a loaded XDP program, ifindex exists.
            let fd = unsafe {
                libbpf_sys::bpf_link_create(prog_fd, ifindex as i32, libbpf_sys::BPF_XDP, &lopts)
            };
            if fd >= 0 {
                // SAFETY: fd is a fresh link fd we own.
                attached = Some((m, unsafe { OwnedFd::from_raw_fd(fd) }));
                break;
            }
            last = -fd;
            if last == libc::EBUSY || last == libc::EEXIST {
                break;
            }
        }
        let Some((mode, link)) = attached else {
            if last == libc::EBUSY || last == libc::EEXIST {
                return Err(IoError::Setup(format!(
                    "interface {ifname} already has an XDP program attached (another tool, or \
                     another uvsd on this interface); remove it with `ip link set dev {ifname} \
                     xdp off` (or stop the other instance) and start again"
                )));
            }
            return Err(IoError::Os {
                context: format!("attach the XDP steering program to {ifname}"),
                source: std::io::Error::from_raw_os_error(last),
            });
        };
        let program = Program {
            ifname: ifname.to_owned(),
            obj,
            _link: link,
            xsks_fd: map_fd("xsks_map")?,
            vip_fd: map_fd("vip_map")?,
            nat_fd: map_fd("nat_map")?,
            local_fd: map_fd("local_map")?,
            addr_fd: map_fd("addr_map")?,
            cfg_fd: map_fd("cfg_map")?,
            stats_fd: map_fd("stats_map")?,
            entries: Entries::default(),
            mode,
        };
        guard.0 = std::ptr::null_mut();
        Ok(program)
    }

    /// Send what arrives on `queue` to the AF_XDP socket `sock_fd`.
    pub fn register_socket(&self, queue: u32, sock_fd: i32) -> Result<(), IoError> {
        // SAFETY: key and value are u32 as the XSKMAP wants.
        let ret = unsafe {
            libbpf_sys::bpf_map_update_elem(
                self.xsks_fd,
                (&queue as *const u32).cast(),
                (&sock_fd as *const i32).cast(),
                0,
            )
        };
        if ret != 0 {
            return Err(neg_err(
                format!("register AF_XDP socket of {} queue {queue}", self.ifname),
                ret.into(),
            ));
        }
        Ok(())
    }

    /// Make the maps hold exactly what `steering` asks for: new keys
    /// first, stale ones removed after, so owned traffic never falls out.
    pub fn steer(&mut self, steering: &Steering) -> Result<(), IoError> {
        let new = Entries::from(steering);
        let ifname = self.ifname.clone();
        let put = |fd: i32, k: *const libc::c_void, what: &str| -> Result<(), IoError> {
            let one = 1u8;
            // SAFETY: k points at a key of the map's key size.
            let ret =
                unsafe { libbpf_sys::bpf_map_update_elem(fd, k, (&one as *const u8).cast(), 0) };
            if ret != 0 {
                return Err(neg_err(
                    format!("{what} steering entry on {ifname}"),
                    ret.into(),
                ));
            }
            Ok(())
        };
        let del = |fd: i32, k: *const libc::c_void| {
            // SAFETY: k points at a key of the map's key size. A missing
            // key is not an error here.
            unsafe { libbpf_sys::bpf_map_delete_elem(fd, k) };
        };
        for k in new.vips.difference(&self.entries.vips) {
            put(self.vip_fd, (k as *const Key).cast(), "add virtual service")?;
        }
        for k in new.nats.difference(&self.entries.nats) {
            put(self.nat_fd, (k as *const Key).cast(), "add NAT reply")?;
        }
        for k in new.locals.difference(&self.entries.locals) {
            put(
                self.local_fd,
                (k as *const AddrKey).cast(),
                "add full-NAT local",
            )?;
        }
        for k in new.addrs.difference(&self.entries.addrs) {
            put(self.addr_fd, (k as *const AddrKey).cast(), "add address")?;
        }
        let cfg = Cfg {
            fnat_lo: new.ports.0,
            fnat_hi: new.ports.1,
        };
        let zero = 0u32;
        // SAFETY: cfg_map is an array of one Cfg.
        let ret = unsafe {
            libbpf_sys::bpf_map_update_elem(
                self.cfg_fd,
                (&zero as *const u32).cast(),
                (&cfg as *const Cfg).cast(),
                0,
            )
        };
        if ret != 0 {
            return Err(neg_err(
                format!("set full-NAT ports on {ifname}"),
                ret.into(),
            ));
        }
        for k in self.entries.vips.difference(&new.vips) {
            del(self.vip_fd, (k as *const Key).cast());
        }
        for k in self.entries.nats.difference(&new.nats) {
            del(self.nat_fd, (k as *const Key).cast());
        }
        for k in self.entries.locals.difference(&new.locals) {
            del(self.local_fd, (k as *const AddrKey).cast());
        }
        for k in self.entries.addrs.difference(&new.addrs) {
            del(self.addr_fd, (k as *const AddrKey).cast());
        }
        self.entries = new;
        Ok(())
    }

    /// Frames the program redirected to the sockets and passed to the
    /// kernel, summed over CPUs.
    pub fn counts(&self) -> (u64, u64) {
        // SAFETY: no preconditions.
        let cpus = unsafe { libbpf_sys::libbpf_num_possible_cpus() };
        let cpus = usize::try_from(cpus).unwrap_or(1).max(1);
        let mut out = [0u64; 2];
        let mut vals = vec![0u64; cpus];
        for (idx, slot) in out.iter_mut().enumerate() {
            let k = idx as u32;
            // SAFETY: a per-CPU array of u64 fills one value per CPU.
            let ret = unsafe {
                libbpf_sys::bpf_map_lookup_elem(
                    self.stats_fd,
                    (&k as *const u32).cast(),
                    vals.as_mut_ptr().cast(),
                )
            };
            if ret == 0 {
                *slot = vals.iter().sum();
            }
        }
        (out[0], out[1])
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // The link fd closes with `link` (detaching the program); the
        // object goes with its maps.
        // SAFETY: obj was loaded by us and is closed once.
        unsafe { libbpf_sys::bpf_object__close(self.obj) };
    }
}

/// Closes a half-set-up object on an error path.
struct ObjGuard(*mut libbpf_sys::bpf_object);

impl Drop for ObjGuard {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the object was opened by us and not handed on.
            unsafe { libbpf_sys::bpf_object__close(self.0) };
        }
    }
}
