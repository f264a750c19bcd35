"""Media throughput: `python -m tests.bench.media_bench [--postgres] [--sizes 1,50]`.

Starts the real server (tests/integration/server_process.py) on loopback, then for each
file size uploads (`POST /_matrix/media/v3/upload`, and tus in 8 MiB chunks) and downloads
(`GET /_matrix/client/v1/media/download`) files one after another, streaming bodies from
and to disk. Prints MB/s, server CPU seconds per GB and the server's peak RSS (VmHWM)
after each phase: since media streams, the peak must not grow with the file size.
Each upload changes the file's first bytes, so deduplication does not short-cut it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import tempfile
import time
from typing import Any

from tests.bench.metrics import cpu_seconds, memory_kib
from tests.integration.server_process import ServerProcess

MB = 1024 * 1024
TUS_CHUNK = 8 * MB


def _conn(server: ServerProcess) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=300, blocksize=MB)


def _stamp(path: str, n: int) -> None:
    with open(path, "r+b") as f:
        f.write(n.to_bytes(8, "big"))


def upload_plain(server: ServerProcess, token: str, path: str, size: int) -> str:
    conn = _conn(server)
    with open(path, "rb") as f:
        conn.request("POST", "/_matrix/media/v3/upload?filename=bench.bin", body=f,
                     headers={"Authorization": f"Bearer {token}", "Content-Length": str(size),
                              "Content-Type": "application/octet-stream"})
        resp = conn.getresponse()
        body = resp.read()
    conn.close()
    assert resp.status == 200, body
    return str(json.loads(body)["content_uri"])


def upload_tus(server: ServerProcess, token: str, path: str, size: int) -> str:
    base = "/_matrix/client/unstable/io.axon/upload/resumable"
    auth = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    conn = _conn(server)
    conn.request("POST", base, headers={**auth, "Upload-Length": str(size)})
    resp = conn.getresponse()
    resp.read()
    location = resp.getheader("Location")
    assert resp.status == 201 and location, resp.status
    uri = None
    with open(path, "rb") as f:
        offset = 0
        while offset < size:
            chunk = f.read(TUS_CHUNK)
            conn.request("PATCH", location, body=chunk, headers={
                **auth, "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream"})
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 204, resp.status
            offset += len(chunk)
            uri = resp.getheader("Io-Axon-Content-Uri")
    conn.close()
    assert uri is not None
    return uri


def download(server: ServerProcess, token: str, uri: str) -> int:
    conn = _conn(server)
    conn.request("GET", "/_matrix/client/v1/media/download/" + uri.removeprefix("mxc://"),
                 headers={"Authorization": f"Bearer {token}"})
    resp = conn.getresponse()
    total = 0
    while chunk := resp.read(MB):
        total += len(chunk)
    conn.close()
    assert resp.status == 200, resp.status
    return total


def run(engine: str, sizes_mb: list[int], total_mb: int) -> list[dict[str, Any]]:
    server = ServerProcess(engine, config_overrides={"max_upload_size": "200M"})
    rows: list[dict[str, Any]] = []
    try:
        server.start()
        server.register_user("bench", "bench password")
        token = server.login("bench", "bench password")
        assert server.proc is not None
        pid = server.proc.pid
        for size_mb in sizes_mb:
            size = size_mb * MB
            count = max(2, total_mb // size_mb)
            with tempfile.NamedTemporaryFile(delete=False) as f:
                for _ in range(size_mb):
                    f.write(os.urandom(MB))
                path = f.name
            try:
                uris: list[str] = []
                for phase in ("upload", "tus upload", "download"):
                    cpu0, t0 = cpu_seconds(pid), time.monotonic()
                    for i in range(count):
                        if phase == "download":
                            assert download(server, token, uris[i]) == size
                            continue
                        _stamp(path, len(uris) + 1)
                        fn = upload_plain if phase == "upload" else upload_tus
                        uris.append(fn(server, token, path, size))
                    wall = time.monotonic() - t0
                    cpu = cpu_seconds(pid) - cpu0
                    gb = count * size / 1024**3
                    rows.append({"size_mb": size_mb, "phase": phase, "files": count,
                                 "mb_per_s": round(count * size_mb / wall, 1),
                                 "cpu_s_per_gb": round(cpu / gb, 2),
                                 "peak_rss_mib": round(memory_kib(pid)["VmHWM"] / 1024, 1)})
                    print(json.dumps(rows[-1]), flush=True)
            finally:
                os.unlink(path)
    finally:
        server.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true", help="run on PostgreSQL "
                        "(AXON_TEST_PG_DSN) instead of SQLite")
    parser.add_argument("--sizes", default="1,50", help="file sizes in MB (default 1,50)")
    parser.add_argument("--total", type=int, default=200,
                        help="MB moved per phase and size (default 200)")
    args = parser.parse_args()
    rows = run("psycopg2" if args.postgres else "sqlite3",
               [int(s) for s in args.sizes.split(",")], args.total)
    print("| size | phase | files | MB/s | server CPU-s / GB | peak RSS |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size_mb']} MB | {r['phase']} | {r['files']} | {r['mb_per_s']} | "
              f"{r['cpu_s_per_gb']} | {r['peak_rss_mib']} MiB |")


if __name__ == "__main__":
    main()
