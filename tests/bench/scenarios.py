"""The benchmark scenarios: setup (not measured), warm-up, then one measured phase each."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tests.bench.httpclient import Connection
from tests.bench.matrix import MatrixClient, MatrixRequestError, User
from tests.bench.metrics import ProcessWatch, percentile

# A phase gives up once this many operations failed and failures outnumber successes
# (a rate limit or a wrong URL should not spin for the whole duration).
_MAX_ERRORS = 50


@dataclass
class Settings:
    concurrency: int
    requests: int | None
    duration: float
    warmup: float
    members: int
    history: list[int]
    fill_concurrency: int
    # sync scenarios (tests/bench/sync_scenarios.py)
    receivers: int = 100
    rate: float = 10.0
    rooms: int = 100
    events_per_room: int = 20
    history_events: int = 5000
    repeat: int = 1


@dataclass
class PhaseResult:
    ops: int = 0
    errors: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)


def log(msg: str) -> None:
    print(f"[loadgen] {msg}", file=sys.stderr, flush=True)


async def run_phase(workers: int, op: Callable[[int], Awaitable[None]], *,
                    requests: int | None, duration: float | None,
                    record_latency: bool = True) -> PhaseResult:
    """Run `op(worker_index)` in `workers` loops until `requests` ops or `duration` seconds."""
    result = PhaseResult()
    claimed = 0
    start = time.perf_counter()
    deadline = start + duration if duration else None

    async def worker(index: int) -> None:
        nonlocal claimed
        while True:
            if requests is not None and claimed >= requests:
                return
            if deadline is not None and time.perf_counter() >= deadline:
                return
            if result.errors >= _MAX_ERRORS and result.errors > result.ops:
                return
            claimed += 1
            t0 = time.perf_counter()
            try:
                await op(index)
            except (MatrixRequestError, OSError, asyncio.IncompleteReadError) as e:
                result.errors += 1
                if len(result.error_samples) < 5:
                    result.error_samples.append(str(e))
                continue
            result.ops += 1
            if record_latency:
                result.latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(worker(i) for i in range(workers)))
    result.elapsed = time.perf_counter() - start
    if result.errors:
        log(f"{result.errors} failed operations, e.g. {result.error_samples[0]}")
    return result


async def measure(name: str, unit: str, watch: ProcessWatch, settings: Settings,
                  workers: int, op: Callable[[int], Awaitable[None]],
                  extra: dict[str, Any], warmup: bool = True) -> dict[str, Any]:
    """Warm up, then run the measured phase and turn it into one result row."""
    if warmup and settings.warmup > 0:
        await run_phase(workers, op, requests=None, duration=settings.warmup,
                        record_latency=False)
    before = watch.sample()
    phase = await run_phase(workers, op, requests=settings.requests,
                            duration=None if settings.requests else settings.duration)
    after = watch.sample()
    lat = sorted(phase.latencies)
    row: dict[str, Any] = {
        "scenario": name, "unit": unit, "concurrency": workers, **extra,
        "ops": phase.ops, "errors": phase.errors, "seconds": round(phase.elapsed, 3),
        "rate_per_s": round(phase.ops / phase.elapsed, 1) if phase.elapsed else 0.0,
        "latency_ms": {
            "p50": round(percentile(lat, 50) * 1000, 1),
            "p90": round(percentile(lat, 90) * 1000, 1),
            "p99": round(percentile(lat, 99) * 1000, 1),
            "max": round(lat[-1] * 1000, 1) if lat else 0.0,
        },
        "client_cpu_s_per_1k": _per_1k(after.client - before.client, phase.ops),
        # Busy cores of the whole machine: shows the generator's share and any other load.
        "machine_busy_cores": round((after.machine - before.machine) / phase.elapsed, 2)
        if phase.elapsed else None,
    }
    if after.server is not None and before.server is not None:
        row["server_cpu_s"] = round(after.server - before.server, 2)
        row["server_cpu_s_per_1k"] = _per_1k(after.server - before.server, phase.ops)
        mem = watch.memory()
        row["server_rss_mib"] = round(mem.get("VmRSS", 0) / 1024, 1)
        row["server_peak_rss_mib"] = round(mem.get("VmHWM", 0) / 1024, 1)
    if after.db is not None and before.db is not None:
        row["db_cpu_s_per_1k"] = _per_1k(after.db - before.db, phase.ops)
    if phase.error_samples:
        row["error_samples"] = phase.error_samples
    return row


def _per_1k(seconds: float, ops: int) -> float | None:
    return round(seconds / ops * 1000, 3) if ops else None


def _dedicated(client: MatrixClient, count: int) -> list[Connection]:
    return [client.pool.new_connection() for _ in range(count)]


async def scenario_whoami(client: MatrixClient, watch: ProcessWatch,
                          settings: Settings) -> list[dict[str, Any]]:
    """GET /account/whoami: the access-token check every authenticated request pays."""
    n = settings.concurrency
    users = await client.register_many(min(n, 16), "w")
    conns = _dedicated(client, n)

    async def op(i: int) -> None:
        resp = await client.whoami(users[i % len(users)], conns[i])
        if resp.status != 200:
            raise MatrixRequestError("whoami", resp)

    return [await measure("whoami", "requests", watch, settings, n, op, {})]


async def scenario_create_room(client: MatrixClient, watch: ProcessWatch,
                               settings: Settings) -> list[dict[str, Any]]:
    """createRoom inviting 4 users, then the 4 join: one op = a room with 5 joined members."""
    n = settings.concurrency
    log(f"create-room: registering {5 * n} users")
    users = await client.register_many(5 * n, "r")
    teams = [users[5 * i:5 * i + 5] for i in range(n)]
    conns = [_dedicated(client, 5) for _ in range(n)]

    async def op(i: int) -> None:
        creator, *guests = teams[i]
        room_id = await client.create_room(creator, [g.user_id for g in guests],
                                           conn=conns[i][0])
        await asyncio.gather(*(client.join(g, room_id, conns[i][k + 1])
                               for k, g in enumerate(guests)))

    return [await measure("create-room", "rooms", watch, settings, n, op,
                          {"members_per_room": 5})]


async def _send_room(client: MatrixClient, members: int) -> tuple[str, list[User]]:
    """A public room with `members` joined users (the creator is the first)."""
    log(f"registering {members} members")
    users = await client.register_many(members, "m")
    room_id = await client.create_room(users[0], preset="public_chat")
    gate = asyncio.Semaphore(16)

    async def join(user: User) -> None:
        async with gate:
            await client.join(user, room_id)

    await asyncio.gather(*(join(u) for u in users[1:]))
    log(f"room {room_id} has {members} joined members")
    return room_id, users


def _sender_op(client: MatrixClient, room_id: str, users: list[User],
               conns: list[Connection]) -> Callable[[int], Awaitable[None]]:
    async def op(i: int) -> None:
        resp = await client.send_message(users[i % len(users)], room_id, f"bench message {i}",
                                         conns[i])
        if resp.status != 200:
            raise MatrixRequestError("send", resp)

    return op


async def scenario_send(client: MatrixClient, watch: ProcessWatch,
                        settings: Settings) -> list[dict[str, Any]]:
    """N concurrent senders, one room of M joined members: events/s and latency."""
    room_id, users = await _send_room(client, settings.members)
    n = settings.concurrency
    op = _sender_op(client, room_id, users, _dedicated(client, n))
    return [await measure("send", "events", watch, settings, n, op,
                          {"members": settings.members})]


async def scenario_send_history(client: MatrixClient, watch: ProcessWatch,
                                settings: Settings) -> list[dict[str, Any]]:
    """The send measurement repeated in one room as its history grows to each --history level."""
    room_id, users = await _send_room(client, settings.members)
    n = settings.concurrency
    # createRoom (public_chat) writes about 5 state events, then one join per other member.
    sent = 5 + settings.members
    measure_op = _sender_op(client, room_id, users, _dedicated(client, n))
    fill_conns = _dedicated(client, settings.fill_concurrency)
    fill_op = _sender_op(client, room_id, users, fill_conns)
    room_left = min(settings.history) - sent
    if settings.warmup > 0 and room_left > 0:
        # One warm-up before the first level, counted in the history and stopping at that
        # level. Later levels are warmed up by their fill phase.
        warm = await run_phase(n, measure_op, requests=room_left, duration=settings.warmup,
                               record_latency=False)
        sent += warm.ops
    rows = []
    for level in sorted(settings.history):
        missing = level - sent
        if missing > 0:
            log(f"filling the room with {missing} events to reach {level}")
            fill = await run_phase(settings.fill_concurrency, fill_op, requests=missing,
                                   duration=None, record_latency=False)
            sent += fill.ops
            log(f"filled at {fill.ops / fill.elapsed:.0f} events/s")
        row = await measure("send-history", "events", watch, settings, n, measure_op,
                            {"members": settings.members, "history": sent}, warmup=False)
        sent += row["ops"] + row["errors"]
        row["history_end"] = sent
        rows.append(row)
    return rows


SCENARIOS: dict[str, Callable[[MatrixClient, ProcessWatch, Settings],
                              Awaitable[list[dict[str, Any]]]]] = {
    "whoami": scenario_whoami,
    "create-room": scenario_create_room,
    "send": scenario_send,
    "send-history": scenario_send_history,
}
