"""StyleGAN2-ADA quality at equal CPU time: the default config (ADA, target 0.6) against the same config with ADA
off (``--ada-target 0``), on the demo faces with their two SIMULATED age classes.

Each run is ``python train.py --task stylegan2 --time-limit SECONDS --time-limit-clock cpu`` (the same CPU-seconds
budget whatever else shares the machine) on the run's recorded split (whole groups held out by the seed), then
``evaluate.py --run-dir`` scores the EMA generator: KID on FaceNet and SFace embeddings against the held-out faces,
the training-vs-held-out floor, and the age estimator's per-class ages of generated and held-out faces.

    python -m benchmarks.stylegan2 --quality 240 --seeds 0 1 --report benchmarks/results/<UTC>-stylegan2-quality.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.dcgan import generator_scores

ROOT = Path(__file__).resolve().parents[1]
SETUPS = (("default (ADA target 0.6)", "ada", []), ("ADA off", "noada", ["--ada-target", "0"]))


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[1:3])} failed: {proc.stderr.strip()[-1500:]}")


def quality(seconds: float, seeds: list[int], out_root: Path, samples: int) -> list[dict]:
    rows = []
    for seed in seeds:
        for name, short, extra in SETUPS:
            run_dir = out_root / f"{short}-seed{seed}"
            _run([sys.executable, "train.py", "--task", "stylegan2", "--run-dir", str(run_dir), "--seed", str(seed),
                  "--epochs", "100000", "--time-limit", str(seconds), "--time-limit-clock", "cpu", "--progress", "none",
                  "--metric-embedder", "none", *extra])
            _run([sys.executable, "evaluate.py", "--run-dir", str(run_dir), "--embedders", "facenet,sface",
                  "--samples", str(samples), "--no-progress", "--out", str(run_dir / "eval")])
            report = json.loads((run_dir / "eval" / "report.json").read_text())
            history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
            ages = report.get("class_ages", {})
            row = {"setup": name, "seed": seed, "steps": history[-1]["step"], "epochs": history[-1]["epoch"],
                   "cpu_seconds": sum(r.get("cpu_seconds", 0.0) for r in history),
                   "wall_seconds": sum(r["epoch_seconds"] for r in history), "ada_p": history[-1].get("ada_p"),
                   **generator_scores(report),
                   "age_classes": ages.get("classes"), "age_spearman_generated": ages.get("spearman_generated"),
                   "age_spearman_real": ages.get("spearman_real"), "age_mean_abs_gap": ages.get("mean_abs_gap_years")}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quality", type=float, required=True, metavar="SECONDS", help="CPU seconds of training per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--samples", type=int, default=200, help="generated faces per evaluation")
    parser.add_argument("--work-dir", default="/tmp/reface_stylegan2_quality", help="where the runs go")
    parser.add_argument("--report", help="write the results as JSON here")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    rows = quality(args.quality, args.seeds, Path(args.work_dir), args.samples)
    if args.report:
        Path(args.report).write_text(json.dumps({"quality_cpu_seconds": args.quality, "rows": rows,
                                                 "load_before": load_before, "load_after": os.getloadavg()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
