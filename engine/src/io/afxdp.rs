//! The AF_XDP backend: the engine's fast path.
//!
//! At start it attaches its own XDP program ([`prog`], built from
//! `engine/bpf/steer.bpf.c`) to every configured interface with a
//! bpf_link (a crash or `kill -9` leaves nothing behind), then binds one
//! AF_XDP socket per RX queue of each interface and registers it in that
//! interface's XSKMAP. The program redirects only the traffic the engine
//! owns ([`Steering`]: virtual services, NAT replies, full-NAT locals,
//! ICMP errors to those addresses); ARP, SSH, ping to the director and
//! everything else stays with the kernel.
//!
//! Workers: one thread per RX queue index. Worker `q` owns one UMEM and,
//! on it, the socket of queue `q` of *every* interface that has such a
//! queue (`XDP_SHARED_UMEM` across devices), so a frame received on one
//! interface and forwarded out of another is sent from the same UMEM
//! frame with no copy. Each round the worker takes a batch of up to
//! [`BATCH`] frames from each socket in turn, calls
//! [`Engine::process`] once per batch with the clock read once, and puts
//! `Forward(port)` frames on that port's TX ring; dropped frames go
//! straight back to the free list.
//!
//! Interfaces can be added while the backend runs
//! ([`Backend::add_interfaces`], used by uvsd when a new real server sits
//! behind an interface not attached yet): the new interface's program is
//! attached with empty maps, each running worker binds that interface's
//! socket of its queue on its own UMEM between two rounds (asked through
//! a mailbox whose flag is the only thing a worker reads per round),
//! the socket is registered once served, and the new program is steered
//! last. The running interfaces' programs and sockets are never touched,
//! so their connections see no gap.
//!
//! `Verdict::Pass` for a frame that already reached a socket cannot be
//! returned to the kernel (AF_XDP has no reinjection path); such frames
//! are counted in [`AfXdpStats::pass_lost`] and recycled. The XDP
//! program's steering keeps them rare (traffic to an owned address and
//! port that no service wants any more, during a reconfiguration).
//!
//! Overload: the worker never sleeps while any ring has work, takes at
//! most [`BATCH`] frames per socket per round (fair between interfaces)
//! and, when idle, blocks in `poll()` (100 ms at most, to notice
//! shutdown) on every socket. Need-wakeup is always on, so the kernel
//! only gets syscalls when it asks for them (plus the TX kick copy mode
//! needs). With `busy_poll` the sockets also get `SO_PREFER_BUSY_POLL`;
//! per packet-io.md, AF_XDP livelocks on the core of the NAPI feeding it,
//! so give workers cores away from RX interrupts (the daemon's job).
//! Zero-copy is tried first when asked for and falls back to copy mode
//! (veth has only copy mode). `XDP_MAX_TX_SKB_BUDGET` is raised to 512
//! where the kernel accepts it.

mod prog;
mod xsk;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

pub use prog::XdpMode;

use crate::engine::{Engine, Packet, Verdict, Worker};
use crate::io::{Backend, IoError, Steering};
use crate::route::PortId;
use crate::time::Millis;
use crate::xmit::FrameBuf;

/// Frames per batch.
pub const BATCH: usize = 64;

/// How to run the AF_XDP backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfXdpConfig {
    /// Interfaces, in [`PortId`] order (the engine's `NetView` ports).
    pub interfaces: Vec<String>,
    /// UMEM frames per worker (power of two; 4096 default).
    pub frames: u32,
    /// UMEM frame size (2048 or 4096).
    pub frame_size: u32,
    /// Ring size of every fill/completion/RX/TX ring (power of two).
    pub ring_size: u32,
    /// Native, generic or automatic XDP attach.
    pub mode: XdpMode,
    /// Try zero-copy first (falls back to copy mode).
    pub zero_copy: bool,
    /// Prefer busy polling on the sockets.
    pub busy_poll: bool,
    /// CPUs to pin workers to (worker `q` → `worker_cpus[q % len]`);
    /// empty = no pinning. Keep workers off the CPUs that run the RX
    /// interrupts/NAPI feeding them, or they livelock (packet-io.md §2).
    pub worker_cpus: Vec<usize>,
}

