//! AF_XDP sockets over one UMEM, on libxdp's `xsk_*` API (the one
//! xsk-rs wraps), with the rings read and written here in Rust.
//!
//! Why not xsk-rs itself: its frame descriptors keep their address
//! private and always send from where the frame was received, but the
//! engine's tunnel encapsulation moves the frame start into the headroom;
//! we need `tx addr = frame base + new start`. The rings are the kernel's
//! documented single-producer/single-consumer layout (`xsk.h`), touched
//! with acquire/release atomics exactly as libxdp's inline helpers do.

use std::ffi::CString;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::io::IoError;

/// `SOL_XDP`.
const SOL_XDP: i32 = 283;
/// `XDP_MAX_TX_SKB_BUDGET` (accepted by kernels ≥ 6.16 or so; ignored
/// where refused).
const XDP_MAX_TX_SKB_BUDGET: i32 = 9;
/// `SO_PREFER_BUSY_POLL`.
const SO_PREFER_BUSY_POLL: i32 = 69;
/// `SO_BUSY_POLL_BUDGET`.
const SO_BUSY_POLL_BUDGET: i32 = 70;

/// A producer or consumer ring shared with the kernel.
#[repr(C)]
#[derive(Debug)]
pub struct Ring {
    cached_prod: u32,
    cached_cons: u32,
    mask: u32,
    size: u32,
    producer: *mut u32,
    consumer: *mut u32,
    ring: *mut libc::c_void,
    flags: *mut u32,
}

impl Default for Ring {
    fn default() -> Ring {
        Ring {
            cached_prod: 0,
            cached_cons: 0,
            mask: 0,
            size: 0,
            producer: std::ptr::null_mut(),
            consumer: std::ptr::null_mut(),
            ring: std::ptr::null_mut(),
            flags: std::ptr::null_mut(),
        }
    }
}

// The ring layout must be libxdp's `struct xsk_ring_prod/cons`.
const _: () = assert!(
    std::mem::size_of::<Ring>() == std::mem::size_of::<libxdp_sys::xsk_ring_prod>()
        && std::mem::size_of::<Ring>() == std::mem::size_of::<libxdp_sys::xsk_ring_cons>()
);

fn load(p: *mut u32) -> u32 {
    // SAFETY: p points at the ring's 4-byte aligned index in the mmap'd
    // ring area, alive as long as the socket.
    unsafe { AtomicU32::from_ptr(p) }.load(Ordering::Acquire)
}

fn store(p: *mut u32, v: u32) {
    // SAFETY: as in `load`; we are the only writer of this index.
    unsafe { AtomicU32::from_ptr(p) }.store(v, Ordering::Release)
}

/// An `xdp_desc`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Desc {
    /// Address in the UMEM.
    pub addr: u64,
    /// Length.
    pub len: u32,
    /// Options.
    pub options: u32,
}

impl Ring {
    fn prod_free(&mut self, nb: u32) -> u32 {
        let free = self.cached_cons.wrapping_sub(self.cached_prod);
        if free >= nb {
            return free;
        }
        self.cached_cons = load(self.consumer).wrapping_add(self.size);
        self.cached_cons.wrapping_sub(self.cached_prod)
    }

    /// Reserve up to `nb` producer slots; returns (first index, count).
    pub fn reserve(&mut self, nb: u32) -> (u32, u32) {
        let n = self.prod_free(nb).min(nb);
        let idx = self.cached_prod;
        self.cached_prod = self.cached_prod.wrapping_add(n);
        (idx, n)
    }

    /// Publish `nb` reserved slots.
    pub fn submit(&mut self, nb: u32) {
        if nb > 0 {
            store(self.producer, load(self.producer).wrapping_add(nb));
        }
    }

