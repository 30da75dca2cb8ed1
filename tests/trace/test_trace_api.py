"""The public surface of planarpy.trace."""

import planarpy.trace


def test_public_names():
    """The package exports exactly this surface."""
    assert sorted(planarpy.trace.__all__) == sorted([
        "EventTrace", "FORMAT", "MASK", "ReplayReport", "TraceDamageWarning", "TraceError",
        "TraceHealth", "default_root", "follow", "is_secret_key", "iter_events", "last_run",
        "replay_from_trace", "scrub", "trace_info", "trace_path", "trace_tail"])
    for name in planarpy.trace.__all__:
        assert hasattr(planarpy.trace, name)


def test_kinds_come_from_core():
    """The trace uses the kind table of planarpy.core.events, not a copy."""
    from planarpy.core import events
    from planarpy.trace import store
    assert store.KINDS is events.KINDS
