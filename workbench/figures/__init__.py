"""seaborn / matplotlib figures; every function returns its Figure so a notebook can restyle it."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.axes import Axes


def axes_for(ax: Axes | None, size: tuple[float, float]) -> Axes:
    """The caller's axes, or new ones of ``size`` inches on a fresh figure."""
    if ax is None:
        _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax
