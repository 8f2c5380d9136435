"""Benchmark the ingest gateway: accepted webhooks per second and acceptance latency.

    uv run python bench/gateway_ingest.py [--requests 6000] [--concurrency 32] [--workers 2]
        [--kind postmark|stripe|generic] [--backends sqlite,postgres] [--postgres-url URL]

For each backend it creates a fresh migrated + seeded database (SQLite file in a temp dir; a
uniquely named Postgres database from TEST_DATABASE_URL / --postgres-url, dropped afterwards),
starts the gateway with uvicorn (`--workers` processes, uvloop + httptools), a minimal local Event
API sink for the outbox relay, and drives `--requests` real-shaped, authenticated webhooks over
`--concurrency` keep-alive connections with a lean raw-socket HTTP/1.1 client (so the load
generator eats as little of the 2 cores as possible). "Accepted" means a 200 answer, which the
gateway sends only after the stored record and its outbox row are committed. Latency is measured
per request on the client side (send -> full response).

CPU per request is read from /proc for the gateway's processes, the Postgres backends serving the
bench database and the bench process itself (load generator + sink); their sum gives the capacity
two idle cores would have (`cpu_bound_capacity_per_s_on_2_cores`), a figure that holds whatever
else the shared machine is running, while accepted/s and latency depend on it (see
`load_average_1m`).

After the run it waits until the relay has published every outbox row and reports how many were
published. Request logging is at WARNING (the per-request log line is the service default at INFO).
Prints one JSON object per backend; the last line is a summary. A benchmark, not a test.
Target (2 cores, Postgres): >= 1,500 accepted webhooks/s, p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench_support import free_port

PM_USER, PM_PASSWORD = "bench", "bench-password-0123456789"
STRIPE_SECRET = "whsec_bench_0123456789abcdef"
GENERIC_SECRET = "bench-generic-secret-0123456789"


# ---------------------------------------------------------------------------------- payloads


def build_requests(kind: str, count: int, port: int) -> list[bytes]:
    """Pre-encoded HTTP/1.1 requests (keep-alive), so the client spends no time building them."""
    run = uuid.uuid4().hex[:8]
    out: list[bytes] = []
    if kind == "stripe":
        import stripe

    for n in range(count):
        headers = {"Host": f"127.0.0.1:{port}", "Content-Type": "application/json"}
        if kind == "healthz":
            # The floor: the same HTTP stack (uvicorn, FastAPI, service-kit middleware), no work.
            out.append(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            continue
        if kind == "postmark":
            sender = (
                ["ada@example.com", "grace@example.com", "linus@example.com"][n % 3]
                if n % 4
                else f"bench-{n % 200}@example.org"
            )
            message_id = f"bench-{run}-{n}"
            body = json.dumps(
                {
                    "MessageID": message_id,
                    "From": sender,
                    "FromFull": {"Email": sender, "Name": "Bench Sender", "MailboxHash": ""},
                    "To": "support@inbound.postmarkapp.com",
                    "Subject": f"Order question {n}",
                    "Date": "Thu, 5 Nov 2026 09:12:01 +0000",
                    "TextBody": "Hello, where is my order? " * 8,
                    "HtmlBody": "<p>Hello, where is my order?</p>",
                    "Headers": [{"Name": "Message-ID", "Value": f"<{message_id}@example.org>"}],
                }
            ).encode()
            path = "/webhooks/postmark/inbound"
            token = base64.b64encode(f"{PM_USER}:{PM_PASSWORD}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        elif kind == "stripe":
            event = {
                "id": f"evt_bench_{run}_{n}",
                "object": "event",
                "type": "charge.dispute.created",
                "created": int(time.time()),
                "data": {
                    "object": {
                        "id": f"dp_{run}_{n}",
                        "object": "dispute",
                        "amount": 1999,
                        "charge": f"ch_seed_{1001 + n % 10}",
                        "currency": "usd",
                        "reason": "fraudulent",
                    }
                },
            }
            text = json.dumps(event)
            body = text.encode()
            path = "/webhooks/stripe"
            headers["Stripe-Signature"] = stripe.WebhookSignature.generate_signature_header(
                text, STRIPE_SECRET
            )
        else:
            import hashlib
            import hmac

            body = json.dumps(
                {"ticket": {"id": f"tkt_bench_{run}_{n}", "customer": "cust_00" + str(1 + n % 5)}}
            ).encode()
            path = "/webhooks/generic/helpdesk"
            digest = hmac.new(GENERIC_SECRET.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Nerve-Signature"] = f"sha256={digest}"
        headers["Content-Length"] = str(len(body))
        head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        out.append(head.encode() + b"\r\n" + body)
    return out


# ----------------------------------------------------------------------------- load generator


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:].strip())
            break
    if length:
        await reader.readexactly(length)
    return status


async def drive(port: int, requests: list[bytes], concurrency: int) -> dict[str, Any]:
    queue = iter(range(len(requests)))
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for index in queue:
                started = time.perf_counter()
                writer.write(requests[index])
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2)

    accepted = statuses.get(200, 0)
    return {
        "accepted": accepted,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "seconds": round(elapsed, 3),
        "accepted_per_s": round(accepted / elapsed, 1),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
    }


# ------------------------------------------------------------------------------ event sink


async def start_sink(port: int) -> tuple[asyncio.AbstractServer, dict[str, int]]:
    """A minimal Event API: answers every POST with 200 and counts the events."""
    counts = {"requests": 0, "events": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:].strip())
                body = await reader.readexactly(length) if length else b""
                counts["requests"] += 1
                counts["events"] += body.count(b'"name"')
                reply = b'{"ids":[],"status":200}'
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                    + str(len(reply)).encode()
                    + b"\r\n\r\n"
                    + reply
                )
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    handlers: set[asyncio.Task[None]] = set()
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    original_close = server.close

    def close() -> None:
        # Also end the open keep-alive connections (asyncio.run would cancel them noisily).
        original_close()
        for task in handlers:
            task.cancel()

    server.close = close  # type: ignore[method-assign]
    return server, counts


# ------------------------------------------------------------------------------ databases


def prepare_database(backend: str, workdir: Path, postgres_url: str | None) -> tuple[str, Any]:
    import nerve_migrations

    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
        cleanup = None
    else:
        if not postgres_url:
            raise SystemExit("postgres backend needs --postgres-url or TEST_DATABASE_URL")
        from service_kit.testing import run_sync
        from sqlalchemy.engine import make_url

        admin = make_url(postgres_url).set(drivername="postgresql")
        admin_dsn = admin.render_as_string(hide_password=False)
        name = f"nerve_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"

        async def admin_execute(statement: str) -> None:
            import asyncpg

            connection = await asyncpg.connect(admin_dsn, timeout=10)
            try:
                await connection.execute(statement)
            finally:
                await connection.close()

        run_sync(lambda: admin_execute(f'CREATE DATABASE "{name}"'))
        url = (
            make_url(postgres_url)
            .set(drivername="postgresql+asyncpg", database=name)
            .render_as_string(hide_password=False)
        )

        def cleanup() -> None:
            run_sync(lambda: admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    nerve_migrations.upgrade(url)
    nerve_migrations.seed(url)
    return url, cleanup


async def count_outbox(url: str) -> dict[str, int]:
    from service_kit.db import Database
    from service_kit.models import OutboxEvent
    from sqlalchemy import func, select

    db = Database(url)
    try:
        async with db.session() as session:
            rows = (
                await session.execute(
                    select(OutboxEvent.status, func.count()).group_by(OutboxEvent.status)
                )
            ).all()
    finally:
        await db.dispose()
    return {status: int(n) for status, n in rows}


# ------------------------------------------------------------------------------------ runner


def process_tree_cpu_seconds(root: int) -> float:
    """user + system CPU seconds of `root` and its direct children (the uvicorn workers), from
    /proc: the gateway's own CPU cost, whatever else the machine is running."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if pid == root or ppid == root:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def pids_cpu_seconds(pids: list[int]) -> dict[int, float]:
    """user + system CPU seconds of each live process in `pids`."""
    ticks = os.sysconf("SC_CLK_TCK")
    seconds: dict[int, float] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return seconds


