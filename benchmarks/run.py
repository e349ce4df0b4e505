"""The benchmark suite: ``python -m benchmarks`` (full) or ``python -m benchmarks --quick`` (about a minute).

Measures, at 256x256:

* training throughput of the TF tutorial configuration and of ``configs/fast.yaml`` (the project's real train
  step fed by the real tf.data pipeline, median of timed steps after warm-up) and their ratio;
* the per-step split between waiting for input and computing;
* peak RSS of each training process;
* exported-SavedModel generator latency (batch 1, median) and throughput (batch 8), float32 / bfloat16 / XLA;
* face alignment throughput on real photos (detect + align in one process, and ``prepare`` end to end on
  ~1 MP JPEGs with one worker per core);

Writes ``benchmarks/results/<date>-<host>.json`` (atomically), prints a Markdown table and refreshes the table in
``benchmarks/README.md``. The load average is recorded with every result: these numbers are only comparable
on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # ``python benchmarks/run.py``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import alignment, inference, training  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "benchmarks" / "README.md"
FAST_CONFIG = "configs/fast.yaml"
TABLE_START, TABLE_END = "<!-- results:start -->", "<!-- results:end -->"


def machine() -> dict:
    info = {"host": socket.gethostname(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "platform": platform.platform()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        flags = next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags"))
        info["avx512_bf16"] = "avx512_bf16" in flags
        info["mem_gb"] = round(int(Path("/proc/meminfo").read_text().split()[1]) / 2**20, 1)
    except (OSError, StopIteration):
        pass
    try:
        import tensorflow as tf  # version only; the measurements run in child processes

        info["tensorflow"] = tf.__version__
    except ImportError:
        pass
    return info


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def json_worker(cmd: list[str], what: str) -> dict:
    """Run a benchmark worker subprocess in the repository and return the last JSON line it printed; a failure
    stops the benchmark with the end of the worker's stderr."""
    import subprocess

    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed: {proc.stderr.strip()[-1500:]}")
    return json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])


def markdown(result: dict) -> str:
    rows = [("Measurement", "Value", "Notes")]
    tr = result.get("training", {})
    for key, label in (("tutorial", "tutorial setting (--norm batch --inference-mode train)"),
                       ("default", "defaults (instance norm)"), ("fast", "fast config (configs/fast.yaml)")):
        r = tr.get(key)
        if r:
            rows.append((f"Training img/s, {label}", f"{r['img_per_s']:.2f}",
                         f"batch {r['batch_size']}, {r['precision']}, {r['norm']} norm, jit {r['jit']}; "
                         f"median step {r['median_step_s']:.3f} s; load {r['loadavg_before'][0]}"))
    if tr.get("speedup") is not None:
        rows.append(("Training speed-up fast / tutorial (img/s)", f"{tr['speedup']:.2f}x",
                     "images/s only; time-to-quality is benchmarks/quality.py"))
    for key in ("tutorial", "fast"):
        r = tr.get(key)
        if r:
            starts = r.get("epoch_start_waits_s", [])
            within = r.get("stall_fraction_within_epochs")
            rows.append((f"Input stall, {key}", f"{100 * r['stall_fraction']:.2f} % of step time",
                         f"median wait {1000 * r['median_wait_s']:.2f} ms vs compute {1000 * r['median_compute_s']:.0f} ms"
                         + (f"; within epochs {100 * within:.2f} %, epoch-start waits "
                            f"{', '.join(f'{w:.2f} s' for w in starts) or 'none timed'}" if within is not None else "")))
            rows.append((f"Peak RSS of training, {key}", f"{r['max_rss_mb'] / 1024:.2f} GB", "target < 4 GB (256x256)"))
    inf = result.get("inference")
    if inf and "variants" in inf:
        for name, v in inf["variants"].items():
            rows.append((f"SavedModel {name}: latency b1 / throughput b8",
                         f"{v['latency_b1_median_ms']:.1f} ms / {v['throughput_b8_img_per_s']:.1f} img/s",
                         f"max |diff| vs fp32 {v.get('max_abs_diff_vs_fp32', '-')} grey levels "
                         f"(mean {v.get('mean_abs_diff_vs_fp32', '-')}); {inf['norm']} norm"))
        rows.append(("Exporter", inf["exporter"], "targets: b1 <= 25 ms, b8 >= 40 img/s"))
    elif inf:
        rows.append(("SavedModel inference", "error", inf.get("error", "")))
    al = result.get("alignment")
    if al and "img_per_s" in al:
        rows.append(("Alignment (detect + align 256)", f"{al['img_per_s']:.1f} img/s",
                     f"median {al['median_ms_per_image']:.1f} ms/image over {al['images_timed']} photos"))
    elif al:
        rows.append(("Alignment", "skipped", al.get("skipped") or al.get("error", "")))
    pr = (al or {}).get("prepare")
    if pr and "img_per_s" in pr:
        rows.append(("prepare.py end to end (~1 MP JPEG -> aligned PNG written)", f"{pr['img_per_s']:.1f} img/s",
                     f"{pr['images']} images, {pr['workers']} worker processes, start-up included; target >= 50"))
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows[1:]]
    m = result["machine"]
    lines.append("")
    lines.append(f"Machine: {m.get('cpu', '?')}, {m.get('cpus')} cores, {m.get('mem_gb', '?')} GB, AVX-512 BF16 "
                 f"{m.get('avx512_bf16')}; TensorFlow {m.get('tensorflow', '?')}, Python {m['python']}. "
                 f"Run {result['started']} ({'quick' if result['quick'] else 'full'}), load average at start "
                 f"{result['loadavg_start']}, at end {result['loadavg_end']}.")
    return "\n".join(lines)


