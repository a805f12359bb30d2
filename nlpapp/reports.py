"""Reports people read: ``report.html`` (self-contained, the chart embedded) and
``report.md`` (with ``chart.png`` beside it) in a run's folder, built from its ``run.json``.

They hold the metric table with intervals and signatures, the comparison's p-values, the
inputs that identify the run, and a chart: the scores with their intervals for an
evaluation, the loss curve for a training run. An evaluation's report also shows its first
predictions beside their references, and the confusion matrix of a classification."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from .runs import PREDICTIONS, used

CHART = "chart.png"
HTML = "report.html"
MARKDOWN = "report.md"
EXAMPLES_SHOWN = 5  # predictions shown in a report; predictions.jsonl holds them all
CELL_CHARS = 200  # longer inputs and outputs are cut: the table is for a glance
CHART_MAX_INCHES = 9.0  # at 100 dpi, narrower than the HTML page (60em)


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
    inches = min(CHART_MAX_INCHES, max(5.0, 1.2 * len(names) * len(systems) + 2))
    # constrained layout makes room for the legend and labels inside the figure's fixed size
    fig, ax = plt.subplots(figsize=(inches, 4), dpi=100, layout="constrained")
    for i, system in enumerate(systems):
        mine = {r["name"]: r for r in rows if r["system"] == system}
        present = [name for name in names if name in mine]
        values = [mine[name]["value"] for name in present]
        cis = [mine[name]["ci95"] or [mine[name]["value"]] * 2 for name in present]
        errors = [[v - low for v, (low, _) in zip(values, cis)], [high - v for v, (_, high) in zip(values, cis)]]
        xs = [names.index(name) + (i - (len(systems) - 1) / 2) * width for name in present]
        ax.bar(xs, values, width, yerr=errors, capsize=4, label=system or None)
    ax.set_xticks(range(len(names)), names, rotation=30 if len(names) > 6 else 0,
                  ha="right" if len(names) > 6 else "center")
    ax.set_ylabel("score (bars: 95% interval)")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    if any(systems):  # below the plot, never over the bars; one column when the names are long
        columns = len(systems) if sum(len(s) for s in systems) < 8 * inches else 1
        fig.legend(loc="outside lower center", ncol=columns, frameon=False)
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
    loss_curve(log, path, f"{document['task']}: {output}", ((document.get("verdict") or {}).get("score")))
    return True


def _identity(document: dict[str, Any]) -> list[tuple[str, str]]:
    inputs = used(document)
    items = [("run", document["id"]), ("kind", document["kind"]), ("task", document["task"]),
             ("status", document["status"]), ("started", document.get("started", "")),
             ("seconds", _fmt(document.get("seconds"))),
             ("model", str(inputs["model"] or "-")), ("adapter", str(inputs["adapter"] or "-")),
             ("data", ", ".join(f"{k} ({v})" for k, v in (document.get("data") or {}).items()) or "-"),
             ("versions", ", ".join(f"{k} {v}" for k, v in (document.get("versions") or {}).items())),
             ("commit", str(document.get("git_commit") or "-"))]
    if document.get("examples") is not None:
        items.insert(4, ("examples", str(document["examples"])))
    return items


def _verdict(document: dict[str, Any]) -> str:
    from .training.selection import verdict_line

    return verdict_line(document["verdict"])


def _cut(value: Any) -> str:
    text = " ".join(str(value).split())  # one line: newlines would break a Markdown table row
    return text if len(text) <= CELL_CHARS else text[:CELL_CHARS - 1] + "…"


def _predictions(folder: Path) -> list[dict[str, Any]]:
    path = folder / PREDICTIONS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def example_rows(predictions: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The first predictions, cut to a glance: input (when recorded), prediction, reference."""
    rows = []
    for p in predictions[:EXAMPLES_SHOWN]:
        references = p.get("references") or []
        more = f" (+{len(references) - 1} more)" if len(references) > 1 else ""
        rows.append({"input": _cut(p["input"]) if p.get("input") is not None else "",
                     "prediction": _cut(p.get("prediction", "")),
                     "reference": (_cut(references[0]) if references else "-") + more})
    return rows


