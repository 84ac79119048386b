"""Turn a run directory into one self-contained HTML page.

A run directory holds ``metrics.json``, ``config.yaml`` and the figures (``*.png``) of one
run. :func:`write_report` reads them and writes ``report.html``: pictures are embedded as
base64 data URIs and the style sheet is inline, so the file opens offline and can be
mailed as is. The building blocks (:func:`html_page`, :func:`table`, :func:`img_tag`,
:func:`write_text_atomic`) are public so other reports can share the same look.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import DataError

# Scores in display order: key -> (name, needs true labels).
SCORES: dict[str, tuple[str, bool]] = {
    "acc": ("Accuracy (best matching)", True),
    "nmi": ("NMI", True),
    "ari": ("ARI", True),
    "purity": ("Purity (each cluster to its majority class)", True),
    "f1_macro": ("F1 (macro)", True),
    "silhouette": ("Silhouette (latent space)", False),
    "confidence": ("Mean assignment confidence (max h, ACRBM)", False),
    "n_clusters": ("Number of clusters", False),
    "noise_fraction": ("Noise fraction", False),
}
# Known figures in display order: file name -> caption. Others follow alphabetically.
FIGURES: dict[str, str] = {
    "loss.png": "Training loss",
    "reconstructions.png": "Inputs (top) and their reconstructions (bottom)",
    "latent_map.png": "Latent space in 2-D",
    "with_without_clustering_loss.png": "Codes learnt with (left) and without (right) the "
    "clustering loss, same network and seed, coloured by true label (or by cluster)",
    "clusters.png": "Examples per cluster",
    "neighbours.png": "Nearest neighbours of ten images in the code space",
    "confusion.png": "Clusters against true labels",
    "generated.png": "Images generated from samples of the prior(s)",
    "interpolations.png": "Decoded along straight lines between the codes of two images",
    "reconstruction_vs_clusters.png": "Reconstruction quality against correct clustering "
    "(Morais' Fig. 4.13)",
}
# Keys of metrics.json shown in the header or in their own section, not as scores.
LISTS = {  # metrics.json keys holding a list of rows, and their section titles
    "groups": "Latent groups (Morais' Tables 4.1-4.4; acc counts noise as wrong)",
    "divergences": "Divergences: rolled back to the last epoch at a lower learning rate",
}
_NOT_SCORES = {"timings", "versions", "dataset", "n_samples", "model", "clusterer", "date"}

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: #1f2328; background: #fff; max-width: 1040px; margin: 2em auto; padding: 0 1.2em;
       line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #d0d7de; padding-bottom: .2em; }
.meta { color: #57606a; margin-top: 0; }
.meta b { color: #1f2328; font-weight: 600; }
table { border-collapse: collapse; margin: .6em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d7de; padding: .3em .8em; text-align: left; }
th { background: #f6f8fa; font-weight: 600; }
.num { text-align: right; }
.note { color: #8c959f; font-size: .85em; margin-left: .4em; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { color: #57606a; font-size: .9em; margin-top: .3em; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; padding: .8em 1em; overflow-x: auto;
      font-size: .85em; }
footer { color: #8c959f; font-size: .8em; margin-top: 3em; }
"""


class RawHTML(str):
    """A string of HTML that :func:`table` must not escape (build it with escaped parts)."""


def esc(value: object) -> str:
    """``str(value)`` with ``& < > " '`` escaped; :class:`RawHTML` is passed through."""
    return value if isinstance(value, RawHTML) else html.escape(str(value))


def html_page(title: str, body: str) -> str:
    """A complete HTML document with the inline style sheet.

    ``title`` is plain text (escaped here); ``body`` is HTML, escaped by the caller.
    """
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def table(
    rows: Sequence[Sequence[object]], header: Sequence[str] | None = None, align: str = ""
) -> str:
    """An HTML table; cells are escaped unless they are :class:`RawHTML`.

    ``align`` has one letter per column, "l" or "r" (e.g. "lr" right-aligns the second
    column); missing letters mean left.
    """

    def cell(value: object, tag: str, col: int) -> str:
        cls = ' class="num"' if align[col : col + 1] == "r" else ""
        return f"<{tag}{cls}>{esc(value)}</{tag}>"

    def row(values: Sequence[object], tag: str) -> str:
        return "<tr>" + "".join(cell(v, tag, i) for i, v in enumerate(values)) + "</tr>\n"

    head = row(header, "th") if header else ""
    return f"<table>\n{head}{''.join(row(r, 'td') for r in rows)}</table>"


def img_tag(path: str | os.PathLike, caption: str) -> str:
    """A <figure> with the PNG at ``path`` embedded as a base64 data URI, and a caption."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    alt = html.escape(caption)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">'
        f"<figcaption>{alt}</figcaption></figure>"
    )


def figure_paths(run_dir: str | os.PathLike) -> list[tuple[Path, str]]:
    """The ``*.png`` files of ``run_dir`` with captions: known names first, then the rest."""
    run_dir = Path(run_dir)
    pngs = {p.name: p for p in run_dir.glob("*.png") if p.is_file()}
    known = [(pngs[name], caption) for name, caption in FIGURES.items() if name in pngs]
    rest = [(pngs[name], pngs[name].stem) for name in sorted(pngs) if name not in FIGURES]
    return known + rest


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and :func:`os.replace`.

    Readers never see a half-written file, and a failed write leaves the old one in place.
    The file is made readable by all (mode 0o644), like a normally written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0o600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def format_value(value: object) -> str:
    """A short display form: 4 decimals for floats, thousands separators for ints."""
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return "—" if not math.isfinite(value) else f"{value:.4f}"
    if isinstance(value, Mapping):
        return str(value.get("name", ", ".join(f"{k}={v}" for k, v in value.items())))
    return str(value)


def format_seconds(seconds: float) -> str:
    """``83.2`` -> ``"1 min 23 s"``; under a minute with one decimal."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def load_metrics(run_dir: str | os.PathLike) -> dict:
    """Read ``run_dir/metrics.json``, or raise :class:`DataError` if it is not a run directory."""
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise DataError(
            f"{run_dir} is not a run directory: it has no metrics.json. Give the folder a "
            "run wrote (with metrics.json, config.yaml and the figures)."
        )
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{path} is not valid JSON ({exc}); the run may have been cut short."
        ) from exc
    if not isinstance(metrics, dict):
        raise DataError(f"{path} must hold a JSON object (a dict of scores).")
    return metrics


