"""Progress bars of the command line (tqdm), silent with ``quiet``.

A step whose length is unknown (reading a file, a PSNMF fit that stops on a tolerance) gets a
bar that shows the elapsed time, ticked by a background thread while the step runs (the core
releases the GIL). A bar appears only if its step lasts more than a second (tqdm's ``delay``).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time

__all__ = ["counter", "step"]

_DELAY = 1.0  # seconds before a bar is drawn
_TICK = 0.25


def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


@contextlib.contextmanager
def step(description: str, *, quiet: bool = False):
    """Show an elapsed-time bar while the ``with`` block runs."""
    tqdm = _tqdm()
    if quiet or tqdm is None:
        yield
        return
    bar = tqdm(
        desc=description,
        total=None,
        delay=_DELAY,
        file=sys.stderr,
        leave=True,
        bar_format="{desc}: {elapsed}",
    )
    done = threading.Event()
    start = time.monotonic()

    def tick():
        while not done.wait(_TICK):
            if time.monotonic() - start >= _DELAY:  # refresh() would ignore tqdm's delay
                bar.refresh()

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()
        bar.close()


@contextlib.contextmanager
def counter(description: str, total: int, *, quiet: bool = False):
    """A bar of ``total`` items; yields a function to call after each item."""
    tqdm = _tqdm()
    if quiet or tqdm is None:
        yield lambda: None
        return
    bar = tqdm(desc=description, total=total, delay=_DELAY, file=sys.stderr)
    try:
        yield lambda: bar.update(1)
    finally:
        bar.close()
