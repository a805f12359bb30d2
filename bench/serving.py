"""W9: nlpapp serve under concurrent load.

    python bench/serving.py [--quick] [--only sentiment,generation,adapters,transformers]

For each workload a server is started (``nlpapp serve``, its own process, loopback), then
the same requests are sent by 1, 8 and 32 concurrent clients, the levels interleaved over
rounds; each row gives requests per second, p50 and p99 latency, and the throughput ratio to
one client (the same requests sent one at a time). Workloads:

- sentiment: ``POST /v1/tasks/text-classification``, one Reuters sentence per request, minilm;
- generation: ``POST /v1/chat/completions``, greedy, smollm2;
- continuous: the same through ``nlpapp serve --continuous-batching`` (no repetition penalty);
- adapters: generation through two LoRA adapters on one smollm2, requests alternating between
  them, against the same requests all to one adapter;
- transformers: ``transformers serve`` on the same converted smollm2 folder and requests, as it
  is and with ``--continuous-batching``.

Generation rows also give generated tokens per second (from each answer's ``usage``): engines
stop at different lengths (nlpapp's chat defaults to repetition penalty 1.2).

Writes bench/results/<date>-W9[-quick].json and prints a table."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).parent
DATA = HERE.parent.parent / "shared" / "data"
LEVELS = (1, 8, 32)
ALL = ("sentiment", "generation", "continuous", "adapters", "transformers")


def sentences(n: int) -> list[str]:
    """Reuters sentences (the first of each body, then the second, ...) from the shared data,
    or made ones where it is absent; 40-200 characters each."""
    import pysbd

    found: list[str] = []
    bodies = []
    for split in ("train", "dev"):
        path = DATA / "reuters" / f"{split}.jsonl"
        if path.exists():
            bodies += [json.loads(line)["body"] for line in path.read_text().splitlines() if line.strip()]
    splitter = pysbd.Segmenter(language="en", clean=False)
    for body in bodies:
        found += [s.strip() for s in splitter.segment(body) if 40 <= len(s.strip()) <= 200][:3]
        if len(found) >= n:
            break
    while len(found) < n:
        found.append(f"Shares of company {len(found)} rose after record quarterly profit.")
    return found[:n]


class Server:
    """``nlpapp serve`` (or another command printing nothing we need) on a free port."""

    def __init__(self, args: list[str], ready_path: str = "/ready", port: int | None = None):
        self.port = port
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        if port is None:  # nlpapp serve --port 0 --json says where it listens
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"server did not start: {self.process.stderr.read()[-2000:]}")
            self.port = json.loads(line)["port"]
        self.url = f"http://127.0.0.1:{self.port}"
        self._wait(ready_path)

    def _wait(self, path: str, seconds: float = 600) -> None:
        import httpx

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.process.stderr.read()[-2000:]}")
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError("server not ready in time")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def _load(url: str, bodies: list[tuple[str, dict]], concurrency: int) -> dict[str, Any]:
    """Send every (path, body) with ``concurrency`` clients; latencies in seconds."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    generated: list[int] = []
    queue = list(enumerate(bodies))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        async def worker() -> None:
            while queue:
                _, (path, body) = queue.pop(0)
                started = time.perf_counter()
                response = await client.post(path, json=body)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    errors.append(f"{response.status_code}: {response.text[:200]}")
                elif path.endswith("/completions"):  # engines stop at different lengths: count what each made
                    usage = response.json().get("usage") or {}
                    generated.append(usage.get("completion_tokens", 0))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    latencies.sort()
    return {"requests": len(bodies), "seconds": seconds, "rps": len(bodies) / seconds,
            "generated_tokens_per_s": sum(generated) / seconds if generated else None,
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
            "errors": len(errors), "first_error": errors[0] if errors else None}