def update_readme(table: str) -> None:
    if not README.is_file():
        return
    text = README.read_text()
    if TABLE_START in text and TABLE_END in text:
        head, rest = text.split(TABLE_START, 1)
        _, tail = rest.split(TABLE_END, 1)
        write_atomic(README, f"{head}{TABLE_START}\n{table}\n{TABLE_END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="ReFace-TF benchmark suite (speed, memory, serving latency).")
    parser.add_argument("--quick", action="store_true", help="few steps and repeats (about a minute)")
    parser.add_argument("--fast-config", default=FAST_CONFIG)
    parser.add_argument("--skip", nargs="*", default=[], choices=("training", "inference", "alignment"))
    parser.add_argument("--no-readme", action="store_true", help="do not refresh benchmarks/README.md")
    args = parser.parse_args(argv)

    started = dt.datetime.now(dt.timezone.utc)
    result: dict = {"started": started.isoformat(timespec="seconds"), "quick": args.quick, "machine": machine(),
                    "loadavg_start": _load()}
    steps, warmup = (4, 2) if args.quick else (20, 4)

    with tempfile.TemporaryDirectory(prefix="reface_bench_") as tmp:
        data = Path(tmp) / "synthetic256"
        from reface_tf.data.synthetic import make_synthetic_dataset

        make_synthetic_dataset(data, count=24 if args.quick else 64, size=256, seed=0)
        if "training" not in args.skip:
            tr: dict = {}
            # The tutorial setting is batch norm with batch statistics at inference; the defaults use instance norm.
            for key, config, flags in (("tutorial", None, ["--norm", "batch", "--inference-mode", "train"]),
                                       ("default", None, []), ("fast", args.fast_config, [])):
                before = _load()
                print(f"training: {key} ...", file=sys.stderr, flush=True)
                try:
                    r = training.run_worker(config, flags, str(data), steps, warmup)
                    r["loadavg_before"] = before
                    tr[key] = r
                except Exception as err:  # one failing part must not lose the others' numbers
                    tr[key + "_error"] = str(err)
            if "tutorial" in tr and "fast" in tr:
                tr["speedup"] = round(tr["fast"]["img_per_s"] / tr["tutorial"]["img_per_s"], 3)
            result["training"] = tr
    if "inference" not in args.skip:
        print("inference ...", file=sys.stderr, flush=True)
        try:
            result["inference"] = inference.run_worker(args.fast_config, repeats=10 if args.quick else 40)
        except Exception as err:
            result["inference"] = {"error": str(err)[-500:]}
    if "alignment" not in args.skip:
        print("alignment ...", file=sys.stderr, flush=True)
        try:
            result["alignment"] = alignment.measure(repeats=2 if args.quick else 5)
            result["alignment"]["prepare"] = alignment.measure_prepare(pairs=12 if args.quick else 150)
        except Exception as err:
            result["alignment"] = {"error": f"{type(err).__name__}: {err}"[:500]}
    result["loadavg_end"] = _load()
    result["seconds"] = round(time.time() - started.timestamp(), 1)

    name = f"{started.strftime('%Y-%m-%dT%H%M%SZ')}-{socket.gethostname()}{'-quick' if args.quick else ''}.json"
    out = RESULTS / name
    write_atomic(out, json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    print(table)
    print(f"\nresults: {out.relative_to(ROOT)}")
    if not args.no_readme and not args.quick:
        update_readme(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
