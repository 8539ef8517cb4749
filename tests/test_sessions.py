"""Stop's per-session flags: what a click begins, what a queued step polls, what Stop ends."""

import types

from demo.sessions import Sessions


def test_stop_ends_the_jobs_clicked_before_it_running_or_queued():
    sessions = Sessions()
    tab, other = (types.SimpleNamespace(session_hash=name) for name in ("tab", "other"))
    running = sessions.begin(tab)
    assert sessions.begin(tab) is running  # a second click while the first job runs: one Stop ends both
    sessions.begin(other)
    sessions.cancel(tab)
    assert running.is_set() and not sessions.current(other).is_set()  # another tab's job goes on
    assert sessions.current(tab).is_set()  # a step that starts after the Stop (queued, or after its rewrite) ends
    later = sessions.begin(tab)  # a click after the Stop begins afresh
    assert not later.is_set() and sessions.current(tab) is later
    assert not Sessions().current(tab).is_set()  # an API call, with no click before it, runs


def test_an_api_clients_stop_ends_its_calls_so_far_and_not_its_next_one():
    sessions = Sessions()
    client, other = (types.SimpleNamespace(session_hash=name) for name in ("client", "other"))
    first, second, elsewhere = sessions.current(client), sessions.current(client), sessions.current(other)
    sessions.cancel(client)
    assert first.is_set() and second.is_set() and not elsewhere.is_set()
    assert not sessions.current(client).is_set()  # the client's next call runs


def test_api_clients_remembered_are_bounded(monkeypatch):
    import demo.sessions

    monkeypatch.setattr(demo.sessions, "API_SESSIONS_KEPT", 3)
    monkeypatch.setattr(demo.sessions, "API_JOBS_KEPT", 2)
    sessions = Sessions()
    clients = [types.SimpleNamespace(session_hash=f"c{i}") for i in range(5)]
    for client in clients:
        for _ in range(4):
            sessions.current(client)
    assert list(sessions._api_jobs) == ["c2", "c3", "c4"] and all(len(v) == 2 for v in sessions._api_jobs.values())
