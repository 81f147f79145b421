"""N concurrent `curl tftp://` downloads started together, each from its own address; wall time until the last ends.

Runs inside the client namespace (one `ip netns exec` for the whole batch, so
namespace entry is not timed).  curl is a C client: with it the server, not the
client, is what the figure measures.  Every file is checked by sha256 after the
clock stops.  Prints one JSON document.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import tempfile
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--blksize", type=int, default=512)
    ap.add_argument("--sha256", required=True)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--windowsize", type=int, default=0,
                    help="use atftp with RFC 7440 windowsize (curl has none); servers without it fall back to 1")
    ap.add_argument("--sources", default="", help="comma-separated local addresses, one per client in turn "
                                                  "(phones each have their own; servers cap transfers per address)")
    args = ap.parse_args()
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="tftp-cli-", dir=base) as tmp:
        outs = [os.path.join(tmp, f"f{i}") for i in range(args.count)]
        cmd = ["curl", "-s", "-S", "--max-time", str(int(args.timeout)), "--tftp-blksize", str(args.blksize)]
        start = time.monotonic()
        sources = [a for a in args.sources.split(",") if a]
        if args.windowsize:
            host, _, name = args.url.removeprefix("tftp://").partition("/")
            argvs = [["atftp", "--option", f"blksize {args.blksize}", "--option", f"windowsize {args.windowsize}",
                      "-g", "-r", name, "-l", out, host] for out in outs]
        else:
            argvs = [cmd + (["--interface", sources[i % len(sources)]] if sources else []) + ["-o", out, args.url]
                     for i, out in enumerate(outs)]
        procs = [subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for argv in argvs]
        errors = []
        for proc in procs:
            try:
                _, err = proc.communicate(timeout=max(1.0, start + args.timeout + 5 - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            if proc.returncode:
                errors.append(f"curl exit {proc.returncode}: {err.decode(errors='replace').strip()[:120]}")
        wall = time.monotonic() - start
        good = 0
        for out in outs:
            try:
                with open(out, "rb") as fh:
                    if hashlib.sha256(fh.read()).hexdigest() == args.sha256:
                        good += 1
                    else:
                        errors.append(f"{os.path.basename(out)}: sha256 mismatch")
            except OSError:
                pass
    print(json.dumps({"count": args.count, "good": good, "wall_s": wall, "errors": errors[:5]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
