"""Child process of bench/run.py: the full PSNMF pipeline, its wall time and peak RSS.

Run as ``python bench/pipeline_child.py ny nx n_channels mean k``; prints one
JSON line. The cube is generated first; the peak-RSS mark (VmHWM) is then
reset through /proc/self/clear_refs, so the reported peak is that of the fit,
which includes the counts themselves (held by the caller as a user would).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from workloads import cube_counts  # noqa: E402

from psnmf import PSNMF  # noqa: E402


def _status_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def main():
    ny, nx, n_channels = (int(v) for v in sys.argv[1:4])
    mean, k = float(sys.argv[4]), int(sys.argv[5])
    start = time.perf_counter()
    X = cube_counts(ny, nx, n_channels, k, mean, seed=3)
    generate_s = time.perf_counter() - start
    rss_before = _status_kib("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False
    start = time.perf_counter()
    model = PSNMF(k, random_state=0).fit(X, image_shape=(ny, nx))
    fit_s = time.perf_counter() - start
    csr_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    factor_bytes = model.maps_.nbytes + model.spectra_.nbytes
    print(
        json.dumps(
            {
                "nnz": int(X.nnz),
                "generate_s": generate_s,
                "fit_s": fit_s,
                "rss_before_fit_mib": rss_before / 1024,
                "peak_rss_mib": _status_kib("VmHWM") / 1024,
                "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "hwm_reset": reset,
                "csr_mib": csr_bytes / 2**20,
                "factors_mib": factor_bytes / 2**20,
                "bin_factor": list(model.bin_factor_),
                "n_iter": model.n_iter_,
            }
        )
    )


if __name__ == "__main__":
    main()