impl Default for AfXdpConfig {
    fn default() -> AfXdpConfig {
        AfXdpConfig {
            interfaces: Vec::new(),
            frames: 4096,
            frame_size: 2048,
            ring_size: 1024,
            mode: XdpMode::Auto,
            zero_copy: true,
            busy_poll: false,
            worker_cpus: Vec::new(),
        }
    }
}

/// Backend counters (sums over workers, folded once per batch).
#[derive(Debug, Default)]
pub struct AfXdpStats {
    /// Frames received from the sockets.
    pub rx: AtomicU64,
    /// Frames put on a TX ring.
    pub tx: AtomicU64,
    /// Frames the engine passed but that could not go back to the kernel.
    pub pass_lost: AtomicU64,
    /// Frames dropped by the engine.
    pub dropped: AtomicU64,
    /// Frames dropped because a TX ring was full or the port unknown.
    pub tx_full: AtomicU64,
}

/// The kernel's per-socket drop counters (`XDP_STATISTICS`), summed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XskStats {
    /// Frames the kernel dropped for other reasons (e.g. too big).
    pub rx_dropped: u64,
    /// Frames dropped because the RX ring was full (worker too slow).
    pub rx_ring_full: u64,
    /// Times the fill ring was empty (no frame to receive into).
    pub fill_ring_empty: u64,
}

/// The running AF_XDP backend.
#[derive(Debug)]
pub struct AfXdpBackend {
    engine: Arc<Engine>,
    config: AfXdpConfig,
    state: Mutex<State>,
    stop: Arc<AtomicBool>,
    stats: Arc<AfXdpStats>,
    mode: XdpMode,
}

/// What the control side of the backend owns; it grows when interfaces
/// are added ([`Backend::add_interfaces`]).
#[derive(Debug)]
struct State {
    /// Attached interfaces, in [`PortId`] order.
    interfaces: Vec<String>,
    /// One steering program per interface, in the same order.
    programs: Vec<prog::Program>,
    /// What the programs are steered to (new interfaces get it too).
    steering: Steering,
    /// Worker threads, one per RX queue index (empty once shut down).
    workers: Vec<JoinHandle<()>>,
    /// The control end of each worker's mailbox.
    mail: Vec<ControlMail>,
    queue_rx: Vec<Arc<AtomicU64>>,
    socket_fds: Vec<i32>,
    zero_copy: bool,
}

/// A request to a running worker: bind a socket for `port` (interface
/// `ifname`, RX queue `queue`) on the worker's UMEM and serve it.
#[derive(Debug)]
struct AddSocket {
    port: usize,
    ifname: String,
    queue: u32,
    opts: xsk::SocketOptions,
}

/// A worker's answer: the new socket's fd and whether it is zero-copy.
type Added = Result<(i32, bool), IoError>;

/// How long a worker may take to bind a socket it was asked for (the
/// bind retries EBUSY for up to 3 s; the worker notices mail within its
/// 100 ms poll).
const ADOPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The control thread's end of a worker's mailbox.
#[derive(Debug)]
struct ControlMail {
    flag: Arc<AtomicBool>,
    requests: mpsc::Sender<AddSocket>,
    replies: mpsc::Receiver<Added>,
}

/// The worker's end: `flag` is the only thing read every round.
#[derive(Debug)]
struct WorkerMail {
    flag: Arc<AtomicBool>,
    requests: mpsc::Receiver<AddSocket>,
    replies: mpsc::Sender<Added>,
}

fn mailbox() -> (ControlMail, WorkerMail) {
    let flag = Arc::new(AtomicBool::new(false));
    let (req_tx, req_rx) = mpsc::channel();
    let (rep_tx, rep_rx) = mpsc::channel();
    (
        ControlMail {
            flag: Arc::clone(&flag),
            requests: req_tx,
            replies: rep_rx,
        },
        WorkerMail {
            flag,
            requests: req_rx,
            replies: rep_tx,
        },
    )
}

