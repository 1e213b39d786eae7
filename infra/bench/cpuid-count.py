"""Counts the `cpuid` instructions a process executes, by where they are: a gdb script.

Each `cpuid` traps to the hypervisor in a virtual machine (9.2 µs each on the development VM:
docs/PERFORMANCE.md, "Where a cold start's extra time goes"), so their count is part of a cold
start's cost that no profile of our own code shows. Point the function at a closed Runtime API
port, so that it stops at its first `/next`:

    AWS_LAMBDA_RUNTIME_API=127.0.0.1:9 gdb -batch -nx -x infra/bench/cpuid-count.py \
        --args target/release/orders-status

It breaks on every `cpuid` of the binary, the dynamic loader, libc, libgcc and libm (found with
objdump) and prints the counts when the process ends.
"""

import os
import re
import subprocess

import gdb

LIBRARIES = {
    "libc": "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "libgcc": "/usr/lib/x86_64-linux-gnu/libgcc_s.so.1",
    "libm": "/usr/lib/x86_64-linux-gnu/libm.so.6",
}
counts = {}


def sites(path):
    listing = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", path], capture_output=True, text=True
    ).stdout
    return [int(m.group(1), 16) for m in re.finditer(r"^\s*([0-9a-f]+):\s+cpuid", listing, re.M)]


class Count(gdb.Breakpoint):
    def __init__(self, address, name):
        super().__init__("*0x%x" % address, internal=True)
        self.name = name

    def stop(self):
        counts[self.name] = counts.get(self.name, 0) + 1
        return False


def arm(pid, path, name):
    """Breaks on `path`'s `cpuid`s if it is mapped yet (at the base of its first mapping)."""
    for line in open(f"/proc/{pid}/maps"):
        fields = line.split()
        if len(fields) >= 6 and fields[5] == path and int(fields[2], 16) == 0:
            base = int(fields[0].split("-")[0], 16)
            for address in sites(path):
                Count(base + address, name)
            return True
    return False


gdb.execute("set pagination off")
gdb.execute("set confirm off")
gdb.execute("starti")
pid = gdb.selected_inferior().pid
arm(pid, os.path.realpath(gdb.current_progspace().filename), "binary")
arm(pid, os.path.realpath("/lib64/ld-linux-x86-64.so.2"), "loader")
# The libraries are mapped later: stop at each library event until all are.
gdb.execute("set stop-on-solib-events 1")
armed = set()
for _ in range(20):
    gdb.execute("continue")
    armed |= {name for name, path in LIBRARIES.items() if name not in armed and arm(pid, path, name)}
    if len(armed) == len(LIBRARIES):
        break
gdb.execute("set stop-on-solib-events 0")
gdb.execute("continue")
print("cpuid executed:", counts, "total", sum(counts.values()))
