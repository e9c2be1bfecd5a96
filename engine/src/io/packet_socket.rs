//! AF_PACKET transmit sockets: how the TUN backend sends DR output.
//!
//! A TUN device carries IP packets, but a DR frame must reach the real
//! server's MAC with the packet untouched (its destination is still the
//! virtual address), so the kernel cannot route it. The engine has already
//! written both MACs; this socket puts the whole Ethernet frame on the
//! egress interface. The socket is bound with protocol 0, so it receives
//! nothing. Frames of a batch go out in one `sendmmsg` call.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::io::IoError;

/// Most frames sent per call.
pub const MAX_BATCH: usize = 64;

/// A transmit-only packet socket bound to one interface.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifname: String,
    iovecs: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
}

// SAFETY: the iovec/mmsghdr scratch space holds pointers only during a
// `send_batch` call on the owning thread.
unsafe impl Send for PacketSocket {}

impl PacketSocket {
    /// Open a packet socket that sends on `ifname`.
    pub fn open(ifname: &str) -> Result<PacketSocket, IoError> {
        let cname = CString::new(ifname)
            .map_err(|_| IoError::Setup(format!("bad interface name {ifname:?}")))?;
        // SAFETY: cname is a valid C string.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(IoError::Os {
                context: format!("interface {ifname}"),
                source: std::io::Error::last_os_error(),
            });
        }
        // SAFETY: plain socket(2); protocol 0 = receive nothing.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(IoError::Os {
                context: format!("open a packet socket on {ifname}"),
                source: std::io::Error::last_os_error(),
            });
        }
        // SAFETY: raw is a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_ll is plain data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = ifindex as i32;
        sll.sll_protocol = 0;
        // SAFETY: binding our socket to a valid sockaddr_ll.
        let ret = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if ret != 0 {
            return Err(IoError::Os {
                context: format!("bind a packet socket to {ifname}"),
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(PacketSocket {
            fd,
            ifname: ifname.to_owned(),
            iovecs: Vec::with_capacity(MAX_BATCH),
            // SAFETY: mmsghdr is plain data; zero is a valid empty header.
            msgs: vec![unsafe { std::mem::zeroed() }; MAX_BATCH],
        })
    }

    /// The interface the socket sends on.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Send up to [`MAX_BATCH`] whole Ethernet frames; returns how many
    /// the kernel took.
    pub fn send_batch(&mut self, frames: &[&[u8]]) -> usize {
        let n = frames.len().min(MAX_BATCH);
        if n == 0 {
            return 0;
        }
        self.iovecs.clear();
        for f in &frames[..n] {
            self.iovecs.push(libc::iovec {
                iov_base: f.as_ptr() as *mut libc::c_void,
                iov_len: f.len(),
            });
        }
        for (m, iov) in self.msgs.iter_mut().zip(self.iovecs.iter_mut()) {
            // SAFETY: plain data reset.
            *m = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: msgs[..n] point at live iovecs over live frames.
        let ret = unsafe {
            libc::sendmmsg(
                self.fd.as_raw_fd(),
                self.msgs.as_mut_ptr(),
                n as u32,
                libc::MSG_DONTWAIT,
            )
        };
        self.iovecs.clear();
        usize::try_from(ret).unwrap_or(0)
    }
}
