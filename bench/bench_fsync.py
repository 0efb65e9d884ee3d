"""What each sync of the heartbeat directory costs here, and how many a
claim + release pays: the evidence for the durability policy (RELIABILITY.md).

Usage: python bench/bench_fsync.py [--dir DIR] [--repeats 5] [--iterations 100]

1. Primitives, interleaved (min / median / max over ``--repeats`` of the
   median of ``--iterations``), microseconds: a session-record-sized rewrite
   (temp file, rename over the target) with no sync, with the file fsynced,
   with file and directory fsynced; an event-sized append with no sync, fsync,
   fdatasync.
2. Syscalls per claim + release through a real ``SessionService`` over a
   ``DirectoryStore`` (counted by wrapping ``os.fsync``/``os.fdatasync``/
   ``os.replace`` in-process), and its latency in milliseconds.

``--dir`` chooses the file system (default: the system temp folder; the
heartbeat directory lives in the repository, so pass a folder on that disk).
Prints figures only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

RECORD = b"x" * 900
EVENT = b"y" * 250 + b"\n"


def rewrite(directory: str, sync_file: bool, sync_dir: bool):
    def run() -> None:
        tmp = os.path.join(directory, ".r.tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        os.write(fd, RECORD)
        if sync_file:
            os.fsync(fd)
        os.close(fd)
        os.replace(tmp, os.path.join(directory, "r.json"))
        if sync_dir:
            dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            os.fsync(dfd)
            os.close(dfd)

    return run


def append(log_fd: int, sync):
    def run() -> None:
        os.write(log_fd, EVENT)
        if sync is not None:
            sync(log_fd)

    return run


def median_us(run, iterations: int) -> float:
    samples = []
    for _ in range(iterations):
        began = time.perf_counter()
        run()
        samples.append((time.perf_counter() - began) * 1e6)
    return statistics.median(samples)


def primitives(directory: str, repeats: int, iterations: int) -> None:
    log_fd = os.open(
        os.path.join(directory, "events.jsonl"), os.O_CREAT | os.O_WRONLY | os.O_APPEND
    )
    runs = {
        "record rewrite, no sync": rewrite(directory, False, False),
        "record rewrite, fsync file": rewrite(directory, True, False),
        "record rewrite, fsync file + dir": rewrite(directory, True, True),
        "event append, no sync": append(log_fd, None),
        "event append, fsync": append(log_fd, os.fsync),
        "event append, fdatasync": append(log_fd, os.fdatasync),
    }
    got: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            got[name].append(median_us(run, iterations))
    os.close(log_fd)
    print(f"primitives, us (median of {iterations}; min / median / max over {repeats} repeats)")
    for name, values in got.items():
        print(
            f"  {name:34s} {min(values):8.0f} / {statistics.median(values):8.0f} / "
            f"{max(values):8.0f}"
        )


def claim_release(directory: str, iterations: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_store import make_service, open_store

    store = open_store({"kind": "directory", "path": os.path.join(directory, "sessions")})
    store.prepare()
    service = make_service(store, "bench-fsync", Path(directory))
    counts: Counter[str] = Counter()
    real = {name: getattr(os, name) for name in ("fsync", "fdatasync", "replace")}

    def counting(name: str):
        def call(*args, **kwargs):
            counts[name] += 1
            return real[name](*args, **kwargs)

        return call

    for _ in range(5):
        service.claim("p")
        service.release("p")
    for name in real:
        setattr(os, name, counting(name))
    samples = []
    try:
        for _ in range(iterations):
            began = time.perf_counter()
            service.claim("p")
            service.release("p")
            samples.append((time.perf_counter() - began) * 1000)
    finally:
        for name, function in real.items():
            setattr(os, name, function)
    service.end("bench done")
    per = {name: counts[name] / iterations for name in real}
    print(f"claim + release through the service ({iterations} pairs)")
    print(
        f"  per pair: fsync {per['fsync']:.1f}, fdatasync {per['fdatasync']:.1f}, "
        f"rename {per['replace']:.1f}"
    )
    print(
        f"  latency ms: p50 {statistics.median(samples):.2f}, "
        f"min {min(samples):.2f}, max {max(samples):.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-fsync-", dir=args.dir) as tmp:
        primitives(tmp, args.repeats, args.iterations)
        claim_release(tmp, args.iterations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
