"""Cross-server delivery: `python -m tests.bench.federation_bench`.

Starts two Axon processes federating over loopback TLS (`tests/integration/
federation_pair.py`), puts `--senders` users of server A and one user of server B in one
room (B joins over federation), then for `--duration` seconds each sender sends messages
one at a time (closed loop, or paced to `--rate` events/s in all) while B's user
long-polls `/sync`. Reports:

- events/s accepted by A (send responses), with send latency;
- delivery latency: from the send's response on A to B's `/sync` returning the event
  (p50/p90/p99/max), plus delivered, missed (not seen `--drain` seconds after the last
  send) and duplicated counts;
- CPU-seconds per 1,000 events of each server process, and their RSS.

Setup (registrations, the room, the remote join, and a warm-up message per sender whose
delivery is awaited so that key fetches and connections are in place) is not measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any
from urllib.parse import quote, urlencode

from tests.bench.httpclient import HttpPool
from tests.bench.loadgen import machine_info
from tests.bench.matrix import CLIENT, MatrixClient, MatrixRequestError, User
from tests.bench.metrics import cpu_seconds, memory_kib, percentile
from tests.bench.scenarios import log, run_phase
from tests.bench.sync_scenarios import sync_once
from tests.integration.federation_pair import federating_server
from tests.integration.server_process import ServerProcess

#: the first sync only fetches a token; later ones must never be `limited` (a gap
#: would count as missed events), hence a timeline limit far above one sync's worth
_FIRST = json.dumps({"room": {"timeline": {"limit": 1}}, "presence": {"types": []}})
_FILTER = json.dumps({"room": {"timeline": {"limit": 5000}}, "presence": {"types": []}})


def _ms(values: list[float]) -> dict[str, float]:
    lat = sorted(values)
    return {"p50": round(percentile(lat, 50) * 1000, 1),
            "p90": round(percentile(lat, 90) * 1000, 1),
            "p99": round(percentile(lat, 99) * 1000, 1),
            "max": round(lat[-1] * 1000, 1) if lat else 0.0}


class Receiver:
    """B's user long-polling /sync: the arrival time of every benchmark message."""

    def __init__(self, client: MatrixClient, user: User, room_id: str) -> None:
        self._client = client
        self._user = user
        self._room_id = room_id
        self.arrived: dict[str, float] = {}
        self.duplicates = 0
        self.limited = 0
        self._changed = asyncio.Event()
        self._stop = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        conn = self._client.pool.new_connection()
        first = await sync_once(self._client, self._user, conn, filter=_FIRST)
        self._task = asyncio.ensure_future(self._loop(conn, first["next_batch"]))

    async def _loop(self, conn: Any, token: str) -> None:
        while not self._stop:
            body = await sync_once(self._client, self._user, conn, token, timeout=5000,
                                   filter=_FILTER)
            now = time.perf_counter()
            token = body["next_batch"]
            room = body.get("rooms", {}).get("join", {}).get(self._room_id)
            if room and room["timeline"].get("limited"):
                self.limited += 1
            for event in room["timeline"]["events"] if room else ():
                text = event.get("content", {}).get("body", "")
                if text in self.arrived:
                    self.duplicates += 1
                elif text:
                    self.arrived[text] = now
            self._changed.set()

    async def wait_for(self, texts: set[str], timeout: float) -> bool:
        """Until every text arrived (True) or `timeout` seconds pass (False)."""
        deadline = time.perf_counter() + timeout
        while not texts <= self.arrived.keys():
            left = deadline - time.perf_counter()
            if left <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                return False
        return True

    async def stop(self) -> None:
        self._stop = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass


async def _join_remote(pool: HttpPool, user: User, room_id: str, via: str) -> None:
    path = f"{CLIENT}/join/{quote(room_id, safe='')}?{urlencode({'server_name': via})}"
    resp = await pool.request("POST", path, b"{}", user.headers)
    if resp.status != 200:
        raise MatrixRequestError("remote join", resp)


