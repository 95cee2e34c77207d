"""Figures of a PSNMF result: phase maps and phase spectra with X-ray line markers.

Drawn with matplotlib's object API (``matplotlib.figure.Figure``), so no GUI backend or
pyplot state is involved: safe in scripts, servers and tests. Each phase has one colour in
both figures (its map runs from black to that colour).
"""

from __future__ import annotations

import io

import numpy as np

from . import xray

__all__ = ["PHASE_COLOURS", "maps_figure", "png_bytes", "spectra_figure"]

# Saturated, well separated hues: a phase is recognisable across figures.
PHASE_COLOURS = (
    "#e6194b",
    "#3cb44b",
    "#4363d8",
    "#f58231",
    "#911eb4",
    "#42d4f4",
    "#f032e6",
    "#bfef45",
    "#9a6324",
    "#469990",
)


def _figure(**kwargs):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("figures need matplotlib: pip install 'psnmf[io]'") from None
    return Figure(**kwargs)


def phase_colour(i: int) -> str:
    """Colour of phase ``i`` (cycles after ten phases)."""
    return PHASE_COLOURS[i % len(PHASE_COLOURS)]


def maps_figure(maps, names=None, *, pixel_size=None, pixel_units=""):
    """One panel per phase map, each from black (no counts) to the phase colour.

    Parameters
    ----------
    maps : ndarray (k, ny, nx)
        Counts per pixel.
    names : sequence of str (k,), optional
        Panel titles (default ``phase 0``, ...).
    pixel_size : float, optional
        Pixel size; with ``pixel_units`` labels the axes in physical units.
    pixel_units : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.colors import LinearSegmentedColormap

    maps = np.asarray(maps, dtype=float)
    if maps.ndim != 3:
        raise ValueError(f"maps must have shape (k, ny, nx), got {maps.shape}")
    k, ny, nx = maps.shape
    names = [f"phase {i}" for i in range(k)] if names is None else list(names)
    columns = min(k, 4)
    rows = -(-k // columns)
    fig = _figure(figsize=(3.2 * columns, 3.0 * rows), layout="constrained")
    extent = None
    if pixel_size:
        extent = (0, nx * pixel_size, ny * pixel_size, 0)
    for i in range(k):
        ax = fig.add_subplot(rows, columns, i + 1)
        cmap = LinearSegmentedColormap.from_list(f"phase{i}", ["black", phase_colour(i)])
        image = ax.imshow(maps[i], cmap=cmap, vmin=0, extent=extent, interpolation="nearest")
        ax.set_title(names[i], color=phase_colour(i), fontsize=10)
        if pixel_size:
            ax.set_xlabel(pixel_units)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(image, ax=ax, shrink=0.8, label="counts / pixel")
    return fig


def spectra_figure(spectra, energy, *, names=None, lines=(), beam_energy=200.0):
    """Phase spectra on one axis, with the X-ray lines of the quantified elements marked.

    Parameters
    ----------
    spectra : ndarray (k, C)
        Phase spectra (any scale; each is drawn as given).
    energy : ndarray (C,)
        Channel centres in keV.
    names : sequence of str (k,), optional
        Legend labels.
    lines : sequence of str
        Lines such as ``"Fe_Ka"``; every excited family of their elements inside the axis
        is marked and labelled.
    beam_energy : float
        keV, for which families are excited.

    Returns
    -------
    matplotlib.figure.Figure
    """
    spectra, energy = np.atleast_2d(np.asarray(spectra, dtype=float)), np.asarray(energy)
    if spectra.shape[1] != energy.shape[0]:
        raise ValueError(f"spectra {spectra.shape} and energy {energy.shape} disagree")
    names = [f"phase {i}" for i in range(len(spectra))] if names is None else list(names)
    fig = _figure(figsize=(10, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for i, spectrum in enumerate(spectra):
        ax.plot(energy, spectrum, color=phase_colour(i), lw=1.2, label=names[i])
    top = float(spectra.max()) if spectra.size else 1.0
    elements = dict.fromkeys(xray.parse_line(line)[0] for line in lines)
    span = (float(energy[0]), float(energy[-1]))
    for element in elements:
        for family in xray.element_families(element, beam_energy, span):
            e = xray.line_energy(f"{element}_{family}")
            ax.axvline(e, color="0.5", lw=0.6, ls="--", zorder=0)
            ax.text(
                e,
                top * 1.02,
                f"{element} {family}",
                rotation=90,
                fontsize=7,
                ha="center",
                va="bottom",
                color="0.3",
            )
    ax.set_xlim(*span)
    ax.set_ylim(0, top * 1.25)
    ax.set_xlabel("energy (keV)")
    ax.set_ylabel("fraction of counts per channel")
    ax.legend(loc="upper right", fontsize=8)
    return fig


def png_bytes(fig, dpi: int = 100) -> bytes:
    """Render a figure to PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
