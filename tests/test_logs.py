"""JSON logs carry the delivery and the run a line is about."""

from __future__ import annotations

import json
import logging

from service.logs import JsonFormatter, _Ids, log_context, set_run


def _line(message: str) -> dict:
    record = logging.LogRecord("forgeflow.test", logging.INFO, __file__, 1, message, (), None)
    _Ids().filter(record)
    return json.loads(JsonFormatter().format(record))


def test_every_line_names_its_delivery_and_run_and_only_within_the_work():
    with log_context(delivery=12):
        assert _line("took it") | {"time": ""} == {
            "time": "",
            "level": "INFO",
            "logger": "forgeflow.test",
            "message": "took it",
            "delivery": 12,
            "run": None,
        }
        set_run(7)
        assert (_line("submitted")["delivery"], _line("submitted")["run"]) == (12, 7)
    after = _line("next task")
    assert (after["delivery"], after["run"]) == (None, None)
    set_run(9)  # outside of any delivery's or run's work: names nothing
    assert _line("sweeping")["run"] is None
