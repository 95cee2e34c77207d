"""psnmf benchmark suite: one command, one process (plus one child), one results table.

    python bench/run.py [--quick]

Measures, side by side on the same data and initialisation: psnmf PoissonNMF
against scikit-learn's MU-KL (sparse and dense input), time to a target loss
per psnmf solver (and for Newton at other k), the sparse kernel against the
machine's measured peaks (roofline), thread scaling, the full PSNMF pipeline
(wall time, peak RSS, in a child process), binning and input-conversion
throughput. Writes
bench/RESULTS.md. ``--quick`` shrinks every problem (a smoke test, minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import conversion  # noqa: E402
import nmf_speed  # noqa: E402
import numpy as np  # noqa: E402
import peaks  # noqa: E402
import scipy  # noqa: E402
import sklearn  # noqa: E402
from report import write_report  # noqa: E402
from workloads import low_rank_counts  # noqa: E402

import psnmf  # noqa: E402

FULL = {
    "pixels": 65536,
    "channels": 1024,
    "k": 4,
    "mean": 0.1,
    "image": (256, 256),
    "cube": (1024, 1024, 2048),
    "cube_mean": 0.05,
}
# MU against scikit-learn, and Newton against MU, at these other numbers of
# components (same shape and density).
OTHER_RANKS = (2, 3, 5, 6, 8)
QUICK = {
    "pixels": 8192,
    "channels": 512,
    "k": 4,
    "mean": 0.1,
    "image": (64, 128),
    "cube": (128, 128, 512),
    "cube_mean": 0.05,
}


def machine() -> dict:
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["ram_gib"] = int(line.split()[1]) / 2**20
    except OSError:
        pass
    return info


def versions() -> dict:
    return {
        "psnmf": psnmf.__version__,
        "psnmf row kernels": psnmf._core.row_kernels(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "python": platform.python_version(),
        "compiler": peaks.compiler_version(),
    }


def pipeline(cube, mean, k, log):
    log(f"PSNMF pipeline on {cube} at {mean} counts/channel (child process)")
    child = HERE / "pipeline_child.py"
    out = subprocess.run(
        [sys.executable, str(child), *map(str, cube), str(mean), str(k)],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small problems (smoke test)")
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"))
    parser.add_argument(
        "--target-iterations",
        type=int,
        default=200,
        help="scikit-learn iterations that define the target loss (>= 50; default 200)",
    )
    parser.add_argument(
        "--cube", type=int, nargs=3, metavar=("NY", "NX", "C"), help="pipeline cube shape"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the report from the saved raw results"
    )
    args = parser.parse_args()
    size = dict(QUICK if args.quick else FULL)
    if args.cube:
        size["cube"] = tuple(args.cube)
    size["target_iterations"] = args.target_iterations
    raw = Path(args.output).with_suffix(".pkl")
    if args.report_only:
        write_report(pickle.loads(raw.read_bytes()), Path(args.output))
        return
    start = time.perf_counter()

    def log(message):
        print(f"[{time.perf_counter() - start:7.1f} s] {message}", flush=True)

    results = {
        "quick": args.quick,
        "size": size,
        "machine": machine(),
        "versions": versions(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_start": os.getloadavg(),
    }
    log("machine peaks (compiled FMA loop and triad, numpy triad)")
    results["peaks"] = peaks.compiled_peaks()
    results["numpy_triad_gbs"] = peaks.numpy_triad_gbs()

    log(f"data {size['pixels']} x {size['channels']}, mean {size['mean']} counts/channel")
    X = low_rank_counts(size["pixels"], size["channels"], size["k"], size["mean"], seed=0)
    results["nmf"] = nmf_speed.run(X, size["k"], args.quick, log, size["target_iterations"])
    results["other_ranks"] = nmf_speed.other_ranks(
        lambda k: low_rank_counts(size["pixels"], size["channels"], k, size["mean"], seed=0),
        OTHER_RANKS,
        log,
        size["target_iterations"],
        args.quick,
    )
    results["conversion"] = conversion.run(X, repeats=3, log=log)
    results["binning"] = conversion.binning(X, size["image"], repeats=3, log=log)
    del X
    results["pipeline"] = pipeline(size["cube"], size["cube_mean"], size["k"], log)
    results["load_end"] = os.getloadavg()
    results["total_s"] = time.perf_counter() - start
    raw.write_bytes(pickle.dumps(results))  # the report can be rewritten from these
    write_report(results, Path(args.output))
    log(f"wrote {args.output}")


if __name__ == "__main__":
    main()