def _score_rows(metrics: Mapping) -> list[tuple[str, object]]:
    rows = []
    for key, (name, needs_labels) in SCORES.items():
        value = metrics.get(key)
        if value is None:
            if needs_labels or key == "silhouette":
                why = "no labels" if needs_labels else "not computed"
                rows.append((name, RawHTML(f'—<span class="note">{why}</span>')))
        elif key == "noise_fraction" and isinstance(value, (int, float)):
            rows.append((name, f"{value:.1%}"))
        else:
            rows.append((name, format_value(value)))
    for key, value in metrics.items():  # scores this module does not know yet
        if key not in SCORES and key not in _NOT_SCORES and not isinstance(value, (dict, list)):
            rows.append((key, format_value(value)))
    return rows


def _header(metrics: Mapping, run_dir: Path) -> str:
    date = metrics.get("date")
    if not date:
        mtime = (run_dir / "metrics.json").stat().st_mtime
        date = _dt.datetime.fromtimestamp(mtime).strftime("%Y-%m-%d %H:%M")
    facts = [
        ("dataset", metrics.get("dataset")),
        ("samples", metrics.get("n_samples")),
        ("model", metrics.get("model")),
        ("clusterer", metrics.get("clusterer")),
        ("date", date),
    ]
    parts = [f"<b>{esc(k)}</b> {esc(format_value(v))}" for k, v in facts if v is not None]
    return f'<p class="meta">{" &middot; ".join(parts)}</p>'


def render_run(run_dir: str | os.PathLike) -> str:
    """The HTML text of the report of ``run_dir`` (see :func:`write_report`)."""
    run_dir = Path(run_dir)
    metrics = load_metrics(run_dir)
    dataset = format_value(metrics.get("dataset", run_dir.name))
    parts = [f"<h1>aeclust report: {esc(dataset)}</h1>", _header(metrics, run_dir)]
    parts += ["<h2>Scores</h2>", table(_score_rows(metrics), ["score", "value"], "lr")]
    timings = {
        k: float(v)
        for k, v in (metrics.get("timings") or {}).items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    if timings:
        rows = [(k, format_seconds(v)) for k, v in timings.items()]
        rows.append(("total", format_seconds(sum(timings.values()))))
        parts += ["<h2>Timings</h2>", table(rows, ["step", "time"], "lr")]
    versions = metrics.get("versions") or {}
    if versions:
        rows = [(k, format_value(v)) for k, v in versions.items()]
        parts += ["<h2>Versions</h2>", table(rows, ["package", "version"])]
    for key, value in metrics.items():  # other nested sections, e.g. per-class scores
        if isinstance(value, dict) and key not in ("timings", "versions", "model", "clusterer"):
            rows = [(k, format_value(v)) for k, v in value.items()]
            parts += [f"<h2>{esc(key)}</h2>", table(rows, ["key", "value"])]
    for key, title in LISTS.items():  # lists of rows, e.g. one per latent group
        items = metrics.get(key)
        if isinstance(items, list) and items and all(isinstance(g, dict) for g in items):
            head = list(items[0])
            rows = [[format_value(g.get(k)) for k in head] for g in items]
            parts += [f"<h2>{esc(title)}</h2>", table(rows, head)]
    figures = figure_paths(run_dir)
    if figures:
        parts += ["<h2>Figures</h2>"] + [img_tag(p, caption) for p, caption in figures]
    config = run_dir / "config.yaml"
    parts.append("<h2>Configuration</h2>")
    if config.is_file():
        parts.append(f"<pre>{esc(config.read_text(encoding='utf-8', errors='replace'))}</pre>")
    else:
        parts.append('<p class="note">No config.yaml in this run directory.</p>')
    parts.append(f"<footer>Written by aeclust from {esc(run_dir.resolve())}.</footer>")
    return html_page(f"aeclust report: {dataset}", "\n".join(parts))


def write_report(run_dir: str | os.PathLike, path: str | os.PathLike | None = None) -> Path:
    """Write one self-contained HTML report of a run directory.

    Parameters
    ----------
    run_dir : path
        Folder with ``metrics.json`` (required), ``config.yaml`` and ``*.png`` figures.
        Besides scores, ``metrics.json`` may hold ``dataset``, ``n_samples``, ``model``,
        ``clusterer`` and ``date`` (header), ``timings`` ({step: seconds}) and
        ``versions`` ({package: version}). Scores needing labels that are missing or
        null are shown as "—" with the note "no labels".
    path : path, optional
        Where to write; default ``run_dir/report.html``. Written atomically.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    DataError
        If ``run_dir`` has no (valid) ``metrics.json``.
    """
    text = render_run(run_dir)
    return write_text_atomic(Path(run_dir) / "report.html" if path is None else path, text)