async def measure(a: ServerProcess, b: ServerProcess, senders_n: int, duration: float,
                  drain: float, rate: float | None = None) -> dict[str, Any]:
    """Set up the room on A with B's user in it, then run the measured phase."""
    pool_a = HttpPool(a.base_url, size=senders_n + 8)
    pool_b = HttpPool(b.base_url, size=4)
    try:
        client_a = MatrixClient(pool_a, a.shared_secret, False)
        client_b = MatrixClient(pool_b, b.shared_secret, False)
        senders = await client_a.register_many(senders_n, "s")
        (reader,) = await client_b.register_many(1, "r")
        room_id = await client_a.create_room(senders[0], preset="public_chat")
        for user in senders[1:]:
            await client_a.join(user, room_id)
        await _join_remote(pool_b, reader, room_id, a.server_name)
        receiver = Receiver(client_b, reader, room_id)
        await receiver.start()
        conns = [pool_a.new_connection() for _ in senders]
        warm = set()
        for i, user in enumerate(senders):
            text = f"warm {i}"
            resp = await client_a.send_message(user, room_id, text, conns[i])
            if resp.status != 200:
                raise MatrixRequestError("warm-up send", resp)
            warm.add(text)
        if not await receiver.wait_for(warm, 30):
            raise RuntimeError("the warm-up messages did not reach server B")
        log(f"room {room_id}: {senders_n} senders on A, 1 receiver on B; measuring")

        sent_at: dict[str, float] = {}
        counters = [0] * senders_n
        send_latencies: list[float] = []
        # Paced: sender i sends at start + (i + k * senders) / rate.
        start = time.perf_counter()
        next_at = [start + i / rate for i in range(senders_n)] if rate else []

        async def send(index: int) -> None:
            if rate:
                await asyncio.sleep(max(0.0, next_at[index] - time.perf_counter()))
                next_at[index] += senders_n / rate
            counters[index] += 1
            text = f"fed {index}-{counters[index]}"
            t0 = time.perf_counter()
            resp = await client_a.send_message(senders[index], room_id, text, conns[index])
            if resp.status != 200:
                raise MatrixRequestError("send", resp)
            sent_at[text] = time.perf_counter()
            send_latencies.append(sent_at[text] - t0)

        assert a.proc is not None and b.proc is not None
        cpu_before = (cpu_seconds(a.proc.pid), cpu_seconds(b.proc.pid))
        phase = await run_phase(senders_n, send, requests=None, duration=duration,
                                record_latency=False)
        complete = await receiver.wait_for(set(sent_at), drain)
        cpu_after = (cpu_seconds(a.proc.pid), cpu_seconds(b.proc.pid))
        await receiver.stop()
    finally:
        pool_a.close()
        pool_b.close()
    delivered = [receiver.arrived[t] - s for t, s in sent_at.items() if t in receiver.arrived]
    ops = phase.ops

    def per_1k(seconds: float) -> float | None:
        return round(seconds / ops * 1000, 3) if ops else None

    return {
        "scenario": "federation", "senders": senders_n, "rate_target": rate,
        "seconds": round(phase.elapsed, 2),
        "sent": ops, "send_errors": phase.errors,
        "events_per_s": round(ops / phase.elapsed, 1) if phase.elapsed else 0.0,
        "send_latency_ms": _ms(send_latencies),
        "delivered": len(delivered), "missed": ops - len(delivered),
        "duplicated": receiver.duplicates, "limited_syncs": receiver.limited,
        "all_delivered": complete,
        "delivery_latency_ms": _ms(delivered),
        "server_a_cpu_s_per_1k": per_1k(cpu_after[0] - cpu_before[0]),
        "server_b_cpu_s_per_1k": per_1k(cpu_after[1] - cpu_before[1]),
        "server_a_rss_mib": round(memory_kib(a.proc.pid).get("VmRSS", 0) / 1024, 1),
        "server_b_rss_mib": round(memory_kib(b.proc.pid).get("VmRSS", 0) / 1024, 1),
    }


def run(senders: int, duration: float, drain: float = 30.0,
        engine: str = "sqlite3", rate: float | None = None) -> dict[str, Any]:
    """Start the two servers, measure, stop them; the report with the machine."""
    a, b = federating_server(engine), federating_server(engine)
    try:
        a.start()
        b.start()
        result = asyncio.run(measure(a, b, senders, duration, drain, rate))
    except BaseException:
        log(f"--- server A log ---\n{a.log()[-3000:]}\n--- server B log ---\n"
            f"{b.log()[-3000:]}")
        raise
    finally:
        a.close()
        b.close()
    return {"finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "engine": engine, "machine": machine_info(), "results": [result]}


def format_report(report: dict[str, Any]) -> str:
    r = report["results"][0]
    d, s = r["delivery_latency_ms"], r["send_latency_ms"]
    paced = f", paced to {r['rate_target']} events/s" if r["rate_target"] else ""
    return "\n".join([
        f"federation ({report['engine']}), {r['senders']} senders on A"
        f"{paced}, "
        f"{r['seconds']} s measured",
        f"  sent: {r['sent']} ({r['events_per_s']} events/s, {r['send_errors']} errors); "
        f"send latency p50 {s['p50']} ms, p99 {s['p99']} ms",
        f"  delivered to B: {r['delivered']}, missed {r['missed']}, "
        f"duplicated {r['duplicated']}, limited syncs {r['limited_syncs']}",
        f"  delivery latency (A's send response -> B's /sync): p50 {d['p50']} ms, "
        f"p90 {d['p90']} ms, p99 {d['p99']} ms, max {d['max']} ms",
        f"  CPU-s per 1,000 events: A {r['server_a_cpu_s_per_1k']}, "
        f"B {r['server_b_cpu_s_per_1k']}; RSS A {r['server_a_rss_mib']} MiB, "
        f"B {r['server_b_rss_mib']} MiB",
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.bench.federation_bench",
                                description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--senders", "-c", type=int, default=8,
                   help="concurrent senders on server A (default 8)")
    p.add_argument("--duration", "-d", type=float, default=20.0,
                   help="seconds of measured sending (default 20)")
    p.add_argument("--rate", type=float, default=None,
                   help="pace the senders to this many events/s in all (default: as fast "
                        "as A answers)")
    p.add_argument("--drain", type=float, default=30.0,
                   help="seconds to wait for the last deliveries (default 30)")
    p.add_argument("--postgres", action="store_true",
                   help="both servers on PostgreSQL (needs AXON_TEST_PG_DSN)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    args = p.parse_args(argv)
    if args.senders < 1 or args.duration <= 0 or (args.rate is not None and args.rate <= 0):
        print("--senders must be at least 1, --duration and --rate positive",
              file=sys.stderr)
        return 2
    report = run(args.senders, args.duration, args.drain,
                 "psycopg2" if args.postgres else "sqlite3", args.rate)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    result = report["results"][0]
    return 0 if result["sent"] and not result["missed"] else 1


if __name__ == "__main__":
    sys.exit(main())