async def postgres_backend_pids(url: str) -> list[int]:
    """The server processes serving the bench database (the gateway's connections): their CPU
    is the database's share of a request. Listed before and after the run (a connection opened
    meanwhile counts in full); shared background processes (WAL writer, checkpointer) and
    connections that closed during the run are not included."""
    import asyncpg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            parsed.database,
        )
    finally:
        await connection.close()
    return [row["pid"] for row in rows]


def gateway_env(url: str, sink_port: int, args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "ENVIRONMENT": "test",
            "DATABASE_URL": url,
            "INNGEST_DEV": "1",
            "INNGEST_BASE_URL": f"http://127.0.0.1:{sink_port}",
            "POSTMARK_INBOUND_USERNAME": PM_USER,
            "POSTMARK_INBOUND_PASSWORD": PM_PASSWORD,
            "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
            "GENERIC_SOURCES": json.dumps(
                {
                    "helpdesk": {
                        "secret": GENERIC_SECRET,
                        "event": "ticket/resolved",
                        "id_path": "ticket.id",
                        "fields": {"ticket_id": "ticket.id", "customer_id": "ticket.customer"},
                        "constants": {"resolved_by": "helpdesk"},
                    }
                }
            ),
            "RATE_LIMIT_REQUESTS": "1000000",
            "LOG_LEVEL": "WARNING",
            "REDIS_URL": args.redis_url or "",
        }
    )
    env.pop("PORT", None)
    return env