impl ControlMail {
    /// Have the worker bind and serve a socket; wait (bounded) for it.
    fn add_socket(&self, request: AddSocket) -> Added {
        let what = format!(
            "bind an AF_XDP socket to {} queue {}",
            request.ifname, request.queue
        );
        self.requests
            .send(request)
            .map_err(|_| IoError::Setup(format!("{what}: the worker has stopped")))?;
        self.flag.store(true, Ordering::Release);
        match self.replies.recv_timeout(ADOPT_TIMEOUT) {
            Ok(added) => added,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(IoError::Setup(format!(
                "{what}: the worker did not answer within {} s",
                ADOPT_TIMEOUT.as_secs()
            ))),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(IoError::Setup(format!("{what}: the worker has stopped")))
            }
        }
    }
}

/// Number of RX queues of `ifname` (ETHTOOL_GCHANNELS; 1 if unknown).
fn rx_queues(ifname: &str) -> u32 {
    #[repr(C)]
    #[derive(Default)]
    struct Channels {
        cmd: u32,
        max_rx: u32,
        max_tx: u32,
        max_other: u32,
        max_combined: u32,
        rx_count: u32,
        tx_count: u32,
        other_count: u32,
        combined_count: u32,
    }
    let mut ch = Channels {
        cmd: 0x3c, // ETHTOOL_GCHANNELS
        ..Channels::default()
    };
    // SAFETY: a plain ifreq-based ioctl on a datagram socket we own; the
    // name is bounded to IFNAMSIZ - 1 bytes.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return 1;
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (d, s) in ifr.ifr_name.iter_mut().zip(ifname.bytes().take(15)) {
            *d = s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_data = (&mut ch as *mut Channels).cast();
        let ret = libc::ioctl(fd, libc::SIOCETHTOOL, &mut ifr);
        libc::close(fd);
        if ret != 0 {
            return 1;
        }
    }
    ch.rx_count.max(ch.combined_count).max(1)
}

/// Pin the calling thread to `cpu` (best effort: an invalid CPU leaves
/// the thread unpinned).
fn pin_to(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; CPU_SET bounds-checks `cpu`
    // against the set size; sched_setaffinity(0) acts on this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if cpu < libc::CPU_SETSIZE as usize {
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
}

/// Start the backend: attach the steering program to every interface,
/// bind the sockets and start one worker per RX queue index. Traffic is
/// steered once [`Backend::steer`] is called.
pub fn start(engine: Arc<Engine>, config: &AfXdpConfig) -> Result<AfXdpBackend, IoError> {
    if config.interfaces.is_empty() {
        return Err(IoError::Setup(
            "AF_XDP backend needs at least one interface".into(),
        ));
    }
    if !config.frames.is_power_of_two() || !config.ring_size.is_power_of_two() {
        return Err(IoError::Setup(
            "AF_XDP frames and ring_size must be powers of two".into(),
        ));
    }
    if config.frame_size != 2048 && config.frame_size != 4096 {
        return Err(IoError::Setup(
            "AF_XDP frame_size must be 2048 or 4096".into(),
        ));
    }
    let mut programs = Vec::new();
    for ifname in &config.interfaces {
        programs.push(prog::Program::attach(ifname, config.mode)?);
    }
    let backend = AfXdpBackend {
        engine,
        config: AfXdpConfig {
            interfaces: Vec::new(),
            ..config.clone()
        },
        state: Mutex::new(State {
            interfaces: Vec::new(),
            programs: Vec::new(),
            steering: Steering::default(),
            workers: Vec::new(),
            mail: Vec::new(),
            queue_rx: Vec::new(),
            socket_fds: Vec::new(),
            zero_copy: true,
        }),
        stop: Arc::new(AtomicBool::new(false)),
        stats: Arc::new(AfXdpStats::default()),
        mode: programs[0].mode,
    };
    // On an error the backend drops: workers started so far stop, the
    // programs detach.
    backend.grow(&mut backend.lock(), &config.interfaces, programs)?;
    Ok(backend)
}

