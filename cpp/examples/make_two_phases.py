"""Generate data/two_phases.txt: Poisson counts from a known two-phase model.

Run once (the output is committed): ``python make_two_phases.py``. Writes

- ``data/two_phases.txt``: first line ``n_rows n_cols``, then one row of counts per pixel
  (an 8 x 8 image unfolded, 64 pixels x 32 channels);
- ``data/two_phases_spectra.txt``: the two generating spectra, one per line, each summing to 1;
- ``data/two_phases_maps.txt``: the generating abundances (64 lines, 2 values, counts/pixel).
"""

from pathlib import Path

import numpy as np

N_SIDE, N_CHANNELS, COUNTS_PER_PIXEL = 8, 32, 1000.0


def gaussian(centre, width, amplitude):
    channels = np.arange(N_CHANNELS)
    return amplitude * np.exp(-0.5 * ((channels - centre) / width) ** 2)


def spectra():
    background = 0.15 * np.exp(-np.arange(N_CHANNELS) / 12.0)  # bremsstrahlung-like
    a = background + gaussian(6, 1.0, 1.0) + gaussian(18, 1.2, 0.6) + gaussian(14, 1.0, 0.2)
    b = background + gaussian(11, 1.0, 0.8) + gaussian(25, 1.3, 1.0) + gaussian(14, 1.0, 0.3)
    s = np.vstack([a, b])
    return s / s.sum(axis=1, keepdims=True)


def maps():
    # Phase A on the left, phase B on the right, a linear mixture across the middle columns.
    x = np.arange(N_SIDE)
    fraction_a = np.clip((5.0 - x) / 3.0, 0.0, 1.0)  # 1 for x <= 2, 0 for x >= 5
    fraction_a = np.broadcast_to(fraction_a, (N_SIDE, N_SIDE)).reshape(-1)
    return COUNTS_PER_PIXEL * np.column_stack([fraction_a, 1.0 - fraction_a])


def main():
    rng = np.random.default_rng(20240517)
    s, a = spectra(), maps()
    counts = rng.poisson(a @ s)
    out = Path(__file__).resolve().parent / "data"
    out.mkdir(exist_ok=True)
    with open(out / "two_phases.txt", "w") as f:
        f.write(f"{counts.shape[0]} {counts.shape[1]}\n")
        for row in counts:
            f.write(" ".join(str(int(v)) for v in row) + "\n")
    np.savetxt(out / "two_phases_spectra.txt", s, fmt="%.10e")
    np.savetxt(out / "two_phases_maps.txt", a, fmt="%.6f")


if __name__ == "__main__":
    main()
