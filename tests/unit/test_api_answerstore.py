"""Range answers shared by a host's workers (api/answerstore.py through api.routers.history.Answers):
what one worker computed another reads instead of computing; an answer is only used while fresh,
and a store that cannot be read or written costs the sharing, never the answer."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time

from api import answerstore
from api.answerstore import AnswerStore
from api.routers.history import Answers
from plant import MachineRef

KEY = ("machine", MachineRef("acme", "s", "l", "m1"), 1_700_000_000_000, 1_700_086_400_000)


def _counting(value: dict):
    calls = []

    def compute() -> dict:
        calls.append(1)
        return value

    return compute, calls


def test_an_answer_one_worker_computed_is_read_by_another_not_computed_again(tmp_path):
    shared = AnswerStore(tmp_path / "answers.db")
    first, second = Answers(), Answers()  # two workers: their own memory, one file
    compute_a, calls_a = _counting({"worker": "a"})
    compute_b, calls_b = _counting({"worker": "b"})
    body = asyncio.run(first.get(KEY, compute_a, shared=shared))
    assert json.loads(body) == {"worker": "a"} and calls_a == [1]
    assert asyncio.run(second.get(KEY, compute_b, shared=shared)) == body
    assert calls_b == []  # read, not computed
    assert second.fresh(KEY) == body  # and kept in that worker's memory from then on


def test_without_a_shared_store_each_worker_computes_its_own(tmp_path):
    first, second = Answers(), Answers()
    compute_a, calls_a = _counting({"worker": "a"})
    compute_b, calls_b = _counting({"worker": "b"})
    asyncio.run(first.get(KEY, compute_a))
    assert json.loads(asyncio.run(second.get(KEY, compute_b))) == {"worker": "b"} and calls_b == [1]


def test_another_workers_answer_older_than_the_freshness_is_computed_again(tmp_path):
    path = tmp_path / "answers.db"
    shared = AnswerStore(path)
    shared.put(repr(KEY), b'{"old":true}')
    with sqlite3.connect(path) as db:  # computed 20 s ago, for an answer fresh for 15 s
        db.execute("UPDATE answers SET at = ?", (time.time() - 20,))
    compute, calls = _counting({"new": True})
    assert json.loads(asyncio.run(Answers(ttl_s=15).get(KEY, compute, shared=shared))) == {"new": True}
    assert calls == [1]
    found = shared.get(repr(KEY), 15)
    assert found is not None and found[1] == b'{"new":true}'  # the new one replaced it for the other workers


def test_a_read_answer_expires_when_it_would_have_in_the_worker_that_computed_it(tmp_path):
    path = tmp_path / "answers.db"
    shared = AnswerStore(path)
    shared.put(repr(KEY), b'{"a":1}')
    with sqlite3.connect(path) as db:
        db.execute("UPDATE answers SET at = ?", (time.time() - 10,))
    answers = Answers(ttl_s=15)
    compute, calls = _counting({"a": 2})
    assert asyncio.run(answers.get(KEY, compute, shared=shared)) == b'{"a":1}' and calls == []
    kept_at, _ = answers._entries[KEY]
    assert time.monotonic() - kept_at >= 10  # 10 s of its 15 are gone already, here as there


def test_a_store_that_cannot_be_opened_costs_the_sharing_not_the_answer(tmp_path, caplog):
    (tmp_path / "answers.db").mkdir()  # a directory where the file should be: sqlite cannot open it
    shared = AnswerStore(tmp_path / "answers.db")
    compute, calls = _counting({"ok": True})
    with caplog.at_level(logging.WARNING, logger="api.answerstore"):
        body = asyncio.run(Answers().get(KEY, compute, shared=shared))
        asyncio.run(Answers().get(KEY, compute, shared=shared))
    assert json.loads(body) == {"ok": True} and calls == [1, 1]
    warnings = [r.getMessage() for r in caplog.records if "shared_answers_unavailable" in r.getMessage()]
    assert len(warnings) == 1 and str(tmp_path / "answers.db") in warnings[0]  # once, naming the file


def test_old_entries_are_deleted_as_workers_write(tmp_path, monkeypatch):
    monkeypatch.setattr(answerstore, "PRUNE_EVERY", 2)
    path = tmp_path / "answers.db"
    shared = AnswerStore(path, keep_s=60)
    shared.put("old", b"1")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE answers SET at = ?", (time.time() - 120,))
    shared.put("new", b"2")  # the second write prunes
    with sqlite3.connect(path) as db:
        assert [k for (k,) in db.execute("SELECT key FROM answers ORDER BY key")] == ["new"]
