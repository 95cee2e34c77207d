"""Ctrl-C during a long fit: KeyboardInterrupt within 1 s, the OpenMP threads stop, and the
estimator is left unfitted. Each fit runs in a subprocess that receives a real SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

pytestmark = pytest.mark.skipif(os.name != "posix", reason="sends SIGINT")

# The child fits until interrupted (tol=0, huge max_iter), printing progress (verbose) so that
# the parent knows the iterations have started; it then reports what it saw as JSON.
CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys, time
    import numpy as np
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted
    import psnmf

    # A shell that starts jobs in the background (non-interactive, `cmd &`) sets
    # SIGINT to ignored, and Python keeps an inherited SIG_IGN: restore Ctrl-C.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    which = sys.argv[1]
    rng = np.random.default_rng(0)
    if which == "PoissonNMF":
        data = rng.poisson(0.5, (20000, 256)).astype(np.uint16)
        model = psnmf.PoissonNMF(6, max_iter=10**7, tol=0, random_state=0, n_threads=2,
                                 verbose=True)
    else:
        data = rng.poisson(0.5, (128, 160, 256)).astype(np.uint16)
        model = psnmf.PSNMF(6, bin_factor=2, max_iter_binned=10**7, max_iter=10**7, tol=0,
                            random_state=0, n_threads=2, verbose=True)
    def cpu():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    try:
        model.fit(data)
        report = {"outcome": "finished"}
    except KeyboardInterrupt:
        caught = time.monotonic()
        try:
            check_is_fitted(model)
            unfitted = False
        except NotFittedError:
            unfitted = True
        cpu_before = cpu()
        time.sleep(0.5)
        report = {
            "outcome": "KeyboardInterrupt",
            "caught": caught,
            "unfitted": unfitted,
            "fitted_attributes": sorted(a for a in vars(model) if a.endswith("_")),
            "cpu_while_idle": cpu() - cpu_before,
        }
    print("REPORT " + json.dumps(report), flush=True)
    """
)


def _interrupt(which: str) -> tuple[dict, float]:
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", CHILD, which],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    started = threading.Event()

    def drain():
        for line in proc.stdout:
            lines.append(line)
            if "iteration" in line:
                started.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        assert started.wait(120), "the fit did not start:\n" + proc.stderr.read()
        time.sleep(1.0)
        assert proc.poll() is None, "the fit ended before the signal"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(10)
    reports = [line for line in lines if line.startswith("REPORT ")]
    assert reports, f"no report; exit code {proc.returncode}:\n{proc.stderr.read()}"
    return json.loads(reports[-1][len("REPORT ") :]), sent


@pytest.mark.parametrize("which", ["PoissonNMF", "PSNMF"])
def test_ctrl_c_interrupts_a_long_fit(which):
    report, sent = _interrupt(which)
    assert report["outcome"] == "KeyboardInterrupt", report
    latency = report["caught"] - sent  # CLOCK_MONOTONIC: one clock for both processes
    assert 0 <= latency < 1.0, f"KeyboardInterrupt {latency:.3f} s after SIGINT"
    assert report["unfitted"], report
    assert report["fitted_attributes"] in ([], ["n_features_in_"]), report
    # No OpenMP thread keeps computing once the exception is out.
    assert report["cpu_while_idle"] < 0.1, report
