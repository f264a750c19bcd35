"""Sync and history scenarios: fan-out to long-polling clients, initial and incremental
sync of a user in many rooms, and paging back through a room's history."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

from tests.bench.httpclient import Connection
from tests.bench.matrix import CLIENT, MatrixClient, MatrixRequestError, User
from tests.bench.metrics import ProcessWatch, percentile
from tests.bench.scenarios import Settings, _per_1k, _send_room, log, measure, run_phase

LAZY = json.dumps({"room": {"state": {"lazy_load_members": True}}})


async def sync_once(client: MatrixClient, user: User, conn: Connection | None,
                    since: str | None = None, timeout: int = 0,
                    filter: str | None = None) -> dict[str, Any]:
    query: dict[str, Any] = {"timeout": timeout}
    if since:
        query["since"] = since
    if filter:
        query["filter"] = filter
    resp = await client.pool.request("GET", f"{CLIENT}/sync?{urlencode(query)}", None,
                                     user.headers, conn)
    if resp.status != 200:
        raise MatrixRequestError("sync", resp)
    body: dict[str, Any] = resp.json()
    return body


def _latency_ms(values: list[float]) -> dict[str, float]:
    lat = sorted(values)
    return {"p50": round(percentile(lat, 50) * 1000, 1),
            "p95": round(percentile(lat, 95) * 1000, 1),
            "p99": round(percentile(lat, 99) * 1000, 1),
            "max": round(lat[-1] * 1000, 1) if lat else 0.0}


async def scenario_fanout(client: MatrixClient, watch: ProcessWatch,
                          settings: Settings) -> list[dict[str, Any]]:
    """`--receivers` users long-poll one room; one sender sends `--rate` messages/s.

    Latency: from the send's response to each receiver's /sync returning the message.
    """
    receivers_n = settings.receivers
    room_id, users = await _send_room(client, receivers_n + 1)
    sender, receivers = users[0], users[1:]
    count = max(1, int(settings.rate * settings.duration))
    sent_at: dict[str, float] = {}
    got: dict[str, list[float]] = {}
    duplicates = 0
    stop = asyncio.Event()

    async def receive(user: User) -> None:
        nonlocal duplicates
        conn = client.pool.new_connection()
        body = await sync_once(client, user, conn,
                               filter=json.dumps({"room": {"timeline": {"limit": 1}}}))
        token = body["next_batch"]
        seen: set[str] = set()
        while not stop.is_set():
            body = await sync_once(client, user, conn, token, timeout=30000)
            now = time.perf_counter()
            token = body["next_batch"]
            room = body["rooms"]["join"].get(room_id)
            for event in room["timeline"]["events"] if room else ():
                text = event.get("content", {}).get("body", "")
                if not text.startswith("fanout "):
                    continue
                if text in seen:
                    duplicates += 1
                    continue
                seen.add(text)
                got.setdefault(text, []).append(now)

    log(f"fanout: {receivers_n} receivers start long-polling")
    tasks = [asyncio.create_task(receive(u)) for u in receivers]
    await asyncio.sleep(2)
    before = watch.sample()
    conn = client.pool.new_connection()
    start = time.perf_counter()
    for i in range(count):
        target = start + i / settings.rate
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        text = f"fanout {i}"
        resp = await client.send_message(sender, room_id, text, conn)
        if resp.status != 200:
            raise MatrixRequestError("send", resp)
        sent_at[text] = time.perf_counter()
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline and sum(len(v) for v in got.values()) \
            < count * receivers_n:
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - start
    after = watch.sample()
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    delivered = sum(len(v) for v in got.values())
    latencies = [max(0.0, t - sent_at[text]) for text, times in got.items() for t in times]
    row: dict[str, Any] = {
        "scenario": "fanout", "unit": "deliveries", "concurrency": receivers_n,
        "members": receivers_n + 1, "ops": delivered, "errors": count * receivers_n - delivered,
        "seconds": round(elapsed, 3),
        "rate_per_s": round(delivered / elapsed, 1) if elapsed else 0.0,
        "latency_ms": _latency_ms(latencies), "messages": count,
        "missed": count * receivers_n - delivered, "duplicates": duplicates,
        "client_cpu_s_per_1k": _per_1k(after.client - before.client, delivered),
        "machine_busy_cores": round((after.machine - before.machine) / elapsed, 2),
    }
    if after.server is not None and before.server is not None:
        row["server_cpu_s_per_1k"] = _per_1k(after.server - before.server, delivered)
        row["server_rss_mib"] = round(watch.memory().get("VmRSS", 0) / 1024, 1)
    return [row]


async def _user_in_rooms(client: MatrixClient, rooms: int, events: int
                         ) -> tuple[User, list[str]]:
    """A user who created `rooms` rooms (one other member each) with `events` messages each."""
    user, other = await client.register_many(2, "i")
    room_ids: list[str] = []
    gate = asyncio.Semaphore(8)

    async def make(i: int) -> None:
        async with gate:
            room_id = await client.create_room(user, [other.user_id])
            await client.join(other, room_id)
            for k in range(events):
                sender = user if k % 2 else other
                resp = await client.send_message(sender, room_id, f"room {i} message {k}")
                if resp.status != 200:
                    raise MatrixRequestError("send", resp)
            room_ids.append(room_id)

    log(f"initial-sync: {rooms} rooms x {events} events")
    await asyncio.gather(*(make(i) for i in range(rooms)))
    return user, room_ids


async def scenario_initial_sync(client: MatrixClient, watch: ProcessWatch,
                                settings: Settings) -> list[dict[str, Any]]:
    """Initial sync (full, then lazy-loading members) and an idle incremental sync of a
    user in `--rooms` rooms of `--events-per-room` messages; the idle incremental sync is
    also measured for a user in one room, to show it does not grow with the room count."""
    user, room_ids = await _user_in_rooms(client, settings.rooms, settings.events_per_room)
    small, _ = await _user_in_rooms(client, 1, 2)
    conn = client.pool.new_connection()
    extra = {"rooms": settings.rooms, "events_per_room": settings.events_per_room}
    token = (await sync_once(client, user, conn))["next_batch"]
    small_token = (await sync_once(client, small, conn))["next_batch"]

    def op_for(who: User, since: str | None, flt: str | None,
               check_rooms: int | None) -> Callable[[int], Awaitable[None]]:
        async def op(i: int) -> None:
            body = await sync_once(client, who, conn, since, 0, flt)
            if check_rooms is not None and len(body["rooms"]["join"]) != check_rooms:
                raise OSError(f"sync returned {len(body['rooms']['join'])} joined rooms,"
                              f" expected {check_rooms}")
        return op

    one = Settings(**{**settings.__dict__, "concurrency": 1})
    rows = [
        await measure("initial-sync", "syncs", watch, one, 1,
                      op_for(user, None, None, len(room_ids)), dict(extra)),
        await measure("initial-sync-lazy", "syncs", watch, one, 1,
                      op_for(user, None, LAZY, len(room_ids)), dict(extra)),
        await measure("incremental-idle", "syncs", watch, one, 1,
                      op_for(user, token, None, 0), dict(extra)),
        await measure("incremental-idle", "syncs", watch, one, 1,
                      op_for(small, small_token, None, 0), {"rooms": 1, "events_per_room": 2}),
    ]
    return rows


async def scenario_messages(client: MatrixClient, watch: ProcessWatch,
                            settings: Settings) -> list[dict[str, Any]]:
    """Page back through a room of `--history-events` messages, 100 per page."""
    room_id, users = await _send_room(client, 2)
    total = settings.history_events
    conns = [client.pool.new_connection() for _ in range(16)]
    counter = iter(range(total))

    async def fill(i: int) -> None:
        n = next(counter, None)
        if n is None:
            return
        resp = await client.send_message(users[n % 2], room_id, f"history {n}", conns[i])
        if resp.status != 200:
            raise MatrixRequestError("send", resp)

    log(f"messages: filling the room with {total} events")
    await run_phase(16, fill, requests=total, duration=None, record_latency=False)
    conn = client.pool.new_connection()
    reader = users[0]
    pages: list[float] = []
    seen = 0
    before = watch.sample()
    start = time.perf_counter()
    for _ in range(settings.repeat):
        token: str | None = None
        while True:
            query = {"dir": "b", "limit": 100, **({"from": token} if token else {})}
            t0 = time.perf_counter()
            resp = await client.pool.request(
                "GET", f"{CLIENT}/rooms/{quote(room_id)}/messages?{urlencode(query)}", None,
                reader.headers, conn)
            if resp.status != 200:
                raise MatrixRequestError("messages", resp)
            pages.append(time.perf_counter() - t0)
            body = resp.json()
            seen += len(body["chunk"])
            token = body.get("end")
            if not token or not body["chunk"]:
                break
    elapsed = time.perf_counter() - start
    after = watch.sample()
    row: dict[str, Any] = {
        "scenario": "messages", "unit": "pages", "concurrency": 1,
        "history": total, "ops": len(pages), "errors": 0, "seconds": round(elapsed, 3),
        "rate_per_s": round(len(pages) / elapsed, 1), "latency_ms": _latency_ms(pages),
        "events_read": seen,
        "client_cpu_s_per_1k": _per_1k(after.client - before.client, len(pages)),
        "machine_busy_cores": round((after.machine - before.machine) / elapsed, 2),
    }
    if after.server is not None and before.server is not None:
        row["server_cpu_s_per_1k"] = _per_1k(after.server - before.server, len(pages))
        row["server_rss_mib"] = round(watch.memory().get("VmRSS", 0) / 1024, 1)
    return [row]


SYNC_SCENARIOS: dict[str, Callable[[MatrixClient, ProcessWatch, Settings],
                                   Awaitable[list[dict[str, Any]]]]] = {
    "fanout": scenario_fanout,
    "initial-sync": scenario_initial_sync,
    "messages": scenario_messages,
}