impl AfXdpBackend {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn socket_options(&self) -> xsk::SocketOptions {
        xsk::SocketOptions {
            ring_size: self.config.ring_size,
            zero_copy: self.config.zero_copy,
            busy_poll: self.config.busy_poll,
            batch: BATCH as u32,
        }
    }

    /// Serve `more` interfaces, whose `programs` are attached (maps still
    /// empty, so all their traffic still goes to the kernel), as ports
    /// after the existing ones. Queue `q` of each goes to worker `q`: a
    /// running worker binds the socket on its own UMEM between two
    /// batches (the other sockets go on being served), a new worker is
    /// started for a queue index no worker has yet. Each socket is
    /// registered in its program's XSKMAP once its worker serves it, and
    /// the programs are steered last, so no owned frame meets a socket
    /// nobody reads.
    fn grow(
        &self,
        st: &mut State,
        more: &[String],
        mut programs: Vec<prog::Program>,
    ) -> Result<(), IoError> {
        let base = st.interfaces.len();
        let queues: Vec<u32> = more.iter().map(|i| rx_queues(i)).collect();
        let max_q = queues.iter().copied().max().unwrap_or(0);
        let opts = self.socket_options();
        let mut fresh = Vec::new();
        for q in 0..max_q {
            if let Some(mail) = st.mail.get(q as usize) {
                for (k, ifname) in more.iter().enumerate() {
                    if q >= queues[k] {
                        continue;
                    }
                    let (fd, zc) = mail.add_socket(AddSocket {
                        port: base + k,
                        ifname: ifname.clone(),
                        queue: q,
                        opts,
                    })?;
                    programs[k].register_socket(q, fd)?;
                    st.socket_fds.push(fd);
                    st.zero_copy &= zc;
                }
                continue;
            }
            let mut umem = xsk::Umem::new(
                self.config.frames,
                self.config.frame_size,
                self.config.ring_size,
            )?;
            let mut ports: Vec<Option<xsk::Socket>> = (0..base).map(|_| None).collect();
            for (k, ifname) in more.iter().enumerate() {
                if q >= queues[k] {
                    ports.push(None);
                    continue;
                }
                let sock = xsk::Socket::new(&mut umem, ifname, q, opts)?;
                st.zero_copy &= sock.zero_copy;
                ports.push(Some(sock));
            }
            let rx_q = Arc::new(AtomicU64::new(0));
            let (control, worker) = mailbox();
            fresh.push((
                q,
                rx_q.clone(),
                control,
                WorkerLoop::new(
                    Arc::clone(&self.engine),
                    umem,
                    ports,
                    self.config.ring_size,
                    (Arc::clone(&self.stats), rx_q),
                    Arc::clone(&self.stop),
                    worker,
                ),
            ));
        }
        // The new workers' sockets, registered only now that all are
        // bound; each worker primes its fill rings as it starts.
        for (q, _, _, l) in &fresh {
            for (k, sock) in l.ports.iter().skip(base).enumerate() {
                if let Some(sock) = sock {
                    programs[k].register_socket(*q, sock.fd)?;
                    st.socket_fds.push(sock.fd);
                }
            }
        }
        for (q, rx_q, control, mut l) in fresh {
            let cpu = (!self.config.worker_cpus.is_empty())
                .then(|| self.config.worker_cpus[q as usize % self.config.worker_cpus.len()]);
            let handle = std::thread::Builder::new()
                .name(format!("uvs-xdp-q{q}"))
                .spawn(move || {
                    if let Some(cpu) = cpu {
                        pin_to(cpu);
                    }
                    l.run()
                })
                .map_err(|e| IoError::Os {
                    context: "spawn an AF_XDP worker".into(),
                    source: e,
                })?;
            st.workers.push(handle);
            st.mail.push(control);
            st.queue_rx.push(rx_q);
        }
        for p in programs.iter_mut() {
            p.steer(&st.steering)?;
        }
        st.programs.extend(programs);
        st.interfaces.extend(more.iter().cloned());
        Ok(())
    }

    /// Backend counters.
    pub fn stats(&self) -> &AfXdpStats {
        &self.stats
    }