def measure(url: str, make: Callable[[int], list[tuple[str, dict]]], rounds: int, counts: dict[int, int]
            ) -> dict[int, dict[str, Any]]:
    """Every level in each round (1, 8, 32, 1, 8, 32, ...), after one warm-up; per level the
    round with the median throughput."""
    asyncio.run(_load(url, make(4), 4))  # warm-up: first-call costs out of the figures
    runs: dict[int, list[dict[str, Any]]] = {level: [] for level in LEVELS}
    for _ in range(rounds):
        for level in LEVELS:
            runs[level].append(asyncio.run(_load(url, make(counts[level]), level)))
    return {level: sorted(rs, key=lambda r: r["rps"])[len(rs) // 2] for level, rs in runs.items()}


def rows_for(workload: str, results: dict[int, dict[str, Any]], target: float | None) -> list[dict[str, Any]]:
    base = results[1]["rps"]
    rows = []
    for level, r in results.items():
        speedup = r["rps"] / base
        row = {"workload": "W9", "case": workload, "clients": level, **{k: round(v, 4) if isinstance(v, float) else v
                                                                          for k, v in r.items()},
               "throughput_vs_sequential": round(speedup, 3), "p99_over_p50": round(r["p99_ms"] / r["p50_ms"], 3)}
        if level == 32 and target is not None:
            row["target"] = f"throughput >= {target}x sequential, p99 <= 2x p50"
            row["met"] = speedup >= target and r["p99_ms"] <= 2 * r["p50_ms"]
        rows.append(row)
        tokens = f"  {r['generated_tokens_per_s']:6.1f} tok/s" if r["generated_tokens_per_s"] else ""
        print(f"W9 {workload:52} clients {level:2}  {r['rps']:8.2f} req/s{tokens}  p50 {r['p50_ms']:8.1f} ms  "
              f"p99 {r['p99_ms']:8.1f} ms  x{speedup:5.2f}  errors {r['errors']}", flush=True)
    return rows


def library_ceiling(texts: list[str], served_rps: float, rounds: int) -> list[dict[str, Any]]:
    """The same texts through the library in this process (``Runtime.run``, no HTTP) at batch
    32 and at batch 1: the most the model itself gives on this machine, and how much batching
    can give at all, beside the server's throughput at 32 clients."""
    from nlpapp.api import Runtime

    runtime = Runtime.create()
    runtime.run("text-classification", texts[:32], batch_size=32)  # warm-up
    rows = []
    for batch in (32, 1):
        rates = []
        for _ in range(rounds):
            started = time.perf_counter()
            runtime.run("text-classification", texts, batch_size=batch)
            rates.append(len(texts) / (time.perf_counter() - started))
        rate = statistics.median(rates)
        print(f"W9 sentiment (minilm) through the library, batch {batch}: {rate:.1f} texts/s; the server at 32 "
              f"clients gives {served_rps / rate:.2f} of it", flush=True)
        rows.append({"workload": "W9", "case": f"sentiment (minilm): Runtime.run, batch {batch}, in-process (no HTTP)",
                     "texts_per_s": round(rate, 2), "server_32_clients_over_library": round(served_rps / rate, 3)})
    return rows


def nlpapp_serve(*args: str) -> Server:
    return Server([sys.executable, "-c", "from nlpapp.cli.main import main; raise SystemExit(main())", "serve",
                   "--port", "0", "--json", *args])


def chat(model: str, texts: list[str], tokens: int, adapters: list[str | None] | None = None
         ) -> list[tuple[str, dict]]:
    bodies = []
    for n, text in enumerate(texts):
        body = {"model": model, "max_tokens": tokens, "temperature": 0,
                "messages": [{"role": "user", "content": f"Summarize in one line: {text}"}]}
        if adapters:
            body["model"] = f"{model}:{adapters[n % len(adapters)]}"
        bodies.append(("/v1/chat/completions", body))
    return bodies


def train_adapters(work: Path, names: list[str]) -> list[tuple[str, Path]]:
    """Two tiny LoRA adapters on smollm2 (a few steps each): their cost at inference is what is measured."""
    data = work / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": s, "response": s.split()[0]}) + "\n" for s in sentences(16)))
    made = []
    for seed, name in enumerate(names):
        out = work / name
        if not out.exists():
            subprocess.run([sys.executable, "-c", "from nlpapp.cli.main import main; raise SystemExit(main())",
                            "train", "text-generation", "--model", "smollm2", "--data", str(data), "--output", str(out),
                            "--max-steps", "2", "--seed", str(seed), "--holdout", "0"], check=True,
                           capture_output=True, text=True)
        made.append((name, out))
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests and rounds")
    parser.add_argument("--only", default=",".join(ALL))
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    chosen = set(args.only.split(","))
    rounds = args.rounds or (1 if args.quick else 3)
    tokens = 16 if args.quick else 32
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="nlpapp-w9-"))

    if "sentiment" in chosen:
        texts = sentences(512)
        counts = {1: 64, 8: 256, 32: 512} if not args.quick else {1: 32, 8: 128, 32: 256}
        server = nlpapp_serve("--model", "minilm", "--batch-size", "32", "--max-requests", "1024")
        try:
            make = lambda n: [("/v1/tasks/text-classification", {"inputs": [t]}) for t in texts[:n]]  # noqa: E731
            served = measure(server.url, make, rounds, counts)
            rows += rows_for("sentiment (minilm), 1 text per request", served, 4.0)
        finally:
            server.stop()
        rows += library_ceiling(texts[:counts[32]], served[32]["rps"], rounds)

    gen_counts = {1: 8, 8: 32, 32: 64} if not args.quick else {1: 4, 8: 16, 32: 32}
    if "generation" in chosen:
        texts = sentences(64)
        server = nlpapp_serve("--model", "smollm2", "--batch-size", "32")
        try:
            make = lambda n: chat("smollm2", texts[:n], tokens)  # noqa: E731
            rows += rows_for(f"chat (smollm2), {tokens} new tokens", measure(server.url, make, rounds, gen_counts), 3.0)
        finally:
            server.stop()

    if "continuous" in chosen:
        texts = sentences(64)
        server = nlpapp_serve("--model", "smollm2", "--batch-size", "32", "--continuous-batching")
        try:
            make = lambda n: chat("smollm2", texts[:n], tokens)  # noqa: E731
            rows += rows_for(f"chat (smollm2), --continuous-batching, {tokens} new tokens",
                             measure(server.url, make, rounds, gen_counts), None)
        finally:
            server.stop()

    if "adapters" in chosen:
        texts = sentences(64)
        adapters = train_adapters(work, ["a1", "a2"])
        flags = [f for name, path in adapters for f in ("--adapter", f"{name}={path}")]
        server = nlpapp_serve(*flags, "--batch-size", "32")
        try:
            for label, names in (("one adapter", ["a1"]), ("two adapters, alternating", ["a1", "a2"])):
                make = lambda n, names=names: chat("smollm2", texts[:n], tokens, names)  # noqa: E731
                rows += rows_for(f"chat (smollm2), {label}", measure(server.url, make, rounds, gen_counts), None)
        finally:
            server.stop()

    if "transformers" in chosen:
        from nlpapp.api import Runtime

        folder = Runtime.create().models.resolve("smollm2").path
        texts = sentences(64)
        for flags in ([], ["--continuous-batching"]):
            label = "transformers serve" + (" --continuous-batching" if flags else "")
            try:
                port = 18000 + os.getpid() % 1000
                server = Server(["transformers", "serve", folder, "--port", str(port), *flags], ready_path="/health",
                                port=port)
            except (RuntimeError, FileNotFoundError) as exc:
                notes.append(f"{label} did not start here: {str(exc)[-300:]}")
                print(f"W9 {label} did not start:", str(exc)[-300:], flush=True)
                continue
            try:
                make = lambda n: chat(folder, texts[:n], tokens)  # noqa: E731
                rows += rows_for(f"{label}, chat (smollm2), {tokens} new tokens",
                                 measure(server.url, make, rounds, gen_counts), None)
            except Exception as exc:  # noqa: BLE001 - a peer that fails under load is a result too
                notes.append(f"{label} failed under load: {str(exc)[-300:]}")
                print(f"W9 {label} failed under load:", str(exc)[-300:], flush=True)
            finally:
                server.stop()

    sys.path.insert(0, str(HERE))
    from harness import environment

    stamp = datetime.date.today().isoformat()
    suffix = ("-quick" if args.quick else "") + ("" if chosen == set(ALL) else "-" + "-".join(sorted(chosen)))
    out = HERE / "results" / f"{stamp}-W9{suffix}.json"
    out.write_text(json.dumps({"environment": environment(), "rounds": rounds, "rows": rows, "notes": notes},
                              indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
