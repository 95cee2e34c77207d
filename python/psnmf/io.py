"""Read EDX spectrum images from microscope files; write psnmf results.

Reading goes through RosettaSciIO (``rsciio``, the file layer of HyperSpy): the file's
extension selects the candidate readers from ``rsciio.IO_PLUGINS``, each returns signal
dictionaries (``data``, ``axes``, ``metadata``) in HyperSpy's layout, and :func:`load` picks the
EDX spectrum image among them (a Bruker .bcf or a Velox .emd also holds images). Metadata are
read where HyperSpy/exspy keep them: ``Acquisition_instrument.<TEM|SEM>`` for the beam energy,
the stage tilt and ``Detector.EDS`` (elevation and azimuth angles, live time,
``energy_resolution_MnKa``), and ``Sample.elements``.

Writing: :func:`save_results` writes spectra and maps to .hspy (HyperSpy opens them as an EDS
signal and a Signal2D stack), .npz and CSV. Everything here needs the ``io`` extra
(``pip install "psnmf[io]"``).
"""

from __future__ import annotations

import csv
import importlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["EDXDataset", "load", "save_results", "take_off_angle"]

_ENERGY_UNITS = {"ev": 1e-3, "kev": 1.0}
_INSTRUMENTS = ("TEM", "SEM")