    /// Number of workers (one per RX queue index).
    pub fn queues(&self) -> usize {
        self.lock().queue_rx.len()
    }

    /// Frames received by the worker of RX queue `q`.
    pub fn queue_rx(&self, q: usize) -> u64 {
        self.lock()
            .queue_rx
            .get(q)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// The kernel's drop counters of every socket, summed
    /// (`XDP_STATISTICS`); zero once the backend is shut down.
    pub fn socket_stats(&self) -> XskStats {
        let mut total = XskStats::default();
        let st = self.lock();
        if st.workers.is_empty() {
            return total;
        }
        for &fd in &st.socket_fds {
            let mut s = [0u64; 6];
            let mut len = std::mem::size_of_val(&s) as libc::socklen_t;
            // SAFETY: XDP_STATISTICS (7) fills up to `len` bytes of u64
            // counters; the fd is alive while workers run.
            let ret = unsafe { libc::getsockopt(fd, 283, 7, s.as_mut_ptr().cast(), &mut len) };
            if ret == 0 {
                total.rx_dropped += s[0];
                total.rx_ring_full += s[3];
                total.fill_ring_empty += s[4];
            }
        }
        total
    }

    /// Every socket runs in zero-copy mode.
    pub fn zero_copy(&self) -> bool {
        self.lock().zero_copy
    }

    /// The mode the XDP program was attached in (on the first interface).
    pub fn mode(&self) -> XdpMode {
        self.mode
    }

    /// Frames the XDP programs redirected to the sockets and passed to
    /// the kernel, summed over interfaces.
    pub fn program_counts(&self) -> (u64, u64) {
        self.lock().programs.iter().fold((0, 0), |(r, p), prog| {
            let (r2, p2) = prog.counts();
            (r + r2, p + p2)
        })
    }
}

impl Backend for AfXdpBackend {
    fn name(&self) -> &'static str {
        "af_xdp"
    }

    fn ports(&self) -> Vec<(PortId, String)> {
        self.lock()
            .interfaces
            .iter()
            .enumerate()
            .map(|(i, n)| (PortId(i as u16), n.clone()))
            .collect()
    }

    fn steer(&self, steering: &Steering) -> Result<(), IoError> {
        let mut st = self.lock();
        st.steering = steering.clone();
        for p in st.programs.iter_mut() {
            p.steer(steering)?;
        }
        Ok(())
    }

    /// Live: the running interfaces' programs, sockets and workers are
    /// left alone, so established connections see no gap (see
    /// [`AfXdpBackend::grow`]). On an error the new interfaces are not
    /// served (their programs detach) and the backend runs on as before.
    fn add_interfaces(&self, more: &[String]) -> Result<bool, IoError> {
        let mut st = self.lock();
        if st.workers.is_empty() {
            return Err(IoError::Setup("the AF_XDP backend is shut down".into()));
        }
        let mut new: Vec<String> = Vec::new();
        for name in more {
            if !st.interfaces.contains(name) && !new.contains(name) {
                new.push(name.clone());
            }
        }
        if new.is_empty() {
            return Ok(true);
        }
        if st.interfaces.len() + new.len() > usize::from(u16::MAX) {
            return Err(IoError::Setup("too many interfaces".into()));
        }
        let mut programs = Vec::new();
        for ifname in &new {
            programs.push(prog::Program::attach(ifname, self.config.mode)?);
        }
        self.grow(&mut st, &new, programs)?;
        Ok(true)
    }

    fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let mut st = self.lock();
        for w in std::mem::take(&mut st.workers) {
            let _ = w.join();
        }
        st.mail.clear();
        // Dropping the programs closes the links: the XDP program leaves
        // every interface.
        st.programs.clear();
    }
}