    /// Up to `nb` entries ready to consume; returns (first index, count).
    pub fn peek(&mut self, nb: u32) -> (u32, u32) {
        let mut entries = self.cached_prod.wrapping_sub(self.cached_cons);
        if entries == 0 {
            self.cached_prod = load(self.producer);
            entries = self.cached_prod.wrapping_sub(self.cached_cons);
        }
        let n = entries.min(nb);
        let idx = self.cached_cons;
        self.cached_cons = self.cached_cons.wrapping_add(n);
        (idx, n)
    }

    /// Hand `nb` consumed entries back.
    pub fn release(&mut self, nb: u32) {
        if nb > 0 {
            store(self.consumer, load(self.consumer).wrapping_add(nb));
        }
    }

    /// Fill/completion ring slot `idx` (a UMEM address).
    pub fn addr_at(&mut self, idx: u32) -> &mut u64 {
        // SAFETY: idx is masked into the ring of u64 entries.
        unsafe { &mut *self.ring.cast::<u64>().add((idx & self.mask) as usize) }
    }

    /// RX/TX ring slot `idx`.
    pub fn desc_at(&mut self, idx: u32) -> &mut Desc {
        // SAFETY: idx is masked into the ring of xdp_desc entries.
        unsafe { &mut *self.ring.cast::<Desc>().add((idx & self.mask) as usize) }
    }

    /// Producer ring: entries owned by the kernel (published, not yet
    /// consumed), e.g. frames waiting on a fill ring.
    pub fn queued(&self) -> u32 {
        self.cached_prod.wrapping_sub(load(self.consumer))
    }

    /// Producer ring: entries published but not yet taken by the kernel.
    pub fn outstanding(&self) -> u32 {
        self.cached_prod.wrapping_sub(load(self.consumer))
    }

    /// The kernel wants a wakeup (syscall) to make progress.
    pub fn needs_wakeup(&self) -> bool {
        // SAFETY: flags points into the mmap'd ring, alive with the socket.
        (unsafe { AtomicU32::from_ptr(self.flags) }.load(Ordering::Relaxed)
            & libxdp_sys::XDP_RING_NEED_WAKEUP)
            != 0
    }
}

/// A UMEM: an anonymous mapping of `frames × frame_size` bytes registered
/// with the kernel.
#[derive(Debug)]
pub struct Umem {
    area: *mut u8,
    size: usize,
    frame_size: u32,
    frames: u32,
    umem: *mut libxdp_sys::xsk_umem,
    /// The fill/completion rings created with the UMEM; handed to the
    /// first socket.
    first_rings: Option<(Box<Ring>, Box<Ring>)>,
}

// SAFETY: a Umem is moved to its worker thread and used there only.
unsafe impl Send for Umem {}

impl Umem {
    /// Map and register a UMEM of `frames` frames of `frame_size` bytes.
    pub fn new(frames: u32, frame_size: u32, ring_size: u32) -> Result<Umem, IoError> {
        if !frame_size.is_power_of_two() {
            return Err(IoError::Setup(format!(
                "UMEM frame size {frame_size} is not a power of two"
            )));
        }
        let size = frames as usize * frame_size as usize;
        // SAFETY: an anonymous private mapping; checked below.
        let area = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if area == libc::MAP_FAILED {
            return Err(IoError::Os {
                context: format!("map a UMEM of {size} bytes"),
                source: std::io::Error::last_os_error(),
            });
        }
        let mut fill = Box::<Ring>::default();
        let mut comp = Box::<Ring>::default();
        let cfg = libxdp_sys::xsk_umem_config {
            fill_size: ring_size,
            comp_size: ring_size,
            frame_size,
            frame_headroom: 0,
            flags: 0,
        };
        let mut umem = std::ptr::null_mut();
        // SAFETY: area is a fresh mapping of `size` bytes; the rings are
        // boxed so their addresses stay put (libxdp keeps pointers).
        let ret = unsafe {
            libxdp_sys::xsk_umem__create(
                &mut umem,
                area,
                size as u64,
                (&mut *fill as *mut Ring).cast(),
                (&mut *comp as *mut Ring).cast(),
                &cfg,
            )
        };
        if ret != 0 {
            // SAFETY: unmapping what we mapped.
            unsafe { libc::munmap(area, size) };
            return Err(IoError::Os {
                context: "register a UMEM (xsk_umem__create)".into(),
                source: std::io::Error::from_raw_os_error(-ret),
            });
        }
        Ok(Umem {
            area: area.cast(),
            size,
            frame_size,
            frames,
            umem,
            first_rings: Some((fill, comp)),
        })
    }

