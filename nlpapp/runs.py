"""Run records: every ``run``, ``train`` and ``eval`` writes a folder under
``$NLPAPP_HOME/runs/`` with what it was given and what it gave — resolved config, library
versions, the git commit, hashes of the data, model and adapter, metrics with their
signatures and intervals, predictions (eval), timings and device.

The record says ``running`` from the start and ``succeeded``, ``failed`` (with the error)
or ``interrupted`` (Ctrl-C, or a training run stopped by SIGTERM/SIGINT after a checkpoint)
at the end, each state written atomically: a crashed run never looks complete."""

from __future__ import annotations

import contextlib
import datetime
import difflib
import json
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from . import config as nlpapp_config
from .errors import NlpappError

RECORD = "run.json"
PREDICTIONS = "predictions.jsonl"
REPORTED_KINDS = ("eval", "train")  # the kinds with scores or a loss curve to show
LATEST = "latest"  # a run reference meaning the newest run
LISTED_CANDIDATES = 5  # an ambiguous reference names this many candidates, then a count
STATUSES = ("running", "succeeded", "failed", "interrupted")


class UnknownRunError(NlpappError, LookupError):
    """A run reference that names no recorded run."""


class AmbiguousRunError(NlpappError, LookupError):
    """A run reference (a prefix or suffix) that names more than one run."""


def runs_dir() -> Path:
    return nlpapp_config.home() / "runs"


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def file_hashes(paths: list[str]) -> dict[str, str]:
    """The start of each file's sha256; a registered dataset's name is kept, marked "not a file"."""
    from .runtime.gguf import sha256_file

    return {p: sha256_file(Path(p))[:16] if Path(p).is_file() else "not a file" for p in paths
            if p != "-"}


