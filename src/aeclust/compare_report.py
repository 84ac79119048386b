"""The report of ``aeclust compare``: the ranked table, the figures, the folds and the
paper's own table, on one self-contained HTML page (same look as the run report)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import DataError
from .report import RawHTML, esc, format_seconds, html_page, img_tag, table, write_text_atomic

# Liu & Zhang (2021), Table 1: breast histopathology (IDC), 2 classes, 5-fold CV.
PAPER_TABLE = [
    ("Sole k-means", 0.593, 0.714),
    ("FC AE + k-means", 0.605, 0.729),
    ("CNN AE + k-means", 0.623, 0.736),
    ("AlexNet AE + k-means", 0.53, 0.532),
    ("ResNet AE + k-means", 0.515, 0.50),
    ("CNN AE (no max-pool) + k-means", 0.651, 0.747),
    ("Supervised DenseNet", 0.825, 0.90),
]
DESCRIPTIONS = {
    "fc": "fully connected AE + mini-batch k-means",
    "conv-pool": "convolutional AE with max-pooling + mini-batch k-means",
    "conv-nopool": "convolutional AE, strided (no max-pooling) + mini-batch k-means",
    "alexnet": "AlexNet AE + mini-batch k-means",
    "resnet": "ResNet AE + mini-batch k-means",
    "kmeans": "sole k-means on the pixels (baseline)",
    "densenet": "supervised DenseNet classifier (upper bound)",
}


def _pm(row: dict, key: str) -> str:
    return f"{row[key]:.3f} ± {row[f'{key}_std']:.3f}"


def markdown_table(rows: list[dict]) -> str:
    """The ranked table as Markdown: F1 and ACC (mean ± std over folds), NMI, seconds."""
    lines = [
        "| rank | method | F1 | ACC | ACC (majority) | NMI | seconds / fold |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [str(r["rank"]), r["method"], _pm(r, "f1"), _pm(r, "acc")]
        cells += [_pm(r, "acc_majority"), _pm(r, "nmi"), f"{r['seconds']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_compare(out_dir: str | os.PathLike) -> str:
    """The HTML text of the report of a directory ``aeclust compare`` wrote."""
    out_dir = Path(out_dir)
    path = out_dir / "summary.json"
    if not path.is_file():
        raise DataError(f"{out_dir} has no summary.json; give a directory `aeclust compare` wrote.")
    summary = json.loads(path.read_text())
    rows = summary["table"]
    unsupervised = [r for r in rows if r["method"] != "densenet"]
    body = [f"<h1>Comparison on {esc(summary['dataset'])}</h1>"]
    classes = summary.get("class_names") or []
    facts = (
        f"{summary['n_samples']:,} images of shape {tuple(summary['image_shape'])}, "
        f"{len(classes)} classes, {summary['n_clusters']} clusters, {summary['folds']}-fold "
        f"cross-validation{' grouped by patient/group' if summary.get('grouped') else ''}; "
        f"{format_seconds(summary['seconds'])} in all; {summary['date']}"
    )
    body.append(f'<p class="meta">{esc(facts)}</p>')
    if unsupervised:
        best = unsupervised[0]
        text = (
            f"Best unsupervised method: <b>{esc(best['method'])}</b>, F1 {_pm(best, 'f1')}, "
            f"ACC {_pm(best, 'acc')}."
        )
        sup = next((r for r in rows if r["method"] == "densenet"), None)
        if sup:
            text += f" The supervised DenseNet reaches F1 {_pm(sup, 'f1')}, ACC {_pm(sup, 'acc')}."
        body.append(f"<p>{text}</p>")
    f1_kind = "binary F1 of class " + esc(
        classes[summary["pos_label"]] if summary.get("pos_label") is not None and classes
        else summary.get("pos_label")
    ) if summary.get("pos_label") is not None else "macro-F1"  # fmt: skip
    body.append("<h2>Ranking</h2>")
    header = ["rank", "method", "F1", "ACC", "ACC (majority)", "NMI", "ARI", "seconds / fold"]
    cells = [
        [r["rank"], RawHTML(f"<b>{esc(r['method'])}</b> <span class='note'>"
                            f"{esc(DESCRIPTIONS.get(r['method'], ''))}</span>"),
         _pm(r, "f1"), _pm(r, "acc"), _pm(r, "acc_majority"), _pm(r, "nmi"), _pm(r, "ari"),
         f"{r['seconds']:.1f}"]
        for r in rows
    ]  # fmt: skip
    body.append(table(cells, header, align="rlrrrrrr"))
    body.append(
        f"<p class='note'>Mean ± standard deviation over the held-out folds. F1 is the "
        f"{f1_kind} after each cluster takes the label of its majority class (the paper's "
        "protocol); ACC uses the best one-to-one matching of clusters to classes (Hungarian); "
        "ACC (majority) is the accuracy after the majority vote. The DenseNet's predictions "
        "are scored directly.</p>"
    )
    for name, caption in (
        ("scores.png", "F1 and ACC per method (error bars: one standard deviation over folds)"),
        ("tsne.png", "t-SNE of the held-out codes of the first fold, coloured by cluster "
                     "(the paper's Fig. 6)"),
    ):  # fmt: skip
        if (out_dir / name).is_file():
            body.append(img_tag(out_dir / name, caption))
    body.append("<h2>The paper's Table 1, for reference</h2>")
    body.append(
        "<p class='note'>Liu &amp; Zhang (2021) on breast histopathology tiles (IDC, 2 classes, "
        "50×50 RGB; 250×250 for AlexNet and ResNet), 5-fold CV, on a GPU. Their data and "
        "training lengths differ from these.</p>"
    )
    body.append(table([(m, f"{f:.3f}", f"{a:.3f}") for m, f, a in PAPER_TABLE],
                      ["model", "F1", "accuracy"], align="lrr"))  # fmt: skip
    if (out_dir / "results.csv").is_file():
        lines = (out_dir / "results.csv").read_text().strip().splitlines()
        body.append("<h2>Every fold</h2>")
        body.append(table([line.split(",") for line in lines[1:]], lines[0].split(","),
                          align="lr" + "r" * 8))  # fmt: skip
    if (out_dir / "config.yaml").is_file():
        body.append("<h2>Configuration</h2>")
        body.append(f"<pre>{esc((out_dir / 'config.yaml').read_text())}</pre>")
    versions = ", ".join(f"{k} {v}" for k, v in summary.get("versions", {}).items())
    body.append(f"<footer>aeclust compare &middot; {esc(versions)}</footer>")
    return html_page(f"aeclust compare: {summary['dataset']}", "\n".join(body))


def write_compare_report(out_dir: str | os.PathLike) -> Path:
    """Write ``out_dir/report.html``; returns its path."""
    return write_text_atomic(Path(out_dir) / "report.html", render_compare(out_dir))