    /// Frame size in bytes.
    pub fn frame_size(&self) -> u32 {
        self.frame_size
    }

    /// Number of frames.
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// The whole frame that holds UMEM address `addr` (aligned mode).
    ///
    /// # Safety
    /// The caller must own the frame (not in any ring) and hold no other
    /// reference to it while the slice lives.
    pub unsafe fn frame<'a>(&self, addr: u64) -> Option<(u64, &'a mut [u8])> {
        // frame_size is a power of two (2048 or 4096): a mask, not a
        // 64-bit division per packet.
        let base = addr & !(u64::from(self.frame_size) - 1);
        let end = base as usize + self.frame_size as usize;
        if end > self.size {
            return None;
        }
        // SAFETY: in bounds of the mapping; exclusivity is the caller's.
        Some((base, unsafe {
            std::slice::from_raw_parts_mut(self.area.add(base as usize), self.frame_size as usize)
        }))
    }
}

impl Drop for Umem {
    fn drop(&mut self) {
        // SAFETY: every socket on this UMEM is dropped first (the worker
        // drops its sockets before its UMEM).
        unsafe {
            libxdp_sys::xsk_umem__delete(self.umem);
            libc::munmap(self.area.cast(), self.size);
        }
    }
}

/// How to bind a socket.
#[derive(Debug, Clone, Copy)]
pub struct SocketOptions {
    /// RX/TX ring size.
    pub ring_size: u32,
    /// Try zero-copy first.
    pub zero_copy: bool,
    /// Set SO_PREFER_BUSY_POLL and SO_BUSY_POLL.
    pub busy_poll: bool,
    /// Batch size (busy-poll budget).
    pub batch: u32,
}

/// One AF_XDP socket bound to (interface, queue) on a (shared) UMEM,
/// with its own fill and completion rings.
#[derive(Debug)]
pub struct Socket {
    xsk: *mut libxdp_sys::xsk_socket,
    /// RX ring.
    pub rx: Box<Ring>,
    /// TX ring.
    pub tx: Box<Ring>,
    /// Fill ring.
    pub fill: Box<Ring>,
    /// Completion ring.
    pub comp: Box<Ring>,
    /// The socket fd.
    pub fd: i32,
    /// Bound in zero-copy mode.
    pub zero_copy: bool,
}

// SAFETY: a Socket is moved to its worker thread and used there only.
unsafe impl Send for Socket {}