@dataclass
class EDXDataset:
    """An EDX spectrum image and the metadata psnmf uses.

    Attributes
    ----------
    counts : ndarray or dask array (ny, nx, C)
        Counts per channel, HyperSpy layout; dask when read lazily.
    energy : ndarray (C,)
        Channel centres in keV.
    beam_energy : float or None
        Beam energy in keV.
    elevation_angle, take_off_angle : float or None
        Detector elevation and X-ray take-off angle in degrees (the take-off angle includes
        the stage tilt when the file gives one).
    live_time : float or None
        Live time in s (as stored: of the whole map or per pixel, depending on the vendor).
    elements : tuple of str
        Elements listed in the file (``Sample.elements``), possibly empty.
    energy_resolution_MnKa : float or None
        Detector FWHM at Mn Kα in eV.
    signal_type : str
        HyperSpy signal type of the data (e.g. ``"EDS_TEM"``; ``""`` if not set).
    microscope : str
        ``"TEM"`` or ``"SEM"``: where the metadata were read from.
    navigation_axes : list of dict
        The (y, x) axes as RosettaSciIO dictionaries (``name``, ``scale``, ``offset``,
        ``units``, ``size``), kept to write results on the same pixel grid.
    title : str
    path : Path
    metadata : dict
        The full HyperSpy metadata tree of the signal.
    """

    counts: object
    energy: np.ndarray
    beam_energy: float | None = None
    elevation_angle: float | None = None
    take_off_angle: float | None = None
    live_time: float | None = None
    elements: tuple = ()
    energy_resolution_MnKa: float | None = None
    signal_type: str = ""
    microscope: str = "TEM"
    navigation_axes: list = field(default_factory=list)
    title: str = ""
    path: Path | None = None
    metadata: dict = field(default_factory=dict, repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape ``(ny, nx)``."""
        return tuple(self.counts.shape[:2])

    @property
    def lazy(self) -> bool:
        """True when ``counts`` is a dask array."""
        return not isinstance(self.counts, np.ndarray)

    def __repr__(self) -> str:
        ny, nx, c = self.counts.shape
        kind = "dask" if self.lazy else "numpy"
        return (
            f"EDXDataset({self.title!r}, {ny} x {nx} pixels x {c} channels ({kind}), "
            f"{self.energy[0]:.3f}-{self.energy[-1]:.3f} keV, beam {self.beam_energy} keV, "
            f"take-off {self.take_off_angle} deg, elements {list(self.elements)})"
        )


def _rsciio():
    try:
        return importlib.import_module("rsciio")
    except ImportError:
        raise ImportError(
            "reading microscope files needs RosettaSciIO: pip install 'psnmf[io]'"
        ) from None


def _readers_for(path: Path) -> list[dict]:
    extension = path.suffix.lstrip(".").lower()
    plugins = [
        p for p in _rsciio().IO_PLUGINS if extension in (e.lower() for e in p["file_extensions"])
    ]
    if not plugins:
        raise ValueError(
            f"path: no RosettaSciIO reader for the extension {path.suffix!r} of {path.name}"
        )
    return plugins


def _get(tree: dict, dotted: str):
    for key in dotted.split("."):
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def take_off_angle(elevation_angle, azimuth_angle=0.0, tilt_alpha=0.0, tilt_beta=0.0) -> float:
    """X-ray take-off angle: angle between the specimen surface and the detector direction.

    The detector direction is at ``elevation_angle`` above the untilted specimen plane and at
    ``azimuth_angle`` from the x axis. The specimen normal, tilted by ``tilt_alpha`` (about y) and
    ``tilt_beta`` (about x), is ``(sin a cos b, sin b, cos a cos b)``: a positive alpha tilt turns
    the specimen towards a detector at azimuth 0 (exspy's convention).

    Parameters
    ----------
    elevation_angle, azimuth_angle, tilt_alpha, tilt_beta : float
        Degrees.

    Returns
    -------
    float
        Degrees.
    """
    el, az, a, b = np.radians([elevation_angle, azimuth_angle, tilt_alpha, tilt_beta])
    detector = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    # specimen normal: z turned by beta about x, then by alpha about the tilted y axis
    normal = np.array([np.sin(a) * np.cos(b), np.sin(b), np.cos(a) * np.cos(b)])
    return float(np.degrees(np.arcsin(np.clip(detector @ normal, -1.0, 1.0))))


def _energy_axis(axis: dict, n_channels: int) -> np.ndarray:
    units = str(axis.get("units") or "").strip()
    factor = _ENERGY_UNITS.get(units.lower())
    if factor is None:
        raise ValueError(
            f"the spectral axis {axis.get('name', '')!r} has units {units!r}, not eV or keV: "
            "not an EDX energy axis (set the units of the signal axis in HyperSpy and save "
            "as .hspy)"
        )
    if "axis" in axis and axis["axis"] is not None:
        energy = np.asarray(axis["axis"], dtype=float)
    else:
        scale, offset = _number(axis.get("scale", 1.0)), _number(axis.get("offset", 0.0))
        if scale is None or offset is None or scale <= 0:
            raise ValueError(f"the energy axis has an invalid scale/offset: {axis}")
        energy = offset + scale * np.arange(n_channels)
    return energy * factor


def _is_edx(signal: dict) -> bool:
    signal_type = str(_get(signal["metadata"], "Signal.signal_type") or "").upper()
    if signal_type:  # typed: EDS_TEM, EDS_SEM, EDS; not EELS, CL, ...
        return signal_type.startswith("EDS")
    spectral = [a for a in signal["axes"] if not a.get("navigate", False)]
    energy_units = str(spectral[-1].get("units") or "").lower() if spectral else ""
    return len(spectral) == 1 and energy_units in _ENERGY_UNITS


def _describe(signal: dict) -> str:
    signal_type = _get(signal["metadata"], "Signal.signal_type") or "untyped"
    return f"{signal_type} {tuple(np.shape(signal['data']))}"


def _as_cube(signal: dict, path: Path):
    data, axes = signal["data"], signal["axes"]
    spectral = [i for i, a in enumerate(axes) if not a.get("navigate", False)]
    if len(spectral) != 1 or spectral[0] != len(axes) - 1:
        raise ValueError(
            f"{path.name}: the EDX signal must have one spectral axis, the last; got axes "
            f"{[a.get('name') for a in axes]}"
        )
    if data.ndim > 3:
        raise ValueError(
            f"{path.name}: a {data.ndim}-D EDX dataset {data.shape} (e.g. frames or a tilt "
            "series): psnmf.load reads one spectrum image (ny, nx, C); read it with "
            "RosettaSciIO and pass one frame or the summed frames"
        )
    navigation = [dict(a) for a in axes[:-1]]
    # a single spectrum or a line scan become (1, 1, C) or (1, n, C)
    while data.ndim < 3:
        data = data[None]
        navigation.insert(
            0, {"name": "y", "size": 1, "scale": 1.0, "offset": 0.0, "units": "", "navigate": True}
        )
    return data, navigation


def load(path, *, lazy: bool = False) -> EDXDataset:
    """Read an EDX spectrum image from any file RosettaSciIO reads.

    Bruker .bcf, Velox and NCEM .emd, HyperSpy .hspy/.zspy, Ripple .rpl/.raw, EDAX .spd,
    JEOL .pts, DigitalMicrograph .dm3/.dm4, EMSA .msa and the other RosettaSciIO formats.

    Parameters
    ----------
    path : str or Path
        The file.
    lazy : bool
        Read the counts as a dask array (readers that support it), without loading them.

    Returns
    -------
    EDXDataset
        ``counts`` (ny, nx, C) (a single spectrum is (1, 1, C)), ``energy`` (C,) in keV and
        the metadata the quantification needs.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If no reader can read the file, or it holds no EDX spectrum image (e.g. only images,
        or a spectral axis without eV/keV units).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no such file {path}")
    errors, signals = [], None
    for plugin in _readers_for(path):
        reader = importlib.import_module(plugin["api"]).file_reader
        try:
            signals = reader(str(path), lazy=lazy)
            break
        except Exception as err:  # readers raise anything on a file they cannot parse
            errors.append(f"{plugin['name']}: {type(err).__name__}: {err}")
    if signals is None:
        raise ValueError(f"path: {path.name} could not be read: " + "; ".join(errors))
    candidates = [s for s in signals if _is_edx(s)]
    if not candidates:
        found = ", ".join(_describe(s) for s in signals) or "nothing"
        raise ValueError(
            f"{path.name} holds no EDX spectrum image (a signal with an energy axis in eV or "
            f"keV); found: {found}"
        )
    # the largest EDX signal is the spectrum image (a .bcf or .emd may add sum spectra)
    signal = max(candidates, key=lambda s: int(np.prod(np.shape(s["data"]))))
    data, navigation = _as_cube(signal, path)
    energy = _energy_axis(signal["axes"][-1], data.shape[-1])
    if np.any(np.diff(energy) <= 0):
        raise ValueError(f"{path.name}: the energy axis is not increasing")
    if not lazy:
        data = np.asarray(data)
    return _dataset(data, energy, signal["metadata"], navigation, path)


def _dataset(counts, energy, metadata, navigation, path) -> EDXDataset:
    instrument = next(
        (m for m in _INSTRUMENTS if _get(metadata, f"Acquisition_instrument.{m}")), "TEM"
    )
    root = f"Acquisition_instrument.{instrument}"

    def value(key):
        return _number(_get(metadata, f"{root}.{key}"))

    elevation = value("Detector.EDS.elevation_angle")
    tilt = value("Stage.tilt_alpha") or 0.0
    toa = None
    if elevation is not None:
        toa = take_off_angle(
            elevation,
            value("Detector.EDS.azimuth_angle") or 0.0,
            tilt,
            value("Stage.tilt_beta") or 0.0,
        )
    elements = _get(metadata, "Sample.elements")
    elements = tuple(str(e) for e in np.atleast_1d(elements)) if elements is not None else ()
    return EDXDataset(
        counts=counts,
        energy=energy,
        beam_energy=value("beam_energy"),
        elevation_angle=elevation,
        take_off_angle=toa,
        live_time=value("Detector.EDS.live_time"),
        elements=elements,
        energy_resolution_MnKa=value("Detector.EDS.energy_resolution_MnKa"),
        signal_type=str(_get(metadata, "Signal.signal_type") or ""),
        microscope=instrument,
        navigation_axes=navigation,
        title=str(_get(metadata, "General.title") or path.stem),
        path=path,
        metadata=metadata,
    )


# ------------------------------------------------------------------------------ writing


def _energy_axis_dict(energy) -> dict:
    energy = np.asarray(energy, dtype=float)
    scale = float(energy[1] - energy[0]) if energy.size > 1 else 1.0
    return {
        "name": "Energy",
        "size": int(energy.size),
        "scale": scale,
        "offset": float(energy[0]),
        "units": "keV",
        "navigate": False,
    }


def _signal_dict(data, axes, metadata) -> dict:
    return {
        "data": np.ascontiguousarray(data),
        "axes": axes,
        "metadata": metadata,
        "original_metadata": {},
        "learning_results": {},
        "attributes": {"_lazy": False, "ragged": False},
        "models": {},
        "package_info": {},
        "tmp_parameters": {},
    }


def _navigation_axes(dataset: EDXDataset | None, image_shape) -> list[dict]:
    if dataset is not None and [a["size"] for a in dataset.navigation_axes] == list(image_shape):
        return [dict(a, navigate=False) for a in dataset.navigation_axes]
    return [
        {"name": n, "size": int(s), "scale": 1.0, "offset": 0.0, "units": "px", "navigate": False}
        for n, s in zip(("y", "x"), image_shape)
    ]


def _spectra_metadata(dataset: EDXDataset | None, title: str) -> dict:
    metadata = {"General": {"title": title}, "Signal": {"signal_type": "EDS_TEM"}}
    if dataset is None:
        return metadata
    instrument = {}
    if dataset.beam_energy is not None:
        instrument["beam_energy"] = dataset.beam_energy
    eds = {
        key: getattr(dataset, key)
        for key in ("elevation_angle", "energy_resolution_MnKa")
        if getattr(dataset, key) is not None
    }
    if eds:
        instrument["Detector"] = {"EDS": eds}
    if instrument:
        metadata["Acquisition_instrument"] = {"TEM": instrument}
    if dataset.elements:
        metadata["Sample"] = {"elements": list(dataset.elements)}
    return metadata


def save_results(out_dir, spectra, maps, energy, *, dataset=None, stem="psnmf") -> dict:
    """Write phase spectra and maps to .hspy, .npz and CSV.

    Parameters
    ----------
    out_dir : str or Path
        Directory (created if missing).
    spectra : ndarray (k, C)
        Phase spectra, rows summing to 1.
    maps : ndarray (k, ny, nx)
        Phase maps in counts per pixel.
    energy : ndarray (C,)
        Channel centres in keV, uniformly spaced.
    dataset : EDXDataset, optional
        The source: its pixel axes and metadata (beam energy, detector, elements) go into the
        .hspy files.
    stem : str
        File name prefix.

    Returns
    -------
    dict
        ``{"spectra_hspy", "maps_hspy", "npz", "spectra_csv"}`` → Path. HyperSpy (with exspy)
        opens ``*_spectra.hspy`` as an ``EDSTEMSpectrum`` stack of k spectra and
        ``*_maps.hspy`` as a ``Signal2D`` stack of k maps.
    """
    spectra, maps, energy = np.asarray(spectra), np.asarray(maps), np.asarray(energy)
    if spectra.ndim != 2 or maps.ndim != 3 or spectra.shape[0] != maps.shape[0]:
        raise ValueError(
            f"spectra (k, C) and maps (k, ny, nx) must agree, got {spectra.shape}, {maps.shape}"
        )
    if energy.shape != spectra.shape[1:]:
        raise ValueError(f"energy has shape {energy.shape}, spectra {spectra.shape}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    k = spectra.shape[0]
    component = {
        "name": "component",
        "size": k,
        "scale": 1.0,
        "offset": 0.0,
        "units": "",
        "navigate": True,
    }
    hspy = importlib.import_module(_readers_by_name("HSPY")["api"])
    paths = {
        "spectra_hspy": out / f"{stem}_spectra.hspy",
        "maps_hspy": out / f"{stem}_maps.hspy",
        "npz": out / f"{stem}_results.npz",
        "spectra_csv": out / f"{stem}_spectra.csv",
    }
    spectra_signal = _signal_dict(
        spectra,
        [component, _energy_axis_dict(energy)],
        _spectra_metadata(dataset, f"{stem} phase spectra"),
    )
    hspy.file_writer(str(paths["spectra_hspy"]), spectra_signal, show_progressbar=False)
    maps_signal = _signal_dict(
        maps,
        [component, *_navigation_axes(dataset, maps.shape[1:])],
        {
            "General": {"title": f"{stem} phase maps (counts per pixel)"},
            "Signal": {"signal_type": ""},
        },
    )
    hspy.file_writer(str(paths["maps_hspy"]), maps_signal, show_progressbar=False)
    np.savez(paths["npz"], energy=energy, spectra=spectra, maps=maps)
    with open(paths["spectra_csv"], "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["energy_keV", *(f"phase_{i}" for i in range(k))])
        for e, row in zip(energy, spectra.T):
            writer.writerow([repr(float(e)), *(repr(float(v)) for v in row)])
    return paths


def _readers_by_name(name: str) -> dict:
    return next(p for p in _rsciio().IO_PLUGINS if p["name"] == name)
