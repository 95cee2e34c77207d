"""One self-contained HTML report of a PSNMF run.

Everything is inside the file: figures as base64 PNG ``data:`` URIs, tables as HTML, no
scripts, no external style sheets or fonts. It can be mailed, archived or opened offline.
"""

from __future__ import annotations

import base64
import html
import platform
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata

import numpy as np

__all__ = ["package_versions", "render_report", "write_report"]

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td.name, th.name { text-align: left; }
img { max-width: 100%; display: block; margin: 0.5em 0; }
.note { color: #a33; }
"""

_PACKAGES = (
    "psnmf",
    "numpy",
    "scipy",
    "scikit-learn",
    "xraydb",
    "rosettasciio",
    "hyperspy",
    "exspy",
    "matplotlib",
)


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages a run depends on (``"-"`` if not installed)."""
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "-"
    return versions


def _image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(header, rows) -> str:
    head = "".join(
        f'<th class="name">{html.escape(str(h))}</th>'
        if i == 0
        else f"<th>{html.escape(str(h))}</th>"
        for i, h in enumerate(header)
    )
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="name">{html.escape(str(v))}</td>'
            if i == 0
            else f"<td>{html.escape(str(v))}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _composition_table(names, quantification) -> str:
    at = np.atleast_2d(quantification.atomic_percent)
    sd = np.atleast_2d(quantification.atomic_percent_std)
    wt = np.atleast_2d(quantification.weight_percent)
    header = [
        "phase",
        *(f"{line} at%" for line in quantification.lines),
        *(f"{line} wt%" for line in quantification.lines),
    ]
    rows = []
    for i, name in enumerate(names):
        rows.append(
            [
                name,
                *(f"{a:.2f} ± {s:.2f}" for a, s in zip(at[i], sd[i])),
                *(f"{w:.2f}" for w in wt[i]),
            ]
        )
    return _table(header, rows)


def render_report(
    *,
    title,
    source,
    names,
    maps_png,
    spectra_png,
    phase_rows,
    quantification=None,
    parameters=None,
    notes=(),
    versions=None,
) -> str:
    """The report as an HTML string.

    Parameters
    ----------
    title : str
    source : dict
        Description of the input (file, shape, energy range, metadata) → shown as a table.
    names : sequence of str (k,)
        Phase names.
    maps_png, spectra_png : bytes
        PNG figures (:mod:`psnmf.figures`).
    phase_rows : sequence of sequences
        One row per phase: name, total counts, share of counts (%).
    quantification : QuantificationResult, optional
        Compositions of the phases (one row per phase).
    parameters : dict, optional
        Parameters of the run.
    notes : sequence of str
        Warnings shown at the top (e.g. assumed k-factors).
    versions : dict, optional
        Package versions (default :func:`package_versions`).

    Returns
    -------
    str
    """
    versions = package_versions() if versions is None else versions
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>psnmf report, {created}.</p>",
    ]
    parts += [f'<p class="note">{html.escape(n)}</p>' for n in notes]
    parts += ["<h2>Input</h2>", _table(["quantity", "value"], source.items())]
    parts += ["<h2>Phase maps</h2>", _image(maps_png, "phase maps")]
    parts += ["<h2>Phase spectra</h2>", _image(spectra_png, "phase spectra")]
    parts += [
        "<h2>Phases</h2>",
        _table(["phase", "counts", "share of counts (%)"], phase_rows),
    ]
    if quantification is not None:
        parts += [
            "<h2>Composition (Cliff–Lorimer)</h2>",
            _composition_table(names, quantification),
            _table(
                ["line", "k-factor"],
                zip(quantification.lines, (f"{k:.4g}" for k in quantification.k_factors)),
            ),
        ]
    if parameters:
        parts += ["<h2>Parameters</h2>", _table(["parameter", "value"], parameters.items())]
    parts += ["<h2>Versions</h2>", _table(["package", "version"], versions.items())]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path, **kwargs) -> str:
    """Write :func:`render_report` to ``path`` (UTF-8). Returns the HTML."""
    text = render_report(**kwargs)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return text