impl Socket {
    /// Create a socket on `ifname` queue `queue` sharing `umem`.
    pub fn new(
        umem: &mut Umem,
        ifname: &str,
        queue: u32,
        opts: SocketOptions,
    ) -> Result<Socket, IoError> {
        let cname = CString::new(ifname)
            .map_err(|_| IoError::Setup(format!("bad interface name {ifname:?}")))?;
        let first = umem.first_rings.is_some();
        let (mut fill, mut comp) = umem
            .first_rings
            .take()
            .unwrap_or_else(|| (Box::default(), Box::default()));
        let mut rx = Box::<Ring>::default();
        let mut tx = Box::<Ring>::default();
        let modes: &[(u16, bool)] = if opts.zero_copy {
            &[
                (libxdp_sys::XDP_ZEROCOPY as u16, true),
                (libxdp_sys::XDP_COPY as u16, false),
            ]
        } else {
            &[(libxdp_sys::XDP_COPY as u16, false)]
        };
        let mut last = 0;
        // A socket just closed on the same queue (a restart, a killed
        // predecessor) is released by the kernel asynchronously: bind
        // fails with EBUSY until then. Retry that for a bounded time.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let mut attempts = modes.iter().copied().peekable();
        while let Some((bind, zc)) = attempts.peek().copied() {
            let cfg = libxdp_sys::xsk_socket_config {
                rx_size: opts.ring_size,
                tx_size: opts.ring_size,
                __bindgen_anon_1: libxdp_sys::xsk_socket_config__bindgen_ty_1 {
                    libxdp_flags: libxdp_sys::XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
                },
                xdp_flags: 0,
                bind_flags: bind | libxdp_sys::XDP_USE_NEED_WAKEUP as u16,
            };
            let mut xsk = std::ptr::null_mut();
            // SAFETY: all rings are boxed (stable addresses kept by
            // libxdp); umem is a registered UMEM.
            let ret = unsafe {
                libxdp_sys::xsk_socket__create_shared(
                    &mut xsk,
                    cname.as_ptr(),
                    queue,
                    umem.umem,
                    (&mut *rx as *mut Ring).cast(),
                    (&mut *tx as *mut Ring).cast(),
                    (&mut *fill as *mut Ring).cast(),
                    (&mut *comp as *mut Ring).cast(),
                    &cfg,
                )
            };
            if ret == 0 {
                // SAFETY: xsk is a live socket.
                let fd = unsafe { libxdp_sys::xsk_socket__fd(xsk) };
                let sock = Socket {
                    xsk,
                    rx,
                    tx,
                    fill,
                    comp,
                    fd,
                    zero_copy: zc,
                };
                sock.tune(opts);
                return Ok(sock);
            }
            last = -ret;
            if last == libc::EBUSY && std::time::Instant::now() < deadline {
                std::thread::park_timeout(std::time::Duration::from_millis(20));
                continue;
            }
            attempts.next();
        }
        if first {
            // libxdp still points at these rings (its saved fill/comp).
            umem.first_rings = Some((fill, comp));
        }
        Err(IoError::Os {
            context: format!("bind an AF_XDP socket to {ifname} queue {queue}"),
            source: std::io::Error::from_raw_os_error(last),
        })
    }

    fn setsockopt(&self, level: i32, name: i32, value: i32) -> bool {
        // SAFETY: an int option on our own fd.
        unsafe {
            libc::setsockopt(
                self.fd,
                level,
                name,
                (&value as *const i32).cast(),
                std::mem::size_of::<i32>() as u32,
            ) == 0
        }
    }

    fn tune(&self, opts: SocketOptions) {
        // More frames per sendto() in copy mode; refused by older
        // kernels, which keep their default of 32.
        self.setsockopt(SOL_XDP, XDP_MAX_TX_SKB_BUDGET, 512);
        if opts.busy_poll {
            self.setsockopt(libc::SOL_SOCKET, SO_PREFER_BUSY_POLL, 1);
            self.setsockopt(libc::SOL_SOCKET, libc::SO_BUSY_POLL, 20);
            self.setsockopt(
                libc::SOL_SOCKET,
                SO_BUSY_POLL_BUDGET,
                i32::try_from(opts.batch).unwrap_or(64),
            );
        }
    }

    /// Kick the kernel to transmit (copy mode sends inside this call).
    pub fn kick_tx(&self) {
        // SAFETY: a zero-length non-blocking send on our socket.
        unsafe {
            libc::sendto(
                self.fd,
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
    }

    /// Kick the kernel to refill RX (need-wakeup on the fill ring).
    pub fn kick_rx(&self) {
        // SAFETY: a zero-length non-blocking recv on our socket.
        unsafe {
            libc::recvfrom(
                self.fd,
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: the socket is ours and deleted once; its rings are
        // still alive (fields drop after this).
        unsafe { libxdp_sys::xsk_socket__delete(self.xsk) };
    }
}
