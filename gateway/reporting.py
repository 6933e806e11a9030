"""Report-by-exception: which polled values are worth sending. Pure, no clock of its own.

A tag with ``report: on_change`` is sent when it moved by at least its deadband since the
value last sent, or when it has been silent for ``max_silence_s`` (a heartbeat, so a
dashboard can tell "unchanged" from "gateway gone"). Comparing with the last *sent* value,
not the last polled one, keeps a slow drift from hiding under the deadband forever.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from registermap import McTag, OpcUaTag, Tag, XgtTag

Value = bool | int | float | str


def _moved(tag: Tag | McTag | XgtTag | OpcUaTag, last: Value, value: Value) -> bool:
    if isinstance(value, (bool, str)) or isinstance(last, (bool, str)):
        return value != last
    delta = abs(float(value) - float(last))
    band = getattr(tag, "deadband", None)
    percent = getattr(tag, "deadband_percent", None)
    if percent is not None:
        band = abs(float(last)) * percent / 100.0
    if not band:
        return delta != 0
    return delta >= band


class ChangeFilter:
    def __init__(self, tags: Iterable[Tag | McTag | XgtTag | OpcUaTag]) -> None:
        self.on_change = {t.name: t for t in tags if getattr(getattr(t, "report", None), "value", None) == "on_change"}
        self._sent: dict[str, tuple[Value, int]] = {}

    def select(self, ts_ms: int, values: Mapping[str, Value]) -> dict[str, Value]:
        """The subset of ``values`` to publish for a poll at ``ts_ms``; remembers what it chose."""
        out: dict[str, Value] = {}
        for name, value in values.items():
            tag = self.on_change.get(name)
            if tag is None:
                out[name] = value
                continue
            previous = self._sent.get(name)
            silence = getattr(tag, "max_silence_s", None)
            if (
                previous is None
                or _moved(tag, previous[0], value)
                or (silence is not None and ts_ms - previous[1] >= silence * 1000)
            ):
                out[name] = value
                self._sent[name] = (value, ts_ms)
        return out