impl Drop for AfXdpBackend {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Fill-ring levels (busy, idle) for a worker with `frames` UMEM frames,
/// rings of `ring_size` and `sockets` sockets: a receiving socket's ring
/// is kept full up to a quarter of the UMEM (and at most half of it over
/// two busy sockets); an idle socket's holds two batches.
fn fill_levels(frames: u32, ring_size: u32, sockets: u32) -> (u32, u32) {
    let busy = (frames / 4)
        .min(frames / 2 / sockets.clamp(1, 2))
        .min(ring_size)
        .max(1);
    (busy, (2 * BATCH as u32).min(busy))
}

/// Frames to add to a fill ring that holds `queued` (owned by the
/// kernel) to reach `target`, given `free` frames on the free list.
fn fill_want(target: u32, queued: u32, free: usize) -> u32 {
    target
        .saturating_sub(queued)
        .min(u32::try_from(free).unwrap_or(u32::MAX))
}

/// A worker: one UMEM, one socket per interface on its queue.
struct WorkerLoop {
    engine: Arc<Engine>,
    // Field order matters: sockets drop before the UMEM.
    ports: Vec<Option<xsk::Socket>>,
    umem: xsk::Umem,
    free: Vec<u64>,
    /// Frames placed on each port's TX ring this round, not yet kicked.
    tx_pending: Vec<u32>,
    /// Where each frame of the current batch lives (UMEM frame base).
    bases: Vec<u64>,
    /// Frames each socket received in its last batch (by port): a socket
    /// that receives gets a full fill ring, an idle one a small budget.
    rx_last: Vec<u32>,
    /// Fill-ring level kept on a socket that receives.
    fill_busy: u32,
    /// Fill-ring level kept on a socket that received nothing last round.
    fill_idle: u32,
    ring_size: u32,
    stats: Arc<AfXdpStats>,
    rx_q: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    pollfds: Vec<libc::pollfd>,
    mail: WorkerMail,
}

impl WorkerLoop {
    fn new(
        engine: Arc<Engine>,
        umem: xsk::Umem,
        ports: Vec<Option<xsk::Socket>>,
        ring_size: u32,
        (stats, rx_q): (Arc<AfXdpStats>, Arc<AtomicU64>),
        stop: Arc<AtomicBool>,
        mail: WorkerMail,
    ) -> WorkerLoop {
        let frames = umem.frames();
        let fs = u64::from(umem.frame_size());
        let free: Vec<u64> = (0..u64::from(frames)).map(|i| i * fs).collect();
        let nports = ports.len();
        let mut l = WorkerLoop {
            engine,
            ports,
            umem,
            free,
            tx_pending: vec![0; nports],
            bases: Vec::with_capacity(BATCH),
            rx_last: vec![0; nports],
            fill_busy: 1,
            fill_idle: 1,
            ring_size,
            stats,
            rx_q,
            stop,
            pollfds: Vec::new(),
            mail,
        };
        l.sockets_changed();
        l
    }

