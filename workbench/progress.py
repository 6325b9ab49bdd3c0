"""Progress bars that need no browser: text on stderr, a widget only in a Jupyter session.

``tqdm.auto`` draws an ipywidgets bar in any kernel, so a scheduled papermill run
saved it into its output as a widget that a page can only show by loading
scripts from the internet. A kernel started by a Jupyter server (JupyterLab,
Notebook) has ``JPY_SESSION_NAME`` set; papermill's and nbclient's kernels do not.
"""

from __future__ import annotations

import os


def in_jupyter_session() -> bool:
    """True in a kernel that a Jupyter server started for an open notebook (a person is looking).

    Examples
    --------
    >>> isinstance(in_jupyter_session(), bool)
    True
    """
    return bool(os.environ.get("JPY_SESSION_NAME"))


def tqdm(*args, **kwargs):
    """A ``tqdm`` progress bar: a widget in a Jupyter session, else text on stderr.

    Takes tqdm's arguments (``total``, ``desc``, ``disable``...). ``TQDM_DISABLE=1`` in the
    environment turns every bar off, even one asked for explicitly (the report sets it: a
    page is no place for a progress bar).

    Examples
    --------
    >>> sum(tqdm(range(3), disable=True))
    3
    """
    if os.environ.get("TQDM_DISABLE", "").strip().lower() in ("1", "true", "yes"):
        kwargs["disable"] = True
    if in_jupyter_session():
        from tqdm.notebook import tqdm as bar
    else:
        from tqdm.std import tqdm as bar
    return bar(*args, **kwargs)