def confusion_of(document: dict[str, Any], predictions: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Gold label -> predicted label -> count: as recorded, else counted from the predictions
    of a run scored with the classification metric (as ``nlpapp eval`` prints it)."""
    if document.get("confusion"):
        return document["confusion"]
    scored = {s.get("metric") for s in (document.get("metrics") or {}).values() if isinstance(s, dict)}
    if "classification" not in scored or not predictions:
        return {}
    from .evaluation.metrics import confusion

    return confusion([p["prediction"] for p in predictions], [(p.get("references") or [""])[0] for p in predictions])


def _confusion_table(table: dict[str, dict[str, int]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per gold label, one column per label."""
    labels = sorted(set(table) | {p for row in table.values() for p in row})
    return ["gold \\ predicted", *labels], [[g, *(str(table.get(g, {}).get(p, 0)) for p in labels)]
                                           for g in sorted(table)]


def write(folder: Path) -> Path:
    """Write the reports for the run in ``folder``; returns the HTML report's path."""
    from .runtime.atomic import atomic_file

    document = json.loads((folder / "run.json").read_text())
    predictions = _predictions(folder)
    document = {**document, "confusion": confusion_of(document, predictions)}
    rows = score_rows(document)
    chart = folder / CHART
    title = f"{document['kind']} {document['task']}"
    drawn = _loss_chart(document, chart) if document["kind"] == "train" else _score_chart(rows, chart, title)
    if not drawn:
        chart.unlink(missing_ok=True)
    p_values = document.get("paired_p_values") or {}
    with atomic_file(folder / MARKDOWN) as handle:
        handle.write(_markdown(document, rows, p_values, drawn, predictions))
    with atomic_file(folder / HTML) as handle:
        handle.write(_html(document, rows, p_values, chart if drawn else None, predictions))
    return folder / HTML


def _examples_heading(predictions: list[dict[str, Any]]) -> str:
    shown = min(EXAMPLES_SHOWN, len(predictions))
    return (f"The first {shown} of {len(predictions)} predictions (all are in {PREDICTIONS})"
            if shown < len(predictions) else f"All {len(predictions)} predictions")


def _markdown(document: dict[str, Any], rows: list[dict[str, Any]], p_values: dict[str, float],
              drawn: bool, predictions: list[dict[str, Any]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [f"# {document['kind']} {document['task']} — run {document['id']}", ""]
    lines += [f"- **{k}**: {v}" for k, v in _identity(document)]
    if document.get("error"):
        lines += ["", f"**Error**: {document['error']}"]
    if document.get("verdict"):
        lines += ["", f"**Verdict**: {_verdict(document)}"]
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
    if predictions:
        examples = example_rows(predictions)
        with_input = any(x["input"] for x in examples)
        lines += ["", "## Examples", "", _examples_heading(predictions) + ":", "",
                  "| " + ("input | " if with_input else "") + "prediction | reference |",
                  "|" + ("---|" if with_input else "") + "---|---|"]
        lines += ["| " + (f"{cell(x['input'])} | " if with_input else "") + f"{cell(x['prediction'])} | "
                  f"{cell(x['reference'])} |" for x in examples]
    if document.get("confusion"):
        header, table = _confusion_table(document["confusion"])
        lines += ["", "## Confusion matrix", "", "| " + " | ".join(map(cell, header)) + " |",
                  "|---|" + "---:|" * (len(header) - 1)]
        lines += ["| " + " | ".join(map(cell, row)) + " |" for row in table]
    if drawn:
        lines += ["", f"![chart]({CHART})"]
    return "\n".join(lines) + "\n"


def _html(document: dict[str, Any], rows: list[dict[str, Any]], p_values: dict[str, float],
          chart: Path | None, predictions: list[dict[str, Any]]) -> str:
    e = html.escape
    systems = any(r["system"] for r in rows)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(document['id'])}</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em}"
             "td.n{text-align:right}code{font-size:90%}img{max-width:100%;height:auto}"
             "td.hit{font-weight:bold}</style></head><body>",
             f"<h1>{e(document['kind'])} {e(document['task'])}</h1><table>"]
    parts += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _identity(document)]
    parts.append("</table>")
    if document.get("error"):
        parts.append(f"<p><b>Error</b>: {e(document['error'])}</p>")
    if document.get("verdict"):
        parts.append(f"<p><b>Verdict</b>: {e(_verdict(document))}</p>")
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
    if predictions:
        examples = example_rows(predictions)
        with_input = any(x["input"] for x in examples)
        parts.append(f"<h2>Examples</h2><p>{e(_examples_heading(predictions))}:</p><table><tr>"
                     + ("<th>input</th>" if with_input else "") + "<th>prediction</th><th>reference</th></tr>")
        parts += ["<tr>" + (f"<td>{e(x['input'])}</td>" if with_input else "") + f"<td>{e(x['prediction'])}</td>"
                  f"<td>{e(x['reference'])}</td></tr>" for x in examples]
        parts.append("</table>")
    if document.get("confusion"):
        header, table = _confusion_table(document["confusion"])
        parts.append("<h2>Confusion matrix</h2><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        parts += [f"<tr><th>{e(row[0])}</th>" + "".join(
            f"<td class='n{' hit' if label == row[0] else ''}'>{e(n)}</td>" for label, n in zip(header[1:], row[1:]))
            + "</tr>" for row in table]
        parts.append("</table>")
    if chart is not None:
        data = base64.b64encode(chart.read_bytes()).decode()
        parts.append(f"<h2>Chart</h2><img alt='chart' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
