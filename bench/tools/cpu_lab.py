#!/usr/bin/env python3
"""CPU time so far, in clock ticks, of the benchmark lab's long-lived
processes: every process in the lab's network namespaces
(/run/netns/PREFIX-*: uvsd, nginx, HAProxy, ...) plus the kernel threads
(ksoftirqd, kworkers: softirq work not run in a process's context).

  cpu_lab.py PREFIX

utime + stime only: these processes outlive a measurement, so the
difference of two readings is their CPU in between. The kernel here does
tick accounting without IRQ_TIME_ACCOUNTING, so softirq work a process
triggers (a veth send runs the receiver's stack) counts in its own time.
Short-lived clients (wrk) are timed by their caller. The conns scenario
uses this instead of /proc/stat, where other engineers' builds land too,
and where a process's time can exceed the ticks (steal is not reported
under this hypervisor, so subtracting the others' time overshoots).
"""
import glob
import os
import sys

PF_KTHREAD = 0x00200000


def main():
    prefix = sys.argv[1]
    lab = set()
    for path in glob.glob(f"/run/netns/{prefix}-*"):
        try:
            lab.add(os.stat(path).st_ino)
        except OSError:
            pass
    total = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            fields = stat[stat.rindex(")") + 2:].split()
            # fields[n - 3] is stat field n: flags 9, utime 14, stime 15.
            kthread = int(fields[6]) & PF_KTHREAD
            if not kthread and os.stat(f"/proc/{d}/ns/net").st_ino not in lab:
                continue
        except (OSError, ValueError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])
    print(total)


if __name__ == "__main__":
    main()