    /// After the socket set changed: the poll set, and the fill targets.
    fn sockets_changed(&mut self) {
        let n = self.ports.iter().flatten().count().max(1) as u32;
        // A receiving socket's fill ring is kept full (as deep as the
        // bare forwarder's), up to a quarter of the UMEM; an idle one
        // (e.g. the real servers' side in DR, which only transmits) holds
        // two batches, so its frames are not parked where no packet
        // arrives but stay free for the busy rings and TX. Every fill
        // ring together never holds more than half the UMEM when all are
        // busy at once.
        (self.fill_busy, self.fill_idle) = fill_levels(self.umem.frames(), self.ring_size, n);
        self.rx_last.resize(self.ports.len(), 0);
        self.pollfds = self
            .ports
            .iter()
            .flatten()
            .map(|s| libc::pollfd {
                fd: s.fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
    }

    /// Answer the control thread's requests (between two rounds, so no
    /// ring is in use): bind each asked-for socket on this UMEM, serve
    /// it from now on, and prime its fill ring before answering (the
    /// control thread registers it in the XSKMAP only then).
    fn read_mail(&mut self) {
        self.mail.flag.store(false, Ordering::Relaxed);
        while let Ok(request) = self.mail.requests.try_recv() {
            let added = self.adopt(request);
            let _ = self.mail.replies.send(added);
        }
    }

    fn adopt(&mut self, request: AddSocket) -> Added {
        // A socket left on this port by an attempt that failed further on
        // goes first (one socket per queue); the frames on its fill ring
        // are not recovered.
        if let Some(old) = self.ports.get_mut(request.port) {
            if old.take().is_some() {
                self.sockets_changed();
            }
        }
        let sock = xsk::Socket::new(&mut self.umem, &request.ifname, request.queue, request.opts)?;
        let answer = (sock.fd, sock.zero_copy);
        if self.ports.len() <= request.port {
            self.ports.resize_with(request.port + 1, || None);
            self.tx_pending.resize(request.port + 1, 0);
            self.rx_last.resize(request.port + 1, 0);
        }
        self.ports[request.port] = Some(sock);
        self.sockets_changed();
        self.refill();
        Ok(answer)
    }

    /// Completed TX frames back to the free list.
    fn reclaim(&mut self) {
        for sock in self.ports.iter_mut().flatten() {
            let (idx, n) = sock.comp.peek(BATCH as u32 * 4);
            for k in 0..n {
                let addr = *sock.comp.addr_at(idx.wrapping_add(k));
                self.free.push(addr);
            }
            sock.comp.release(n);
        }
    }

    /// Top up every fill ring from the free list, to the busy level on a
    /// socket that received last round and to the idle level otherwise.
    fn refill(&mut self) {
        for (sock, &last) in self.ports.iter_mut().zip(self.rx_last.iter()) {
            let Some(sock) = sock else { continue };
            let target = if last > 0 {
                self.fill_busy
            } else {
                self.fill_idle
            };
            let want = fill_want(target, sock.fill.queued(), self.free.len());
            if want == 0 {
                continue;
            }
            let (idx, n) = sock.fill.reserve(want);
            for k in 0..n {
                let addr = self.free.pop().unwrap_or(0);
                *sock.fill.addr_at(idx.wrapping_add(k)) = addr;
            }
            sock.fill.submit(n);
            if n > 0 && sock.fill.needs_wakeup() {
                sock.kick_rx();
            }
        }
    }

    fn run(&mut self) {
        let mut worker = Worker::new();
        let mut batch: Vec<Packet<'static>> = Vec::with_capacity(BATCH);
        // Prime the fill rings.
        self.refill();
        while !self.stop.load(Ordering::Relaxed) {
            if self.mail.flag.load(Ordering::Acquire) {
                self.read_mail();
            }
            self.reclaim();
            self.refill();
            let mut got = 0usize;
            for rx_port in 0..self.ports.len() {
                got += self.rx_batch(rx_port, &mut worker, &mut batch);
            }
            self.flush_tx();
            if got == 0 {
                self.idle();
            }
            if got < BATCH {
                // No backlog: the expiry the clock says is owed (the
                // batches carry only a bounded share of it).
                self.engine.tick(Millis::now());
            }
        }
    }

    /// Wait for traffic (or TX completions) without spinning.
    fn idle(&mut self) {
        let tx_busy = self.free.len() < self.umem.frames() as usize / 4;
        for p in self.pollfds.iter_mut() {
            p.revents = 0;
        }
        let timeout = if tx_busy { 1 } else { 100 };
        // SAFETY: pollfds is a valid array of our sockets' fds.
        unsafe {
            libc::poll(
                self.pollfds.as_mut_ptr(),
                self.pollfds.len() as libc::nfds_t,
                timeout,
            )
        };
    }

    /// Receive, process and dispatch one batch from `rx_port`.
    fn rx_batch(
        &mut self,
        rx_port: usize,
        worker: &mut Worker,
        batch: &mut Vec<Packet<'static>>,
    ) -> usize {
        let Some(sock) = self.ports[rx_port].as_mut() else {
            return 0;
        };
        let (idx, n) = sock.rx.peek(BATCH as u32);
        self.rx_last[rx_port] = n;
        if n == 0 {
            return 0;
        }
        batch.clear();
        self.bases.clear();
        let mut lost = 0u64;
        for k in 0..n {
            let d = *sock.rx.desc_at(idx.wrapping_add(k));
            // SAFETY: the frame came off our RX ring, so we own it, and
            // each frame appears once in a batch.
            match unsafe { self.umem.frame(d.addr) } {
                Some((base, buf)) => {
                    let start = (d.addr - base) as usize;
                    match FrameBuf::new(buf, start, d.len as usize) {
                        Some(frame) => {
                            self.bases.push(base);
                            batch.push(Packet {
                                frame,
                                ingress: PortId(rx_port as u16),
                                verdict: Verdict::Pending,
                            });
                        }
                        None => {
                            self.free.push(base);
                            lost += 1;
                        }
                    }
                }
                None => lost += 1,
            }
        }
        sock.rx.release(n);
        self.engine.process(worker, batch, Millis::now());
        let (mut tx, mut dropped, mut pass_lost, mut tx_full) = (0u64, lost, 0u64, 0u64);
        for (p, &base) in batch.iter().zip(self.bases.iter()) {
            match p.verdict {
                Verdict::Forward(port) => {
                    let out = usize::from(port.0);
                    let sent = match self.ports.get_mut(out).and_then(|s| s.as_mut()) {
                        Some(s) => {
                            let (i, r) = s.tx.reserve(1);
                            if r == 1 {
                                *s.tx.desc_at(i) = xsk::Desc {
                                    addr: base + p.frame.start() as u64,
                                    len: p.frame.len() as u32,
                                    options: 0,
                                };
                                self.tx_pending[out] += 1;
                                true
                            } else {
                                false
                            }
                        }
                        None => false,
                    };
                    if sent {
                        tx += 1;
                    } else {
                        tx_full += 1;
                        self.free.push(base);
                    }
                }
                Verdict::Pass => {
                    pass_lost += 1;
                    self.free.push(base);
                }
                Verdict::Drop(_) | Verdict::Pending => {
                    dropped += 1;
                    self.free.push(base);
                }
            }
        }
        let got = batch.len();
        batch.clear();
        let s = &self.stats;
        s.rx.fetch_add(u64::from(n), Ordering::Relaxed);
        self.rx_q.fetch_add(u64::from(n), Ordering::Relaxed);
        for (c, v) in [
            (&s.tx, tx),
            (&s.dropped, dropped),
            (&s.pass_lost, pass_lost),
            (&s.tx_full, tx_full),
        ] {
            if v != 0 {
                c.fetch_add(v, Ordering::Relaxed);
            }
        }
        got.max(1)
    }

    /// Publish this round's TX descriptors and kick the kernel.
    fn flush_tx(&mut self) {
        for (i, sock) in self.ports.iter_mut().enumerate() {
            let pending = std::mem::take(&mut self.tx_pending[i]);
            let Some(sock) = sock else { continue };
            if pending > 0 {
                sock.tx.submit(pending);
            }
            // Copy mode transmits only inside sendto(); in zero-copy mode
            // need-wakeup says when the kernel wants one. No syscall for
            // a socket with nothing queued.
            if sock.tx.outstanding() > 0 && (!sock.zero_copy || sock.tx.needs_wakeup()) {
                sock.kick_tx();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_levels_keep_idle_sockets_small() {
        // uvsd's defaults, three interfaces (the pps lab): the receiving
        // socket as deep as its ring, the idle ones two batches.
        assert_eq!(fill_levels(4096, 1024, 3), (1024, 128));
        assert_eq!(fill_levels(4096, 1024, 1), (1024, 128));
        // A small UMEM: a quarter of it, never more than the ring.
        assert_eq!(fill_levels(256, 1024, 3), (64, 64));
        assert_eq!(fill_levels(8192, 512, 4), (512, 128));
        assert_eq!(fill_levels(1, 1, 0), (1, 1));
    }

    #[test]
    fn fill_tops_up_to_the_target_only() {
        // An empty ring gets the whole target, a full one nothing: the
        // level is a target, not an amount added every round.
        assert_eq!(fill_want(1024, 0, 4096), 1024);
        assert_eq!(fill_want(1024, 1000, 4096), 24);
        assert_eq!(fill_want(128, 1024, 4096), 0);
        // Bounded by the free list.
        assert_eq!(fill_want(1024, 0, 10), 10);
    }
}
