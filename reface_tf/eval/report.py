"""Files of an evaluation: ``per_image.csv``, ``metrics.json``, ``report.md``, ``report.html``, ``grid.png``
(input | output | target | |output - target| heat map) and ``histograms.png``.

All of them are written into a temporary sibling folder which is renamed to the output folder at the end, so
an interrupted or failed evaluation never leaves a report that looks complete (a previous report in that
folder is replaced only once the new one is whole).
"""

from __future__ import annotations

import csv
import html
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from reface_tf.eval.evaluate import EvalResult
from reface_tf.metrics import get_metric, metric_names

log = logging.getLogger(__name__)

CSV_COLUMNS = ("id", "psnr", "ssim", "l1", "identity_output_target", "identity_output_input", "baseline_psnr",
               "baseline_ssim", "baseline_l1", "baseline_identity", "identity_crop", "face_psnr", "face_ssim", "face_l1",
               "baseline_face_psnr", "baseline_face_ssim", "baseline_face_l1", "input", "target")
DIFF_FULL_SCALE = 128.0  # a mean absolute difference of 128 (of 255) is the top of the heat map, in every grid


def _fmt(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def diff_heatmap(output: np.ndarray, target: np.ndarray) -> np.ndarray:
    """|output - target| averaged over channels on a FIXED scale (comparable across grids), inferno colours."""
    from matplotlib import colormaps

    diff = np.abs(output.astype(np.float64) - target.astype(np.float64)).mean(axis=-1)
    rgba = colormaps["inferno"](np.clip(diff / DIFF_FULL_SCALE, 0.0, 1.0))
    return (rgba[..., :3] * 255.0 + 0.5).astype(np.uint8)


def comparison_grid(examples: list[tuple[np.ndarray, np.ndarray, np.ndarray]], gap: int = 2) -> np.ndarray:
    """One row per example: input | output | target | difference heat map, on a white background."""
    if not examples:
        raise ValueError("no examples for the grid")
    h, w = examples[0][0].shape[:2]
    grid = np.full((len(examples) * (h + gap) - gap, 4 * (w + gap) - gap, 3), 255, np.uint8)
    for r, (inp, out, tgt) in enumerate(examples):
        for c, tile in enumerate((inp, out, tgt, diff_heatmap(out, tgt))):
            grid[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tile
    return grid


def _histograms(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, key, unit in ((axes[0], "psnr", "PSNR (dB)"), (axes[1], "ssim", "SSIM")):
        model = [r[key] for r in rows]
        base = [r[f"baseline_{key}"] for r in rows]
        lo, hi = min(model + base), max(model + base)
        bins = np.linspace(lo, hi if hi > lo else lo + 1e-6, 21)
        ax.hist(base, bins=bins, alpha=0.5, label="baseline (output = input)", color="tab:gray")
        ax.hist(model, bins=bins, alpha=0.7, label="model", color="tab:blue")
        ax.set_xlabel(unit)
        ax.set_ylabel("images")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _summary_table(s: dict) -> list[tuple[str, str, str]]:
    up = {name: get_metric(name).arrow for name in metric_names()}  # which direction is better, from the registry
    return [
        (f"PSNR (dB) {up['psnr']}", f"{_fmt(s['psnr'], 2)} ± {_fmt(s['psnr_std'], 2)}", _fmt(s["baseline_psnr"], 2)),
        (f"SSIM {up['ssim']}", f"{_fmt(s['ssim'])} ± {_fmt(s['ssim_std'])}", _fmt(s["baseline_ssim"])),
        (f"L1 ([-1, 1] units) {up['l1']}", f"{_fmt(s['l1'])} ± {_fmt(s['l1_std'])}", _fmt(s["baseline_l1"])),
        (f"identity cosine vs target {up['identity_cosine']}", _fmt(s["identity_cosine"]),
         _fmt(s["baseline_identity_cosine"])),
        # no arrow: output = input scores 1 here by definition, so this row says how much the model kept, not who wins
        ("identity cosine vs input", _fmt(s["identity_cosine_input"]), "1 (by definition)"
         if s["identity_cosine_input"] is not None else "n/a"),
    ] + ([
        (f"face region PSNR (dB) {up['face_psnr']}, {s['n_face_region']} pairs", _fmt(s["face_psnr"], 2),
         _fmt(s["baseline_face_psnr"], 2)),
        (f"face region SSIM {up['face_ssim']}", _fmt(s["face_ssim"]), _fmt(s["baseline_face_ssim"])),
        (f"face region L1 {up['face_l1']}", _fmt(s["face_l1"]), _fmt(s["baseline_face_l1"])),
    ] if s.get("n_face_region") else []) + ([
        (f"KID, FaceNet embeddings, outputs vs targets {up['kid_facenet']}",
         f"{_fmt(s['kid_facenet'])} ± {_fmt(s['kid_facenet_std'])}", _fmt(s["baseline_kid_facenet"])),
    ] if s.get("kid_facenet") is not None else []) + ([
        (f"landmark mIoU ↑, {s['landmark_undetected']} of {s['landmark_n']} faces not re-detected (IoU 0)",
         f"{_fmt(s['landmark_miou'])} ± {_fmt(s['landmark_miou_std'])}", "n/a"),
        *((f"landmark IoU {name} ↑", _fmt(value), "n/a") for name, value in s["landmark_iou"].items()),
    ] if s.get("landmark_miou") is not None else []) + ([
        ("floor: mean training face PSNR (dB) / SSIM ↑",
         f"{_fmt(s['floor_mean_face_psnr'], 2)} / {_fmt(s['floor_mean_face_ssim'])}", "n/a"),
    ] if s.get("floor_mean_face_psnr") is not None else [])


def report_markdown(result: EvalResult) -> str:
    s = result.summary
    lines = [f"# Evaluation of {s['checkpoint']}", "",
             f"- model: `{s['model']}` ({s['image_size']}x{s['image_size']}, inference mode {s['inference_mode']})",
             f"- data: {s['data']}, n = {s['n']}",
             f"- identity model: {s['identity_model']}"]
    if s["identity_crops"]:
        lines.append(f"- identity crops: {s['identity_crops'].get('landmarks', 0)} from detected landmarks, "
                     f"{s['identity_crops'].get('whole', 0)} whole aligned image (no face detected)")
    lines += ["", "| metric | model (mean ± std) | baseline: output = input |", "| --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in _summary_table(s)]
    lines += ["", "![input | output | target | difference](grid.png)", "", "![histograms](histograms.png)", "",
              "## Per image", "", "| id | PSNR | SSIM | L1 | id. vs target | id. vs input | baseline PSNR | baseline SSIM |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in result.rows:
        lines.append(f"| {r['id']} | {_fmt(r['psnr'], 2)} | {_fmt(r['ssim'])} | {_fmt(r['l1'])} | "
                     f"{_fmt(r['identity_output_target'])} | {_fmt(r['identity_output_input'])} | "
                     f"{_fmt(r['baseline_psnr'], 2)} | {_fmt(r['baseline_ssim'])} |")
    return "\n".join(lines) + "\n"


def report_html(result: EvalResult) -> str:
    s = result.summary
    esc = html.escape
    head = "".join(f"<tr><td>{esc(a)}</td><td>{esc(b)}</td><td>{esc(c)}</td></tr>" for a, b, c in _summary_table(s))
    body = "".join(
        f"<tr><td>{esc(r['id'])}</td><td>{_fmt(r['psnr'], 2)}</td><td>{_fmt(r['ssim'])}</td><td>{_fmt(r['l1'])}</td>"
        f"<td>{_fmt(r['identity_output_target'])}</td><td>{_fmt(r['identity_output_input'])}</td>"
        f"<td>{_fmt(r['baseline_psnr'], 2)}</td><td>{_fmt(r['baseline_ssim'])}</td></tr>" for r in result.rows)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Evaluation of {esc(s['checkpoint'])}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child{{text-align:left}}</style></head>
<body><h1>Evaluation of {esc(s['checkpoint'])}</h1>
<p>model: <code>{esc(s['model'])}</code> ({s['image_size']}x{s['image_size']}, inference mode {esc(s['inference_mode'])})<br>
data: {esc(s['data'])}, n = {s['n']}<br>identity model: {esc(s['identity_model'])}</p>
<table><tr><th>metric</th><th>model (mean ± std)</th><th>baseline: output = input</th></tr>{head}</table>
<h2>Examples</h2><p>input | output | target | |output − target| (black = 0, yellow = {DIFF_FULL_SCALE:.0f}/255)</p>
<img src="grid.png" alt="comparison grid"><h2>Distributions</h2><img src="histograms.png" alt="histograms">
<h2>Per image</h2><table><tr><th>id</th><th>PSNR</th><th>SSIM</th><th>L1</th><th>id. vs target</th>
<th>id. vs input</th><th>baseline PSNR</th><th>baseline SSIM</th></tr>{body}</table></body></html>
"""


def write_evaluation(result: EvalResult, out_dir: str | os.PathLike) -> Path:
    """Write all report files to ``out_dir`` (built in a temporary sibling, then renamed into place)."""
    from reface_tf.data.images import save_png_atomic

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        from reface_tf.errors import DataError

        raise DataError(f"--out: {out_dir} is a file; pass a folder for the report")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        with open(tmp / "per_image.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            for row in result.rows:
                writer.writerow({k: ("" if v is None else repr(v) if isinstance(v, float) else v) for k, v in row.items()})
        (tmp / "metrics.json").write_text(json.dumps(result.summary, indent=2) + "\n")
        save_png_atomic(tmp / "grid.png", comparison_grid(result.examples))
        _histograms(result.rows, tmp / "histograms.png")
        (tmp / "report.md").write_text(report_markdown(result))
        (tmp / "report.html").write_text(report_html(result))
        os.chmod(tmp, 0o755)
        old = None
        if out_dir.exists():  # keep the previous report until the new one is in place
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            os.rename(out_dir, old)
        os.rename(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote the evaluation report to %s", out_dir)
    return out_dir
