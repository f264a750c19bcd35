"""Load generator for any Matrix homeserver: `python -m tests.bench.loadgen SCENARIO...`.

Scenarios: whoami, create-room, send, send-history (see tests/bench/README.md). Users are
created per run through the shared-secret admin API (`--shared-secret`) or open registration
(`--open-registration`). With `--server-pid` the server's CPU time per 1,000 operations and
its memory are reported as well.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from typing import Any

from tests.bench.httpclient import HttpPool
from tests.bench.matrix import MatrixClient
from tests.bench.metrics import ProcessWatch
from tests.bench.scenarios import SCENARIOS, Settings, log
from tests.bench.sync_scenarios import SYNC_SCENARIOS

ALL_SCENARIOS = {**SCENARIOS, **SYNC_SCENARIOS}


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v.replace("_", "")) for v in text.split(",") if v.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, not {text!r}") from e
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError("expected non-negative integers")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tests.bench.loadgen",
        description="HTTP/1.1 keep-alive load generator for Matrix homeservers.",
    )
    p.add_argument("scenarios", nargs="+", choices=sorted(ALL_SCENARIOS), metavar="SCENARIO",
                   help=f"one or more of: {', '.join(ALL_SCENARIOS)}")
    p.add_argument("--url", default="http://127.0.0.1:8008",
                   help="the server's client API base URL (default %(default)s)")
    p.add_argument("--concurrency", "-c", type=int, default=32,
                   help="concurrent workers, each on its own connection (default %(default)s)")
    p.add_argument("--requests", "-n", type=int,
                   help="measured operations per phase (overrides --duration)")
    p.add_argument("--duration", "-d", type=float, default=20.0,
                   help="seconds per measured phase (default %(default)s)")
    p.add_argument("--warmup", type=float, default=2.0,
                   help="seconds of unmeasured load before each phase (default %(default)s)")
    p.add_argument("--members", type=int, default=50,
                   help="joined members of the send room (default %(default)s)")
    p.add_argument("--history", type=_int_list, default=[1000, 50000],
                   help="send-history: comma-separated room sizes, measured in order "
                        "(default 1000,50000)")
    p.add_argument("--fill-concurrency", type=int, default=64,
                   help="send-history: senders used to fill the room (default %(default)s)")
    p.add_argument("--receivers", type=int, default=100,
                   help="fanout: long-polling receivers in the room (default %(default)s)")
    p.add_argument("--rate", type=float, default=10.0,
                   help="fanout: messages per second from the sender (default %(default)s)")
    p.add_argument("--rooms", type=int, default=100,
                   help="initial-sync: rooms the user is in (default %(default)s)")
    p.add_argument("--events-per-room", type=int, default=20,
                   help="initial-sync: messages per room (default %(default)s)")
    p.add_argument("--history-events", type=int, default=5000,
                   help="messages: events to page back through (default %(default)s)")
    p.add_argument("--repeat", type=int, default=1,
                   help="messages: how many times to page through (default %(default)s)")
    p.add_argument("--server-pid", type=int,
                   help="report this process's CPU-seconds per 1,000 ops and its RSS")
    p.add_argument("--db-pid", type=int,
                   help="also report CPU of this process and its children (e.g. postmaster)")
    reg = p.add_mutually_exclusive_group(required=True)
    reg.add_argument("--shared-secret", help="registration_shared_secret of the server")
    reg.add_argument("--open-registration", action="store_true",
                     help="register users with /register and m.login.dummy")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    return p


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "os": platform.platform()}


def format_table(results: list[dict[str, Any]]) -> str:
    """One line per measured phase, aligned columns."""
    head = ["scenario", "conc", "members", "history", "ops", "errors", "secs", "rate/s",
            "p50 ms", "p99 ms", "srv CPU-s/1k", "db CPU-s/1k", "cli CPU-s/1k", "busy cores",
            "RSS MiB"]
    rows = [head]
    for r in results:
        def opt(key: str, r: dict[str, Any] = r) -> str:
            value = r.get(key)
            return "-" if value is None else str(value)

        rows.append([
            r["scenario"], str(r["concurrency"]),
            opt("members") if "members" in r else opt("members_per_room"),
            f"{r['history']}-{r['history_end']}" if "history_end" in r else opt("history"),
            str(r["ops"]), str(r["errors"]), f"{r['seconds']:.1f}",
            f"{r['rate_per_s']:.1f} {r['unit']}", f"{r['latency_ms']['p50']:.1f}",
            f"{r['latency_ms']['p99']:.1f}", opt("server_cpu_s_per_1k"),
            opt("db_cpu_s_per_1k"), opt("client_cpu_s_per_1k"), opt("machine_busy_cores"),
            opt("server_rss_mib"),
        ])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(
        concurrency=args.concurrency, requests=args.requests, duration=args.duration,
        warmup=args.warmup, members=args.members, history=args.history,
        fill_concurrency=args.fill_concurrency, receivers=args.receivers, rate=args.rate,
        rooms=args.rooms, events_per_room=args.events_per_room,
        history_events=args.history_events, repeat=args.repeat,
    )
    watch = ProcessWatch(args.server_pid, args.db_pid)
    pool = HttpPool(args.url, size=64)
    client = MatrixClient(pool, args.shared_secret, args.open_registration)
    log(f"run {client.run_id} against {args.url}")
    results: list[dict[str, Any]] = []
    try:
        for name in args.scenarios:
            log(f"scenario {name}")
            rows = await ALL_SCENARIOS[name](client, watch, settings)
            for row in rows:
                log(f"{name}: {row['rate_per_s']} {row['unit']}/s, "
                    f"p50 {row['latency_ms']['p50']} ms, p99 {row['latency_ms']['p99']} ms")
            results.extend(rows)
    finally:
        pool.close()
    return {
        "url": args.url, "run_id": client.run_id,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info(), "results": results,
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.concurrency < 1 or args.members < 1 or args.fill_concurrency < 1:
        print("--concurrency, --members and --fill-concurrency must be at least 1",
              file=sys.stderr)
        return 2
    if args.server_pid and not os.path.exists(f"/proc/{args.server_pid}/stat"):
        print(f"--server-pid {args.server_pid}: no such process", file=sys.stderr)
        return 2
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_table(report["results"]))
    failed = any(r["ops"] == 0 for r in report["results"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
