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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::build::PacketBuilder;
    use std::net::Ipv4Addr;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

    fn parsed(frame: &[u8]) -> ParsedFrame {
        wire::parse_frame(frame).unwrap()
    }

    fn tcp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
        PacketBuilder::new()
            .eth(MAC, MAC)
            .ipv4(Ipv4Addr::from(src), Ipv4Addr::from(dst))
            .tcp(sport, dport)
            .build()
    }

    fn steering() -> Steering {
        Steering {
            virtual_services: vec![
                (6, IpAddr::from([192, 0, 2, 100]), 80),
                (17, IpAddr::from([192, 0, 2, 101]), 0),
            ],
            nat_sources: vec![(6, IpAddr::from([198, 51, 100, 11]), 8080)],
            fullnat_locals: vec![IpAddr::from([198, 51, 100, 250])],
            fullnat_ports: (5000, 6000),
        }
    }

    #[test]
    fn steering_matches_what_the_xdp_program_redirects() {
        let s = steering();
        let client = [203, 0, 113, 7];
        // A service's port, not another; all ports of a port-0 service.
        assert!(is_steered(
            &s,
            &parsed(&tcp(client, 4000, [192, 0, 2, 100], 80))
        ));
        assert!(!is_steered(
            &s,
            &parsed(&tcp(client, 4000, [192, 0, 2, 100], 22))
        ));
        let udp = PacketBuilder::new()
            .eth(MAC, MAC)
            .ipv4(Ipv4Addr::from(client), Ipv4Addr::new(192, 0, 2, 101))
            .udp(4000, 9999)
            .build();
        assert!(is_steered(&s, &parsed(&udp)));
        // NAT replies by source; full-NAT replies by local address and
        // port range.
        assert!(is_steered(
            &s,
            &parsed(&tcp([198, 51, 100, 11], 8080, client, 4000))
        ));
        assert!(!is_steered(
            &s,
            &parsed(&tcp([198, 51, 100, 11], 22, client, 4000))
        ));
        let local = [198, 51, 100, 250];
        assert!(is_steered(
            &s,
            &parsed(&tcp([198, 51, 100, 12], 80, local, 5500))
        ));
        assert!(!is_steered(
            &s,
            &parsed(&tcp([198, 51, 100, 12], 80, local, 22))
        ));
        // Nothing else.
        assert!(!is_steered(
            &s,
            &parsed(&tcp(client, 4000, [192, 0, 2, 1], 80))
        ));
        assert!(!is_steered(
            &Steering::default(),
            &parsed(&tcp(client, 1, [192, 0, 2, 100], 80))
        ));
    }

    #[test]
    fn a_shut_down_backend_takes_no_frames_and_refuses_steering() {
        let engine =
            Arc::new(Engine::new(&uvs_conf::Config::default(), crate::lab::net_view(1)).unwrap());
        let backend = MemBackend::new(engine, &["a".to_string(), "b".to_string()]);
        assert_eq!(
            backend.ports(),
            vec![(PortId(0), "a".to_string()), (PortId(1), "b".to_string())]
        );
        backend.steer(&steering()).unwrap();
        assert_eq!(backend.steer_calls(), 1);
        let frame = tcp([203, 0, 113, 7], 4000, [192, 0, 2, 1], 80);
        assert!(backend.receive(PortId(0), &[&frame], Millis(0)).is_empty());
        assert_eq!(backend.take_passed(), vec![(PortId(0), frame.clone())]);
        backend.shutdown();
        backend.shutdown();
        assert!(backend.is_shut_down());
        assert!(backend.steer(&steering()).is_err());
        assert!(backend.receive(PortId(0), &[&frame], Millis(0)).is_empty());
        assert!(backend.take_passed().is_empty());
    }
}
