//! The in-memory backend: no device, no thread; frames are handed in by
//! the caller and come out in queues. For tests and for `uvsd --backend
//! mem` (a daemon with a control plane and no traffic).
//!
//! It behaves as the real backends promise: [`MemBackend::receive`] first
//! applies the current [`Steering`] as the AF_XDP program does (frames
//! the engine does not own go straight to the "kernel" queue), runs one
//! [`Engine::process`] batch over the rest and sorts each frame by its
//! verdict: `Forward(port)` → transmitted on that port, `Pass` → kernel,
//! `Drop` → gone. It records every [`Backend::steer`] call and whether it
//! was shut down, so tests can check what the daemon asked of it.
//!
//! This is not a hot path: it copies frames and takes a mutex per batch.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::engine::{Engine, Packet, Verdict, Worker};
use crate::io::{Backend, IoError, Steering};
use crate::route::PortId;
use crate::time::Millis;
use crate::wire::{self, proto, ParsedFrame};
use crate::xmit::FrameBuf;

/// Headroom in front of each frame (room for tunnel headers).
pub const HEADROOM: usize = 256;
/// Buffer size of one frame (as an AF_XDP UMEM frame).
pub const FRAME_SIZE: usize = 2048;

#[derive(Debug, Default)]
struct State {
    steering: Steering,
    steer_calls: u64,
    shut_down: bool,
    worker: Worker,
    transmitted: VecDeque<(PortId, Vec<u8>)>,
    to_kernel: VecDeque<(PortId, Vec<u8>)>,
}

#[derive(Debug)]
struct Inner {
    engine: Arc<Engine>,
    ports: Vec<(PortId, String)>,
    state: Mutex<State>,
}

/// A backend whose wire is a pair of queues. Clones share the same
/// backend, so a test can keep one while the daemon owns another.
#[derive(Debug, Clone)]
pub struct MemBackend {
    inner: Arc<Inner>,
}

/// Whether a frame is traffic the engine owns under `steering` (what the
/// AF_XDP program redirects; everything else stays with the kernel).
pub fn is_steered(steering: &Steering, parsed: &ParsedFrame) -> bool {
    let (p, daddr, dport) = (parsed.protocol, parsed.daddr, parsed.dport);
    let ports_known = !parsed.is_fragment || parsed.is_first_fragment;
    let icmp = matches!(p, proto::ICMP | proto::ICMPV6);
    let to_vip = |addr: IpAddr| {
        steering.virtual_services.iter().any(|&(sp, sa, sport)| {
            sa == addr && (icmp || (sp == p && (sport == 0 || (ports_known && sport == dport))))
        })
    };
    if to_vip(daddr) {
        return true;
    }
    if steering.nat_sources.iter().any(|&(sp, sa, sport)| {
        sa == parsed.saddr
            && (icmp || (sp == p && (sport == 0 || (ports_known && sport == parsed.sport))))
    }) {
        return true;
    }
    let (first, last) = steering.fullnat_ports;
    steering.fullnat_locals.contains(&daddr)
        && (icmp || !ports_known || (first..=last).contains(&dport))
}

impl MemBackend {
    /// A backend for `engine` with one port per interface name, in order.
    pub fn new(engine: Arc<Engine>, interfaces: &[String]) -> MemBackend {
        let ports = interfaces
            .iter()
            .enumerate()
            .map(|(i, name)| (PortId(u16::try_from(i).unwrap_or(u16::MAX)), name.clone()))
            .collect();
        MemBackend {
            inner: Arc::new(Inner {
                engine,
                ports,
                state: Mutex::new(State::default()),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock left plain data.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The steering set last given to [`Backend::steer`].
    pub fn steering(&self) -> Steering {
        self.state().steering.clone()
    }

    /// How many times [`Backend::steer`] was called.
    pub fn steer_calls(&self) -> u64 {
        self.state().steer_calls
    }

    /// Whether [`Backend::shutdown`] was called.
    pub fn is_shut_down(&self) -> bool {
        self.state().shut_down
    }

    /// Frames arriving on `ingress`, processed as one batch at `now`.
    /// Returns the verdicts of the frames that reached the engine (frames
    /// not steered to it go to the kernel queue and get no verdict).
    pub fn receive(&self, ingress: PortId, frames: &[&[u8]], now: Millis) -> Vec<Verdict> {
        let mut state = self.state();
        if state.shut_down {
            return Vec::new();
        }
        let mut buffers: Vec<(Vec<u8>, usize)> = Vec::with_capacity(frames.len());
        for frame in frames {
            let steered = wire::parse_frame(frame)
                .map(|parsed| is_steered(&state.steering, &parsed))
                // Malformed frames: the XDP program passes what it
                // cannot read.
                .unwrap_or(false);
            if !steered || frame.len() + HEADROOM > FRAME_SIZE {
                state.to_kernel.push_back((ingress, frame.to_vec()));
                continue;
            }
            let mut buf = vec![0u8; FRAME_SIZE];
            buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
            buffers.push((buf, frame.len()));
        }
        let mut batch: Vec<Packet<'_>> = buffers
            .iter_mut()
            .filter_map(|(buf, len)| {
                FrameBuf::new(buf, HEADROOM, *len).map(|frame| Packet {
                    frame,
                    ingress,
                    verdict: Verdict::Pending,
                })
            })
            .collect();
        let state = &mut *state;
        self.inner
            .engine
            .process(&mut state.worker, &mut batch, now);
        let mut verdicts = Vec::with_capacity(batch.len());
        for packet in &batch {
            verdicts.push(packet.verdict);
            let bytes = packet.frame.frame().to_vec();
            match packet.verdict {
                Verdict::Forward(port) => state.transmitted.push_back((port, bytes)),
                Verdict::Pass => state.to_kernel.push_back((ingress, bytes)),
                Verdict::Drop(_) | Verdict::Pending => {}
            }
        }
        verdicts
    }

    /// Frames sent out so far (port, bytes), oldest first; the queue is
    /// emptied.
    pub fn take_transmitted(&self) -> Vec<(PortId, Vec<u8>)> {
        self.state().transmitted.drain(..).collect()
    }

    /// Frames handed to the kernel so far (ingress port, bytes); the
    /// queue is emptied.
    pub fn take_passed(&self) -> Vec<(PortId, Vec<u8>)> {
        self.state().to_kernel.drain(..).collect()
    }
}

impl Backend for MemBackend {
    fn name(&self) -> &'static str {
        "mem"
    }

    fn ports(&self) -> Vec<(PortId, String)> {
        self.inner.ports.clone()
    }

    fn steer(&self, steering: &Steering) -> Result<(), IoError> {
        let mut state = self.state();
        if state.shut_down {
            return Err(IoError::Setup("the mem backend was shut down".into()));
        }
        state.steering = steering.clone();
        state.steer_calls += 1;
        Ok(())
    }

    fn shutdown(&self) {
        let mut state = self.state();
        state.shut_down = true;
        state.transmitted.clear();
        state.to_kernel.clear();
    }
}
