"""Process and socket inspection for the cluster tests (Linux: /proc and ``ss``)."""

from __future__ import annotations

import ipaddress
import re
import subprocess
from pathlib import Path

_SS_PID = re.compile(r"pid=(\d+)")


def children_map() -> dict[int, list[int]]:
    from dse._proc import proc_stat

    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := proc_stat(int(entry.name))) is not None:  # None: gone meanwhile
            kids.setdefault(stat.ppid, []).append(int(entry.name))
    return kids


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (not ``pid`` itself)."""
    kids, out, todo = children_map(), set(), [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def pids_with(mark: str) -> set[int]:
    """Live processes whose command line contains ``mark`` or that hold a file open whose path does."""
    from dse.study._ray_session import _pids_and_cmdlines

    return {pid for pid, cmd, files in _pids_and_cmdlines() if mark in cmd or any(mark in f for f in files)}


def listening(pids: set[int] | None = None) -> list[tuple[str, int, set[int], str]]:
    """Listening TCP sockets from ``ss -ltnpH``: (address, port, owning pids, raw line), filtered to ``pids``."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, timeout=30, check=True, cwd="/").stdout
    socks = []
    for line in out.splitlines():
        cols = line.split()
        if len(cols) < 4:
            continue
        local = cols[3]
        addr, port = local.rsplit(":", 1)
        owners = {int(p) for p in _SS_PID.findall(line)}
        if pids is None or owners & pids:
            socks.append((addr.strip("[]").split("%")[0], int(port), owners, line))
    return socks


def is_loopback(addr: str) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (``::ffff:127.0.0.1``); False for ``*`` and ``0.0.0.0``."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback
