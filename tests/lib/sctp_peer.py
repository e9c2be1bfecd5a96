#!/usr/bin/env python3
"""tests/lib/sctp_peer.py — an SCTP client and responder over raw IP sockets.

The lab kernel has no SCTP (CONFIG_IP_SCTP unset), so neither end can open
an SCTP socket; real deployments would run kernel SCTP on the real servers.
This plays just enough of RFC 4960 over raw IPv4 sockets (protocol 132) to
drive associations through uvsd: INIT -> INIT ACK -> COOKIE ECHO -> COOKIE
ACK -> DATA (echoed by the responder) -> SHUTDOWN -> SHUTDOWN ACK ->
SHUTDOWN COMPLETE. Every packet it receives has its CRC32c checked (its own
table-driven CRC32c, not uvs's).

  sctp_peer.py respond --name rs1 --bind ADDR... --log FILE --seconds N
      Answer every SCTP packet to this host until N seconds passed or
      FILE.stop exists; FILE.ready appears once its sockets are open.
      Logs one line per packet received:
      "src=A:P dst=B:Q chunk=T crc=ok|bad".
  sctp_peer.py client --vip VIP --port P --count N --first-port C
      [--hold FILE] [--seconds N]
      Run N associations from ports C.. to VIP:P, one after another up to
      their DATA echo; print "assoc PORT NAME" per association; then (after
      FILE exists, with --hold) shut them all down and print "closed PORT".
      Exits non-zero on any timeout, bad CRC or unexpected answer.
"""
import argparse
import os
import select
import socket
import struct
import sys
import time

IPPROTO_SCTP = 132
DATA, INIT, INIT_ACK, SACK, ABORT, SHUTDOWN, SHUTDOWN_ACK = 0, 1, 2, 3, 6, 7, 8
COOKIE_ECHO, COOKIE_ACK, SHUTDOWN_COMPLETE = 10, 11, 14


def _crc_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def chunk(ctype, flags, value):
    out = struct.pack("!BBH", ctype, flags, 4 + len(value)) + value
    return out + b"\0" * (-len(out) % 4)


def packet(sport, dport, vtag, chunks):
    head = struct.pack("!HHI", sport, dport, vtag)
    body = b"".join(chunks)
    crc = crc32c(head + b"\0\0\0\0" + body)
    return head + struct.pack("<I", crc) + body


def parse(ip):
    """(src, dst, sport, dport, vtag, [(type, flags, value)], crc_ok) of an
    IPv4 packet carrying SCTP, or None."""
    if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != IPPROTO_SCTP:
        return None
    ihl = (ip[0] & 15) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    seg = ip[ihl:total]
    if len(seg) < 16:
        return None
    sport, dport, vtag = struct.unpack("!HHI", seg[:8])
    stored = struct.unpack("<I", seg[8:12])[0]
    crc_ok = crc32c(seg[:8] + b"\0\0\0\0" + seg[12:]) == stored
    chunks, off = [], 12
    while off + 4 <= len(seg):
        ctype, flags, length = struct.unpack("!BBH", seg[off:off + 4])
        if length < 4:
            break
        chunks.append((ctype, flags, seg[off + 4:off + length]))
        off += (length + 3) & ~3
    return (socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20]), sport, dport, vtag,
            chunks, crc_ok)


def raw_socket(bind=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_SCTP)
    if bind:
        s.bind((bind, 0))
    return s


def respond(args):
    rx = raw_socket()
    tx = {addr: raw_socket(addr) for addr in args.bind}
    deadline = time.monotonic() + args.seconds
    stop = args.log + ".stop"
    log = open(args.log, "a", buffering=1)
    open(args.log + ".ready", "w").close()
    while time.monotonic() < deadline and not os.path.exists(stop):
        ready, _, _ = select.select([rx], [], [], 0.1)
        if not ready:
            continue
        ip = rx.recv(65535)
        p = parse(ip)
        if p is None:
            continue
        src, dst, sport, dport, vtag, chunks, crc_ok = p
        first = chunks[0][0] if chunks else -1
        log.write("src=%s:%d dst=%s:%d chunk=%d crc=%s\n"
                  % (src, sport, dst, dport, first, "ok" if crc_ok else "bad"))
        sender = tx.get(dst)
        if not crc_ok or not chunks or sender is None:
            continue
        ctype, _, value = chunks[0]
        if ctype == INIT and len(value) >= 16:
            peer_tag = struct.unpack("!I", value[:4])[0]
            my_tag = 0x5A5A0000 | sport
            cookie = struct.pack("!II", peer_tag, my_tag) + args.name.encode()
            param = struct.pack("!HH", 7, 4 + len(cookie)) + cookie
            param += b"\0" * (-len(param) % 4)
            init_ack = struct.pack("!IIHHI", my_tag, 65535, 1, 1, 1000) + param
            reply = [chunk(INIT_ACK, 0, init_ack)]
            tag = peer_tag
        elif ctype == COOKIE_ECHO:
            tag = struct.unpack("!I", value[:4])[0] if len(value) >= 4 else 0
            reply = [chunk(COOKIE_ACK, 0, b"")]
        elif ctype == DATA and len(value) >= 12:
            tsn = struct.unpack("!I", value[:4])[0]
            text = value[12:]
            tag = 0x11110000 | sport
            echo = struct.pack("!IHHI", 1000, 0, 0, 0) + args.name.encode() + b":" + text
            reply = [chunk(SACK, 0, struct.pack("!IIHH", tsn, 65535, 0, 0)),
                     chunk(DATA, 3, echo)]
        elif ctype == SHUTDOWN:
            tag = 0x11110000 | sport
            reply = [chunk(SHUTDOWN_ACK, 0, b"")]
        else:
            continue
        sender.sendto(packet(dport, sport, tag, reply), (src, 0))
    return 0


