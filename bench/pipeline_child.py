"""Child process of bench/run.py: the full PSNMF pipeline, its wall time and peak RSS.

Run as ``python bench/pipeline_child.py ny nx n_channels mean k``; prints one
JSON line. The cube is generated first; the peak-RSS mark (VmHWM) is then
reset through /proc/self/clear_refs, so the reported peak is that of the fit,
which includes the counts themselves (held by the caller as a user would).

The per-stage breakdown wraps, for this process only, the functions that
``PSNMF.fit`` calls for each stage (the estimator itself is unchanged) and
samples VmRSS every 20 ms on a side thread, which runs while the core works
(it releases the GIL). CPU seconds (all threads of this process) are given
beside wall seconds: on a shared machine they are the less noisy of the two.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from workloads import cube_counts  # noqa: E402

import psnmf._stages  # noqa: E402
import psnmf.pipeline  # noqa: E402
from psnmf import PSNMF  # noqa: E402

# Stage name -> (module, function) that PSNMF.fit calls for it, in pipeline order.
STAGES = {
    "conversion": (psnmf.pipeline, "to_counts"),
    "bin selection": (psnmf.pipeline, "select_bin_factor"),
    "binning": (psnmf.pipeline, "bin_pixels"),
    "stage 1": (psnmf._stages, "fit_spectra"),
    "upsampling": (psnmf._stages, "upsample_maps"),
    "stage 2": (psnmf._stages, "fit_maps"),
}


def _status_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


class StageClock:
    """Seconds and peak VmRSS of each stage; calls nested in a stage (the bin
    selection runs both stages) count for the outer one only."""

    def __init__(self, interval=0.02):
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.cpu_seconds = dict.fromkeys(STAGES, 0.0)
        self.peak_mib = dict.fromkeys(STAGES, 0.0)
        self.calls = dict.fromkeys(STAGES, 0)
        self._current = None
        self._interval = interval
        self._running = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while self._running:
            stage = self._current
            if stage is not None:
                rss = _status_kib("VmRSS") / 1024
                self.peak_mib[stage] = max(self.peak_mib[stage], rss)
            time.sleep(self._interval)

    def _wrap(self, stage, function):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            if self._current is not None:
                return function(*args, **kwargs)
            self._current = stage
            start, cpu_start = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - start
                self.cpu_seconds[stage] += time.process_time() - cpu_start
                self.calls[stage] += 1
                rss = _status_kib("VmRSS") / 1024
                self.peak_mib[stage] = max(self.peak_mib[stage], rss)
                self._current = None

        return timed

    def __enter__(self):
        self._originals = {}
        for stage, (module, name) in STAGES.items():
            self._originals[stage] = getattr(module, name)
            setattr(module, name, self._wrap(stage, self._originals[stage]))
        self._sampler.start()
        return self

    def __exit__(self, *exc):
        self._running = False
        self._sampler.join()
        for stage, (module, name) in STAGES.items():
            setattr(module, name, self._originals[stage])

    def report(self, total, cpu_total):
        stages = {
            stage: {
                "s": self.seconds[stage],
                "cpu_s": self.cpu_seconds[stage],
                "calls": self.calls[stage],
                "peak_rss_mib": self.peak_mib[stage],
            }
            for stage in STAGES
        }
        stages["other"] = {
            "s": total - sum(self.seconds.values()),
            "cpu_s": cpu_total - sum(self.cpu_seconds.values()),
            "calls": 0,
            "peak_rss_mib": 0,
        }
        return stages


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
    with StageClock() as clock:
        start, cpu_start = time.perf_counter(), time.process_time()
        model = PSNMF(k, random_state=0).fit(X, image_shape=(ny, nx))
        fit_s, fit_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    csr_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    factor_bytes = model.maps_.nbytes + model.spectra_.nbytes
    print(
        json.dumps(
            {
                "nnz": int(X.nnz),
                "generate_s": generate_s,
                "fit_s": fit_s,
                "fit_cpu_s": fit_cpu_s,
                "load_average": list(os.getloadavg()),
                "rss_before_fit_mib": rss_before / 1024,
                "peak_rss_mib": _status_kib("VmHWM") / 1024,
                "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "hwm_reset": reset,
                "csr_mib": csr_bytes / 2**20,
                "factors_mib": factor_bytes / 2**20,
                "bin_factor": list(model.bin_factor_),
                "n_iter": model.n_iter_,
                "stage1_runs": len(model.binned_.restart_losses),
                "stages": clock.report(fit_s, fit_cpu_s),
            }
        )
    )


if __name__ == "__main__":
    main()
