"""The ``psnmf demo`` command end to end."""

import csv

import numpy as np

from psnmf import simulate
from psnmf.cli import main


def test_demo_writes_results_and_recovers_the_phases(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--threads", "2"]) == 0
    printed = capsys.readouterr().out
    data = simulate.demo_dataset()
    for name in data.phase_names:
        assert name in printed
    saved = np.load(tmp_path / "psnmf_demo.npz")
    assert saved["spectra"].shape == data.spectra.shape
    assert saved["maps"].shape == data.maps.shape
    np.testing.assert_allclose(saved["spectra"].sum(axis=1), 1.0, rtol=1e-12)
    rows = list(csv.reader((tmp_path / "compositions.csv").read_text().splitlines()))
    assert len(rows) >= 1 + data.n_components  # a header and one row per phase
