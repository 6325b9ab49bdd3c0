"""The reference process of a profile as a Petri net, and the events conformance reads."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ..errors import WorkbenchError
from ..filters import filter_lifecycle
from ..profile import SalesProcessProfile, get_profile
from ..schema import ACTIVITY, CASE, PM4PY_NAMES, REQUIRED, TIMESTAMP

def prepared_events(log: pd.DataFrame) -> pd.DataFrame:
    """The canonical log checked and in log order, one event per activity instance.

    The reference process is a sequence of activities, so a log read with
    every lifecycle transition (``lifecycle='all'``) is compared through its
    ``complete`` events (:func:`workbench.filters.filter_lifecycle`).
    """
    if not isinstance(log, pd.DataFrame):
        raise WorkbenchError(f"conformance takes a pandas DataFrame, not {type(log).__name__}.",
                             hint="load the log with workbench.io.read_event_log.")
    log = log.rename(columns={v: k for k, v in PM4PY_NAMES.items() if v in log.columns and k not in log.columns})
    for col in REQUIRED:
        if col not in log.columns:
            raise WorkbenchError(f"the event log has no column {col!r}.", column=col,
                                 hint="load it with workbench.io.read_event_log.")
    log = filter_lifecycle(log)
    return log.sort_values([CASE, TIMESTAMP], kind="stable", ignore_index=True)


def reference_model(profile: SalesProcessProfile | str | None = None, *, open_cases: bool = False):
    """The profile's reference Petri net ``(net, initial_marking, final_marking)``.

    Stages in order, each optional stage skippable by a silent transition; loop
    activities may occur at any point before the close; a won activity, or one
    that finishes the process without an outcome (``ends``), closes after the
    last stage, a lost activity from every stage. With
    ``open_cases=True`` the net may also stop silently after any stage, so that a
    deal still open replays as fitting as long as what it did so far fits.

    Each activity labels one transition: with two transitions of one label, pm4py's
    token replay of a trace that does not fit picks one by the order of a set of
    objects hashed by address, which differs from run to run. So a loop activity
    circles on a place of its own that holds a token until the close, and a lost
    activity closes from one place that every stage reaches silently.
    """
    from pm4py.objects.petri_net.obj import Marking, PetriNet
    from pm4py.objects.petri_net.utils.petri_utils import add_arc_from_to

    profile = get_profile(profile)
    net = PetriNet(f"reference: {profile.name}")
    places = [PetriNet.Place(f"p{i}") for i in range(len(profile.stages) + 1)]
    end = PetriNet.Place("end")
    before_close = PetriNet.Place("before_close") if profile.loops else None
    losing = PetriNet.Place("losing") if profile.lost else None
    for p in [*places, end, before_close, losing]:
        if p is not None:
            net.places.add(p)

    def transition(name: str, label: str | None, src: PetriNet.Place, dst: PetriNet.Place,
                   closes: bool = False) -> None:
        t = PetriNet.Transition(name, label)
        net.transitions.add(t)
        add_arc_from_to(src, t, net)
        add_arc_from_to(t, dst, net)
        if closes and before_close is not None:
            add_arc_from_to(before_close, t, net)

    for i, stage in enumerate(profile.stages):
        transition(f"stage_{i}", stage, places[i], places[i + 1])
        if stage in profile.optional:
            transition(f"skip_{i}", None, places[i], places[i + 1])
    for j, loop in enumerate(profile.loops):
        transition(f"loop_{j}", loop, before_close, before_close)
    for j, won in enumerate(profile.won):
        transition(f"won_{j}", won, places[-1], end, closes=True)
    # Without them a process that finishes without an outcome (a repair archived) could never reach
    # the end: no case of it aligned, and its finish counted as an activity the model lacks.
    for j, finish in enumerate(profile.ends):
        transition(f"ends_{j}", finish, places[-1], end, closes=True)
    if losing is not None:
        for i, p in enumerate(places[1:], start=1):
            transition(f"to_lost_{i}", None, p, losing)
        for j, lost in enumerate(profile.lost):
            transition(f"lost_{j}", lost, losing, end, closes=True)
    if open_cases:
        for i, p in enumerate(places[1:], start=1):
            transition(f"open_{i}", None, p, end, closes=True)
    initial = Marking({places[0]: 1, **({before_close: 1} if before_close is not None else {})})
    return net, initial, Marking({end: 1})


def traces(variants: Sequence[tuple]):
    from pm4py.objects.log.obj import Event, EventLog, Trace

    key = PM4PY_NAMES[ACTIVITY]
    return EventLog([Trace([Event({key: a}) for a in v], attributes={"concept:name": str(i)})
                     for i, v in enumerate(variants)])


def is_closed(variant: tuple, profile: SalesProcessProfile) -> bool:
    return any(a in profile.closing for a in variant)
