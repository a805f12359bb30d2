"""Reports people read: ``report.html`` (self-contained, the chart embedded) and
``report.md`` (with ``chart.png`` beside it) in a run's folder, built from its ``run.json``.

They hold the metric table with intervals and signatures, the comparison's p-values, the
inputs that identify the run, and a chart: the scores with their intervals for an
evaluation, the loss curve for a training run."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

CHART = "chart.png"
HTML = "report.html"
MARKDOWN = "report.md"


def score_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per score: system (for a comparison), name, value, interval, signature."""
    rows = []
    for key, score in (document.get("metrics") or {}).items():
        system, _, name = key.rpartition(":") if document.get("paired_p_values") is not None else ("", "", key)
        if isinstance(score, dict):
            rows.append({"system": system, "name": name, "value": score.get("value"),
                         "ci95": score.get("ci95"), "signature": score.get("signature", "")})
        elif isinstance(score, (int, float)) and not isinstance(score, bool):
            rows.append({"system": system, "name": name, "value": score, "ci95": None, "signature": ""})
    return rows


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _interval(ci: list[float] | None) -> str:
    return f"[{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "-"


def _score_chart(rows: list[dict[str, Any]], path: Path, title: str) -> bool:
    """Bars per score (grouped by system for a comparison), with 95% intervals."""
    rows = [r for r in rows if isinstance(r["value"], (int, float)) and r["signature"]]
    if not rows:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["name"] for r in rows))
    systems = list(dict.fromkeys(r["system"] for r in rows))
    width = 0.8 / len(systems)
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(names) * len(systems) + 2), 4), dpi=100)
    for i, system in enumerate(systems):
        mine = {r["name"]: r for r in rows if r["system"] == system}
        present = [name for name in names if name in mine]
        values = [mine[name]["value"] for name in present]
        cis = [mine[name]["ci95"] or [mine[name]["value"]] * 2 for name in present]
        errors = [[v - low for v, (low, _) in zip(values, cis)], [high - v for v, (_, high) in zip(values, cis)]]
        xs = [names.index(name) + (i - (len(systems) - 1) / 2) * width for name in present]
        ax.bar(xs, values, width, yerr=errors, capsize=4, label=system or None)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("score (bars: 95% bootstrap interval)")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    if any(systems):
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _loss_chart(document: dict[str, Any], path: Path) -> bool:
    from .training.plot import loss_curve

    output = ((document.get("adapter") or {}).get("output"))
    log_path = Path(output) / "train-log.jsonl" if output else None
    if log_path is None or not log_path.is_file():
        return False
    log = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    loss_curve(log, path, f"{document['task']}: {output}")
    return True


def _identity(document: dict[str, Any]) -> list[tuple[str, str]]:
    model = document.get("model") or {}
    adapter = document.get("adapter") or {}
    config = document.get("config") or {}
    items = [("run", document["id"]), ("kind", document["kind"]), ("task", document["task"]),
             ("status", document["status"]), ("started", document.get("started", "")),
             ("seconds", _fmt(document.get("seconds"))),
             ("model", str(model.get("spec") or model.get("path") or config.get("model") or "-")),
             ("adapter", str(adapter.get("name") or adapter.get("output") or config.get("adapter") or "-")),
             ("data", ", ".join(f"{k} ({v})" for k, v in (document.get("data") or {}).items()) or "-"),
             ("versions", ", ".join(f"{k} {v}" for k, v in (document.get("versions") or {}).items())),
             ("commit", str(document.get("git_commit") or "-"))]
    if document.get("examples") is not None:
        items.insert(4, ("examples", str(document["examples"])))
    return items


def write(folder: Path) -> Path:
    """Write the reports for the run in ``folder``; returns the HTML report's path."""
    from .runtime.atomic import atomic_file

    document = json.loads((folder / "run.json").read_text())
    rows = score_rows(document)
    chart = folder / CHART
    title = f"{document['kind']} {document['task']}"
    drawn = _loss_chart(document, chart) if document["kind"] == "train" else _score_chart(rows, chart, title)
    if not drawn:
        chart.unlink(missing_ok=True)
    p_values = document.get("paired_p_values") or {}
    with atomic_file(folder / MARKDOWN) as handle:
        handle.write(_markdown(document, rows, p_values, drawn))
    with atomic_file(folder / HTML) as handle:
        handle.write(_html(document, rows, p_values, chart if drawn else None))
    return folder / HTML


def _markdown(document: dict[str, Any], rows: list[dict[str, Any]], p_values: dict[str, float],
              drawn: bool) -> str:
    lines = [f"# {document['kind']} {document['task']} — run {document['id']}", ""]
    lines += [f"- **{k}**: {v}" for k, v in _identity(document)]
    if document.get("error"):
        lines += ["", f"**Error**: {document['error']}"]
    if rows:
        systems = any(r["system"] for r in rows)
        lines += ["", "| " + ("system | " if systems else "") + "score | value | 95% interval |",
                  "|" + ("---|" if systems else "") + "---|---:|---|"]
        lines += ["| " + (f"{r['system']} | " if systems else "") + f"{r['name']} | {_fmt(r['value'])} | "
                  f"{_interval(r['ci95'])} |" for r in rows]
    if p_values:
        lines += ["", "Paired bootstrap p-values (the better system better by chance):", ""]
        lines += [f"- {name}: p = {p:.4f}" for name, p in p_values.items()]
    signatures = list(dict.fromkeys(r["signature"] for r in rows if r["signature"]))
    if signatures:
        lines += ["", "Signatures:", ""] + [f"- `{s}`" for s in signatures]
    if drawn:
        lines += ["", f"![chart]({CHART})"]
    return "\n".join(lines) + "\n"


def _html(document: dict[str, Any], rows: list[dict[str, Any]], p_values: dict[str, float],
          chart: Path | None) -> str:
    e = html.escape
    systems = any(r["system"] for r in rows)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(document['id'])}</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em}"
             "td.n{text-align:right}code{font-size:90%}</style></head><body>",
             f"<h1>{e(document['kind'])} {e(document['task'])}</h1><table>"]
    parts += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _identity(document)]
    parts.append("</table>")
    if document.get("error"):
        parts.append(f"<p><b>Error</b>: {e(document['error'])}</p>")
    if rows:
        parts.append("<h2>Scores</h2><table><tr>" + ("<th>system</th>" if systems else "")
                     + "<th>score</th><th>value</th><th>95% interval</th></tr>")
        parts += ["<tr>" + (f"<td>{e(r['system'])}</td>" if systems else "") + f"<td>{e(r['name'])}</td>"
                  f"<td class='n'>{e(_fmt(r['value']))}</td><td>{e(_interval(r['ci95']))}</td></tr>" for r in rows]
        parts.append("</table>")
    if p_values:
        parts.append("<p>Paired bootstrap p-values (the better system better by chance): "
                     + ", ".join(f"{e(n)} p = {p:.4f}" for n, p in p_values.items()) + "</p>")
    signatures = list(dict.fromkeys(r["signature"] for r in rows if r["signature"]))
    if signatures:
        parts.append("<h2>Signatures</h2><ul>" + "".join(f"<li><code>{e(s)}</code></li>" for s in signatures)
                     + "</ul>")
    if chart is not None:
        data = base64.b64encode(chart.read_bytes()).decode()
        parts.append(f"<h2>Chart</h2><img alt='chart' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
