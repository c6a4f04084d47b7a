"""Replay of captured admissions at scale: events per second and peak memory of
`castslice replay s3://... --env-file proposed.env`, streaming from S3 (moto's server).

    python bench/replay.py                    # 200,000 events, and 20,000 for comparison
    python bench/replay.py --events 50000     # another size

Captures are written as the server writes them (a configuration line, then 200 events per
gzip batch), from the golden events' Pods with fresh uids. The replay runs as its own
process; its peak RSS is the kernel's high-water mark of that process after exec (VmHWM,
read while it runs: wait4's ru_maxrss would count the pages the fork shared with this
process, moto's 200,000 stored events included).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from castslice import __version__  # noqa: E402
from castslice.capture.store import CONFIGURATION, S3Store, line  # noqa: E402
from castslice.functions.admit import admit, check_review  # noqa: E402
from castslice.settings.config import Config  # noqa: E402

BATCH = 200
PROPOSED = ("CASTSLICE_PRESETS=training=8,inference=2,batch=2,dev=1\n"
            'CASTSLICE_RULES=[{"namespaces": ["ml-*"], "optimize": true, "workloadType": '
            '"inference"}]\n')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def templates() -> list[dict[str, Any]]:
    """One captured record per golden event with a Pod, answered as the server would."""
    config = Config()
    found = []
    for path in sorted((ROOT / "events").glob("*.json")):
        case = orjson.loads(path.read_bytes())
        if case["env"] or not isinstance(case["request"]["request"].get("object"), dict):
            continue
        review = case["request"]
        response = admit(check_review(review), config.policy).response
        found.append({"namespace": review["request"].get("namespace"), "version": __version__,
                      "config": config.fingerprint(), "request": review,
                      "response": response})
    return found


def fill(bucket: str, prefix: str, events: int) -> None:
    """Write `events` captured admissions in server-shaped batches."""
    config = Config()
    store = S3Store(bucket, prefix)
    header = line({CONFIGURATION: config.as_env(), "version": __version__,
                   "config": config.fingerprint()})
    shapes = templates()
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    for start in range(0, events, BATCH):
        lines = [header]
        for n in range(start, min(start + BATCH, events)):
            shape = shapes[n % len(shapes)]
            uid = f"bench-{n:08d}"
            request = shape["request"]
            lines.append(line(shape | {
                "captured_at": now, "uid": uid,
                "request": request | {"request": request["request"] | {"uid": uid}}}))
        store.write(lines)


def measure(source: str, env: dict[str, str]) -> dict[str, Any]:
    """Run the replay in its own process: wall time, its report, and its peak RSS."""
    with tempfile.NamedTemporaryFile("w", suffix=".env", delete=False) as proposed:
        proposed.write(PROPOSED)
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen([str(Path(sys.executable).parent / "castslice"), "replay",
                                    source, "--env-file", proposed.name, "--output", "json"],
                                   stdout=out, env=env)
        peak = 0
        while process.poll() is None:
            peak = max(peak, _high_water_kib(process.pid))
            time.sleep(0.1)
        seconds = time.monotonic() - started
        out.seek(0)
        report = json.loads(out.read())
    os.unlink(proposed.name)
    return {"events": report["events"], "changed": report["changed"],
            "wall_seconds": round(seconds, 1),
            "events_per_second": report["events_per_second"],
            "peak_rss_mib": round(peak / 1024, 1), "exit": process.returncode}


def _high_water_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    except (OSError, StopIteration):  # exited meanwhile
        return 0


def main() -> None:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per S3 request
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    aws = {"AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    os.environ.update(aws)
    import boto3

    boto3.client("s3").create_bucket(Bucket="captures")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASTSLICE_")}
    try:
        for events in sorted({args.events // 10, args.events}):
            prefix = f"bench-{events}"
            started = time.monotonic()
            fill("captures", prefix, events)
            written = time.monotonic() - started
            result = measure(f"s3://captures/{prefix}", env)
            print(f"{events:>8,} events (written in {written:.0f} s): replayed in "
                  f"{result['wall_seconds']} s, {result['events_per_second']:,} events/s, "
                  f"peak RSS {result['peak_rss_mib']} MiB, {result['changed']:,} would "
                  f"change, exit {result['exit']}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
