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