@dataclass
class RunRecord:
    kind: str  # run | train | eval
    task: str
    config: dict[str, Any]
    data_files: list[str] = field(default_factory=list)
    # sortable by creation time, microseconds included; the suffix keeps parallel runs apart
    id: str = field(default_factory=lambda: datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f-")
                    + uuid.uuid4().hex[:4])
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # model identity, adapter, device, counts
    unwritable: bool = False
    report: Path | None = None  # report.html, once written

    @property
    def folder(self) -> Path:
        return runs_dir() / self.id

    def write(self, status: str, started: float, error: str | None = None) -> None:
        """Write the record; a cache folder that cannot be written costs a warning, not the run."""
        from . import log
        from .runtime.atomic import atomic_file
        from .runtime.adapters import versions

        if self.unwritable:
            return

        document = {"id": self.id, "kind": self.kind, "task": self.task, "status": status, "error": error,
                    "started": datetime.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
                    "seconds": round(time.time() - started, 3), "config": self.config,
                    "data": file_hashes(self.data_files), "versions": versions(), "git_commit": git_commit(),
                    "cwd": os.getcwd(), "metrics": self.metrics, **self.extra}
        try:
            with atomic_file(self.folder / RECORD) as handle:
                handle.write(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
        except OSError as exc:
            self.unwritable = True
            log.warn(f"cannot write the run record in {self.folder}: {exc.strerror or exc}")

    def save_predictions(self, rows: list[dict[str, Any]]) -> None:
        from .runtime.atomic import atomic_file

        if self.unwritable:
            return

        with atomic_file(self.folder / PREDICTIONS) as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def recording(kind: str, task: str, config: dict[str, Any], data_files: list[str] | None = None
              ) -> Iterator[RunRecord]:
    """Mark the run running, then succeeded, failed or interrupted (re-raising the error).
    An error with a ``run_status`` attribute (``errors.TrainingInterrupted``) names its own
    state; Ctrl-C outside training is ``interrupted`` too."""
    record = RunRecord(kind, task, config, list(data_files or []))
    started = time.time()
    record.write("running", started)
    try:
        yield record
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else getattr(exc, "run_status", "failed")
        record.write(status, started, error=f"{type(exc).__name__}: {exc}")
        raise
    record.write("succeeded", started)
    if kind in REPORTED_KINDS and not record.unwritable:
        record.report = write_report(record.folder)


def write_report(folder: Path) -> Path | None:
    """The run's HTML and Markdown reports; a report that cannot be drawn costs a warning."""
    from . import log, reports

    try:
        return reports.write(folder)
    except Exception as exc:  # the run itself succeeded; say why its report is missing
        log.warn(f"cannot write the report in {folder}: {type(exc).__name__}: {exc}")
        return None


def run_ids() -> list[str]:
    """The ids of the recorded runs, oldest first (ids sort by creation time)."""
    if not runs_dir().is_dir():
        return []
    return sorted(p.name for p in runs_dir().iterdir() if (p / RECORD).is_file())


def resolve(ref: str) -> str:
    """The id of the run ``ref`` names: a whole id, ``latest``, or, as git takes commit
    hashes, any prefix or suffix of an id that only one run has."""
    ids = run_ids()
    if ref in ids:
        return ref
    if not ids:
        raise UnknownRunError(f"unknown run {ref!r}; no runs are recorded in {runs_dir()} yet")
    if ref == LATEST:
        return ids[-1]
    matches = [i for i in ids if i.startswith(ref) or i.endswith(ref)] if ref else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        shown = ", ".join(matches[:LISTED_CANDIDATES])
        more = f" and {len(matches) - LISTED_CANDIDATES} more" if len(matches) > LISTED_CANDIDATES else ""
        raise AmbiguousRunError(f"run {ref!r} is ambiguous: it matches {len(matches)} runs ({shown}{more}); "
                                "give more of the id")
    close = difflib.get_close_matches(ref, ids, n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else "'nlpapp runs list' shows the runs"
    raise UnknownRunError(f"unknown run {ref!r}; {hint}")


def load(ref: str) -> dict[str, Any]:
    """The record of the run ``ref`` names (see ``resolve``)."""
    return json.loads((runs_dir() / resolve(ref) / RECORD).read_text())


def remove(run_id: str) -> Path:
    """Delete a run's folder (record, predictions, reports); returns the folder."""
    folder = runs_dir() / resolve(run_id)
    shutil.rmtree(folder)
    return folder


def all_runs() -> list[dict[str, Any]]:
    if not runs_dir().is_dir():
        return []
    found = []
    for folder in sorted(runs_dir().iterdir()):
        with contextlib.suppress(OSError, ValueError):
            found.append(json.loads((folder / RECORD).read_text()))
    return found


def used(document: dict[str, Any]) -> dict[str, Any]:
    """The model, adapter and data a run used, from where each kind records them: ``run``
    and ``eval`` a model identity (spec, path) and the adapter's name, ``train`` its base model
    and the adapter it wrote; the command line's config otherwise (a comparison)."""
    model, adapter = document.get("model") or {}, document.get("adapter") or {}
    config = document.get("config") or {}
    return {"model": model.get("spec") or model.get("path") or config.get("model"),
            "adapter": adapter.get("name") or adapter.get("output") or config.get("adapter"),
            "data": list(document.get("data") or {})}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """What differs between two runs: inputs (config, data, model, versions, commit) and
    scores, with a warning where a score's signature differs (not comparable)."""
    inputs = {}
    for section in ("task", "config", "data", "model", "adapter", "versions", "git_commit", "device"):
        flat_a, flat_b = _flatten(a.get(section), section), _flatten(b.get(section), section)
        for key in sorted(set(flat_a) | set(flat_b)):
            if flat_a.get(key) != flat_b.get(key):
                inputs[key] = [flat_a.get(key), flat_b.get(key)]
    scores = {}
    metrics_a, metrics_b = a.get("metrics") or {}, b.get("metrics") or {}
    for name in sorted(set(metrics_a) | set(metrics_b)):
        sa, sb = metrics_a.get(name), metrics_b.get(name)
        if not isinstance(sa, dict) or not isinstance(sb, dict):
            scores[name] = {"a": sa, "b": sb}
            continue
        entry = {"a": sa.get("value"), "b": sb.get("value")}
        if sa.get("signature") != sb.get("signature"):
            entry["not_comparable"] = f"signatures differ: {sa.get('signature')} vs {sb.get('signature')}"
        else:
            entry["difference"] = sb["value"] - sa["value"]
        scores[name] = entry
    if not inputs and any("difference" in s and s["difference"] for s in scores.values()):
        inputs["note"] = "no recorded input differs; the difference comes from something not recorded (hardware, threads)"
    return {"a": a["id"], "b": b["id"], "inputs": inputs, "scores": scores}


def model_identity(store: Any, spec: str | None, adapter: str | None) -> dict[str, Any]:
    """What model (and adapter) a run used: the spec, the resolved path, and a hash of the
    folder's config and weight files (names, sizes and config text: cheap, and different
    for different weights in practice); for an adapter, its base fingerprint and data hash."""
    import hashlib

    identity: dict[str, Any] = {"model": {"spec": spec}}
    with contextlib.suppress(Exception):  # identity is best effort; the run itself reports errors
        resolved = store.resolve(spec) if spec else None
        if resolved is not None:
            folder = Path(resolved.path)
            digest = hashlib.sha256()
            if folder.is_dir():
                for path in sorted(folder.iterdir()):
                    if path.suffix in (".json", ".safetensors", ".bin", ".model", ".txt"):
                        digest.update(f"{path.name}:{path.stat().st_size}".encode())
                        if path.name == "config.json":
                            digest.update(path.read_bytes())
            identity["model"] = {"spec": spec, "path": resolved.path, "hash": digest.hexdigest()[:16]}
    if adapter:
        from .runtime import adapters

        manifest = adapters.read_manifest(adapters.resolve(adapter))
        identity["adapter"] = {"name": adapter, "base_fingerprint": manifest["base_model"]["fingerprint"],
                               "data_sha256": manifest["data"]["sha256"], "steps": manifest["metrics"]["steps"]}
    return identity