class Client:
    def __init__(self, vip, port, seconds):
        self.vip, self.port = vip, port
        self.rx = raw_socket()
        self.tx = raw_socket()
        self.deadline = time.monotonic() + seconds

    def send(self, cport, vtag, chunks):
        self.tx.sendto(packet(cport, self.port, vtag, chunks), (self.vip, 0))

    def expect(self, cport, want, what, resend=None):
        """Wait for a packet VIP:port -> cport whose first chunk is `want`;
        resend the last packet every second (SCTP's own retransmission)."""
        next_resend = time.monotonic() + 1.0
        while True:
            now = time.monotonic()
            if now > self.deadline:
                raise SystemExit("timed out waiting for %s on port %d" % (what, cport))
            if resend and now > next_resend:
                resend()
                next_resend = now + 1.0
            ready, _, _ = select.select([self.rx], [], [], 0.1)
            if not ready:
                continue
            p = parse(self.rx.recv(65535))
            if p is None:
                continue
            src, _, sport, dport, _, chunks, crc_ok = p
            if (src, sport, dport) != (self.vip, self.port, cport):
                continue
            if not crc_ok:
                raise SystemExit("bad CRC32c in %s on port %d" % (what, cport))
            types = [c[0] for c in chunks]
            if want in types:
                return chunks[types.index(want)][2]
            if ABORT in types:
                raise SystemExit("ABORT instead of %s on port %d" % (what, cport))


def client(args):
    c = Client(args.vip, args.port, args.seconds)
    tags = {}
    for i in range(args.count):
        cport = args.first_port + i
        my_tag = 0x0C000000 | cport
        init = chunk(INIT, 0, struct.pack("!IIHHI", my_tag, 65535, 1, 1, 7))
        c.send(cport, 0, [init])
        value = c.expect(cport, INIT_ACK, "INIT ACK", lambda: c.send(cport, 0, [init]))
        peer_tag = struct.unpack("!I", value[:4])[0]
        tags[cport] = peer_tag
        cookie = value[20:20 + struct.unpack("!H", value[18:20])[0] - 4]
        echo = chunk(COOKIE_ECHO, 0, cookie)
        c.send(cport, peer_tag, [echo])
        c.expect(cport, COOKIE_ACK, "COOKIE ACK", lambda: c.send(cport, peer_tag, [echo]))
        data = chunk(DATA, 3, struct.pack("!IHHI", 7, 0, 0, 0) + b"hello-%d" % cport)
        c.send(cport, peer_tag, [data])
        reply = c.expect(cport, DATA, "DATA echo", lambda: c.send(cport, peer_tag, [data]))
        name = reply[12:].split(b":")[0].decode()
        if reply[12:] != name.encode() + b":hello-%d" % cport:
            raise SystemExit("port %d: echo %r" % (cport, reply[12:]))
        print("assoc %d %s" % (cport, name), flush=True)
    if args.hold:
        open(args.hold + ".ready", "w").close()
        while not os.path.exists(args.hold):
            if time.monotonic() > c.deadline:
                raise SystemExit("timed out waiting for %s" % args.hold)
            time.sleep(0.05)
    for cport, peer_tag in tags.items():
        shutdown = chunk(SHUTDOWN, 0, struct.pack("!I", 7))
        c.send(cport, peer_tag, [shutdown])
        c.expect(cport, SHUTDOWN_ACK, "SHUTDOWN ACK",
                 lambda: c.send(cport, peer_tag, [shutdown]))
        c.send(cport, peer_tag, [chunk(SHUTDOWN_COMPLETE, 0, b"")])
        print("closed %d" % cport, flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("respond")
    r.add_argument("--name", required=True)
    r.add_argument("--bind", action="append", default=[])
    r.add_argument("--log", required=True)
    r.add_argument("--seconds", type=float, default=60)
    cl = sub.add_parser("client")
    cl.add_argument("--vip", required=True)
    cl.add_argument("--port", type=int, required=True)
    cl.add_argument("--count", type=int, default=4)
    cl.add_argument("--first-port", type=int, default=40000)
    cl.add_argument("--hold")
    cl.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args()
    return respond(args) if args.mode == "respond" else client(args)


if __name__ == "__main__":
    sys.exit(main())
