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
