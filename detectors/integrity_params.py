"""Parameter readers of the log-integrity rule types (``sequence_gap``, ``silence``): every
parameter has a default, so ``params`` may be left out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from detectors.model import FIELD_NAME, SILENCE_CLOCKS, Params, SequenceGapParams, SilenceParams
from shipper.yamlnodes import Section

Reader = Section[Any]


def field_name(r: Reader, key: str, default: str) -> str:
    name = r.string(key, default=default)
    if not FIELD_NAME.match(name):
        r.fail(r.keys[key][1], f"{key}: {name!r} is not a valid field name")
    return name


def _sequence_gap(r: Reader) -> SequenceGapParams:
    r.check(("grace", "reset_tolerance", "host_field", "channel_field"))
    d = SequenceGapParams()
    return SequenceGapParams(
        grace=r.duration("grace", default=d.grace),
        reset_tolerance=r.integer("reset_tolerance", default=d.reset_tolerance, minimum=1),
        host_field=field_name(r, "host_field", d.host_field),
        channel_field=field_name(r, "channel_field", d.channel_field),
    )


def _silence(r: Reader) -> SilenceParams:
    keys = ("history", "bucket", "window", "fraction", "min_history", "min_expected", "clock", "host_field")
    r.check(keys)
    d = SilenceParams()
    fraction = d.fraction
    if (fn := r.get("fraction")) is not None:
        fraction = r.reader.number(fn, "'fraction'", maximum=1.0, default=d.fraction)
    clock = r.string("clock", default=d.clock)
    if clock not in SILENCE_CLOCKS:
        r.fail(r.keys["clock"][1], f"clock {clock!r} is not one of {', '.join(SILENCE_CLOCKS)}")
    p = SilenceParams(
        history=r.duration("history", default=d.history),
        bucket=r.duration("bucket", default=d.bucket),
        window=r.duration("window", default=d.window),
        fraction=fraction,
        min_history=r.duration("min_history", default=d.min_history),
        min_expected=r.integer("min_expected", default=d.min_expected, minimum=1),
        clock=cast(Any, clock),
        host_field=field_name(r, "host_field", d.host_field),
    )
    if p.history < 2 * p.bucket or p.history > 10_000 * p.bucket:
        r.fail(r.node, "silence: 'history' must span from 2 to 10,000 'bucket's")
    return p


#: parameter classes whose fields all have defaults: ``params`` may be left out
DEFAULTED: dict[type[Any], Callable[[Reader], Params]] = {
    SequenceGapParams: _sequence_gap,
    SilenceParams: _silence,
}