async def wait_ready(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            status = await _read_response(reader)
            writer.close()
            if status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit("gateway did not become ready")


async def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="nerve-bench-") as tmp:
        url, cleanup = prepare_database(backend, Path(tmp), args.postgres_url)
        sink_port, gateway_port = free_port(), free_port()
        workers = args.sqlite_workers if backend == "sqlite" else args.workers
        sink, sink_counts = await start_sink(sink_port)
        process = subprocess.Popen(  # noqa: ASYNC220 - started once, before measuring
            [
                sys.executable,
                "-m",
                "uvicorn",
                "ingest_gateway.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(gateway_port),
                "--workers",
                str(workers),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env=gateway_env(url, sink_port, args),
        )
        try:
            await wait_ready(gateway_port)
            warmup = build_requests(args.kind, args.warmup, gateway_port)
            await drive(gateway_port, warmup, args.concurrency)
            requests = build_requests(args.kind, args.requests, gateway_port)
            db_pids = await postgres_backend_pids(url) if backend == "postgres" else []
            cpu_before = process_tree_cpu_seconds(process.pid)
            db_cpu_before = pids_cpu_seconds(db_pids)
            client_cpu_before = time.process_time()
            result = await drive(gateway_port, requests, args.concurrency)
            client_cpu = time.process_time() - client_cpu_before
            cpu = process_tree_cpu_seconds(process.pid) - cpu_before
            db_pids_after = await postgres_backend_pids(url) if backend == "postgres" else []
            db_cpu = sum(
                seconds - db_cpu_before.get(pid, 0.0)
                for pid, seconds in pids_cpu_seconds(db_pids + db_pids_after).items()
            )
            per_request = {
                "gateway": cpu / args.requests * 1000,
                # the bench process: load generator plus the (tiny) Event API sink
                "client": client_cpu / args.requests * 1000,
                "postgres": db_cpu / args.requests * 1000,
            }
            for name, value in per_request.items():
                result[f"{name}_cpu_ms_per_request"] = round(value, 3)
            total = sum(per_request.values())
            result["total_cpu_ms_per_request"] = round(total, 3)
            # What 2 idle cores could sustain at this CPU cost: the capacity the run measured,
            # independent of what else the machine was doing meanwhile.
            result["cpu_bound_capacity_per_s_on_2_cores"] = round(2000 / total, 1)
            result["load_average_1m"] = os.getloadavg()[0]
            expected_events = 0 if args.kind == "healthz" else args.requests + args.warmup
            deadline = time.monotonic() + 60
            outbox: dict[str, int] = {}
            while time.monotonic() < deadline:
                outbox = await count_outbox(url)
                if outbox.get("published", 0) >= expected_events:
                    break
                await asyncio.sleep(0.5)
        finally:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
            if process.poll() is None:
                process.kill()
            sink.close()
            if cleanup is not None:
                cleanup()
    return {
        "backend": backend,
        "kind": args.kind,
        "workers": workers,
        "concurrency": args.concurrency,
        "requests": args.requests,
        **result,
        "outbox": outbox,
        "events_received_by_sink": sink_counts["events"],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers on Postgres")
    parser.add_argument(
        "--sqlite-workers",
        type=int,
        default=1,
        help="uvicorn workers on SQLite (one writer at a time: more processes only contend)",
    )
    parser.add_argument(
        "--kind", choices=["postmark", "stripe", "generic", "healthz"], default="postmark"
    )
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("TEST_DATABASE_URL")
        or "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
    )
    parser.add_argument("--redis-url", default=None, help="rate limiter in Redis (default: off)")
    args = parser.parse_args()
    results = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        result = await run_backend(backend, args)
        results.append(result)
        print(json.dumps(result), flush=True)
    summary = {
        "summary": "gateway_ingest",
        "kind": args.kind,
        "workers": args.workers,
        "concurrency": args.concurrency,
        **{f"{r['backend']}_accepted_per_s": r["accepted_per_s"] for r in results},
        **{f"{r['backend']}_p50_ms": r["p50_ms"] for r in results},
        **{f"{r['backend']}_p99_ms": r["p99_ms"] for r in results},
        "target": ">= 1500/s and p99 < 50 ms on Postgres (2 cores)",
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
