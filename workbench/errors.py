"""The one exception type users see, and how it is worded."""

from __future__ import annotations


class WorkbenchError(Exception):
    """A problem with the user's input that the user can fix.

    Every fatal input problem is raised as this type, never as a bare pandas or
    pm4py exception. The message names the file, the column and the row where
    they are known, and says what to do.

    Parameters
    ----------
    problem : str
        What is wrong, in one sentence.
    file, column, row : optional
        Where it is wrong. ``row`` is the 1-based data row of the input file
        (the header is row 0).
    hint : str, optional
        What the user should do about it.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        column: str | None = None,
        row: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = file
        self.column = column
        self.row = row
        self.hint = hint
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file is not None:
            where.append(f"file {self.file!s}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        if self.row is not None:
            where.append(f"row {self.row}")
        text = (", ".join(where) + ": " if where else "") + self.problem
        if self.hint:
            text += f" What to do: {self.hint}"
        return text
