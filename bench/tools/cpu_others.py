#!/usr/bin/env python3
"""CPU time, in clock ticks, of the user-space processes that are not the
benchmark's: the sum over every live process of utime + stime + cutime +
cstime, leaving out kernel threads, ROOT_PID and its descendants, and
processes in the lab's network namespaces (/run/netns/PREFIX-*).

  cpu_others.py ROOT_PID PREFIX

The difference of two readings is the CPU other work used in between
(a process alive at the first reading and reaped by the second is in
its parent's cutime at the second, whole, and in its own line at the
first, so the difference keeps only the time in between). The conns
scenario subtracts it from /proc/stat's busy time, so that other
engineers' builds on a shared machine do not count as the lab's CPU.
"""
import glob
import os
import sys

PF_KTHREAD = 0x00200000


def main():
    root, prefix = int(sys.argv[1]), sys.argv[2]
    lab = set()
    for path in glob.glob(f"/run/netns/{prefix}-*"):
        try:
            lab.add(os.stat(path).st_ino)
        except OSError:
            pass
    procs = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            net = os.stat(f"/proc/{d}/ns/net").st_ino
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        # fields[0] is state (stat field 3): field n is fields[n - 3].
        ppid, flags = int(fields[1]), int(fields[6])
        ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
        procs[int(d)] = (ppid, flags, net, ticks)
    total = 0
    for pid, (ppid, flags, net, ticks) in procs.items():
        if flags & PF_KTHREAD or net in lab:
            continue
        p, ours = pid, False
        for _ in range(64):
            if p == root:
                ours = True
                break
            if p not in procs or p <= 1:
                break
            p = procs[p][0]
        if not ours:
            total += ticks
    print(total)


if __name__ == "__main__":
    main()
