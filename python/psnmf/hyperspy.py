"""psnmf next to HyperSpy: PSNMF on a signal, PoissonNMF in ``signal.decomposition``.

Poisson NMF fits counts. HyperSpy's ``normalize_poissonian_noise`` (Keenan–Kotula scaling,
and exspy's default for ``EDS_TEM``/``EDS_SEM`` signals) divides the counts by
``sqrt(pixel sum × channel sum)`` before the estimator sees them: the rescaled data are no
longer Poisson, so the likelihood PoissonNMF maximises is the wrong one. Pass
``normalize_poissonian_noise=False``::

    s.decomposition(algorithm=psnmf.PoissonNMF(k), output_dimension=k,
                    normalize_poissonian_noise=False)

or use :func:`decomposition`, which does so (and skips exspy's default vacuum mask) and warns
when asked to rescale. Needs the ``io`` extra (hyperspy, exspy).
"""

from __future__ import annotations

import warnings

import numpy as np

from .nmf import PoissonNMF
from .pipeline import PSNMF

__all__ = ["decomposition", "energy_axis", "pansharpen"]

_RESCALE_WARNING = (
    "normalize_poissonian_noise=True rescales the counts (Keenan-Kotula), so they are no "
    "longer Poisson and Poisson NMF would fit the wrong likelihood. exspy turns it on by "
    "default for EDS signals: pass normalize_poissonian_noise=False."
)


def _check_spectrum_image(signal):
    axes = getattr(signal, "axes_manager", None)
    if axes is None:
        raise TypeError(f"signal must be a HyperSpy signal, got {type(signal).__name__}")
    if axes.signal_dimension != 1:
        raise ValueError(f"signal must have one signal (energy) axis, got {axes.signal_dimension}")
    if axes.navigation_dimension != 2:
        raise ValueError(
            "signal must be a spectrum image with two navigation axes (x, y), got "
            f"{axes.navigation_dimension}"
        )
    if hasattr(signal, "_data_before_treatments"):
        warnings.warn(
            "the signal's data were rescaled by a HyperSpy pre-treatment (e.g. "
            "normalize_poissonian_noise); call signal.undo_treatments() to fit the counts",
            UserWarning,
            stacklevel=3,
        )


def energy_axis(signal) -> np.ndarray:
    """Channel centres of a signal's energy axis in keV.

    Parameters
    ----------
    signal : hyperspy signal with one signal axis in eV or keV

    Returns
    -------
    ndarray (C,)
        keV.
    """
    axis = signal.axes_manager.signal_axes[0]
    units = str(axis.units).strip().lower()
    if units not in ("ev", "kev"):
        raise ValueError(
            f"signal: the energy axis has units {axis.units!r}; set them to 'keV' or 'eV'"
        )
    return np.asarray(axis.axis, dtype=float) * (1e-3 if units == "ev" else 1.0)


def decomposition(
    signal, n_components, *, normalize_poissonian_noise=False, navigation_mask=None, **kwargs
):
    """Run ``signal.decomposition`` with :class:`psnmf.PoissonNMF`, on the counts.

    Parameters
    ----------
    signal : hyperspy Signal1D (e.g. exspy EDSTEMSpectrum), any navigation shape
    n_components : int
    normalize_poissonian_noise : bool, default False
        Passed on; True warns (module docstring), it is exspy's default.
    navigation_mask : default None
        Passed on. exspy's EDS default (1.0) masks "vacuum" pixels; None keeps every pixel.
        Integer counts are converted to float32 in place (HyperSpy decomposes floats only).
    **kwargs
        Parameters of :class:`psnmf.PoissonNMF` (``random_state``, ``max_iter``, ...).

    Returns
    -------
    PoissonNMF
        The fitted estimator; factors and loadings are in ``signal.learning_results``.
    """
    if normalize_poissonian_noise:
        warnings.warn(_RESCALE_WARNING, UserWarning, stacklevel=2)
    if not np.issubdtype(signal.data.dtype, np.floating):
        signal.change_dtype("float32")  # HyperSpy decomposes floats; exact up to 2**24
    estimator = PoissonNMF(n_components, **kwargs)
    signal.decomposition(
        normalize_poissonian_noise=normalize_poissonian_noise,
        navigation_mask=navigation_mask,
        algorithm=estimator,
        output_dimension=n_components,
        print_info=False,
    )
    return estimator


def pansharpen(signal, n_components, *, normalize_poissonian_noise=False, **psnmf_kwargs):
    """PSNMF of a HyperSpy spectrum image.

    Parameters
    ----------
    signal : hyperspy Signal1D, navigation (x, y), data (ny, nx, C) counts
        E.g. an exspy ``EDSTEMSpectrum``; a lazy signal is loaded into memory.
    n_components : int
        Number of phases k.
    normalize_poissonian_noise : bool, default False
        Accepted for symmetry with ``decomposition``; True is ignored with a warning,
        since PSNMF fits the counts themselves.
    **psnmf_kwargs
        Parameters of :class:`psnmf.PSNMF` (``bin_factor``, ``random_state``, ...).

    Returns
    -------
    spectra : signal of the input's class, navigation (k,), signal axis = the input's
        Phase spectra, rows summing to 1, with the input's energy axis and metadata.
    maps : hyperspy Signal2D, navigation (k,), signal axes = the input's navigation axes
        Phase maps in counts per pixel.
    model : PSNMF
        The fitted estimator.
    """
    import hyperspy.api as hs

    if normalize_poissonian_noise:
        warnings.warn(
            _RESCALE_WARNING + " pansharpen ignores it and fits the counts.",
            UserWarning,
            stacklevel=2,
        )
    _check_spectrum_image(signal)
    energy_axis(signal)  # validates the units before a long fit
    counts = np.asarray(signal.data)
    model = PSNMF(n_components, **psnmf_kwargs).fit(counts)

    source = signal.axes_manager.signal_axes[0].get_axis_dictionary()
    source["navigate"] = False
    component = {"name": "component", "size": n_components, "navigate": True}
    spectra = hs.signals.Signal1D(
        model.spectra_,
        axes=[component, source],
        metadata=signal.metadata.deepcopy().as_dictionary(),
    )
    # back to the input's signal type (EDS_TEM -> exspy's EDSTEMSpectrum), never lazy
    spectra.set_signal_type(signal.metadata.get_item("Signal.signal_type", ""))
    spectra.metadata.General.title = f"PSNMF spectra of {signal.metadata.General.title}"

    maps = hs.signals.Signal2D(model.maps_)
    maps.axes_manager.navigation_axes[0].name = "component"
    for source, target in zip(signal.axes_manager.navigation_axes, maps.axes_manager.signal_axes):
        target.name, target.units = source.name, source.units
        target.scale, target.offset = source.scale, source.offset
    maps.metadata.General.title = f"PSNMF maps of {signal.metadata.General.title}"
    return spectra, maps, model
