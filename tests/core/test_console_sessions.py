"""One-time console tickets and expiring sessions (sans-IO: time is an argument)."""

import pytest

from milagro_node.core.console_sessions import ConsoleSessions, SessionRefused


def refused(call, *args, **kwargs) -> str:
    with pytest.raises(SessionRefused) as info:
        call(*args, **kwargs)
    return info.value.reason


def test_a_ticket_works_once_and_gives_a_session():
    sessions = ConsoleSessions()
    ticket = sessions.issue_ticket(0)
    session = sessions.redeem(ticket, 1)
    sessions.check(session, 2)
    assert refused(sessions.redeem, ticket, 3) == "unknown or already used ticket"
    assert session != ticket and session.startswith("mcs_") and ticket.startswith("mct_")


def test_forged_tickets_and_sessions_are_refused():
    sessions = ConsoleSessions()
    sessions.issue_ticket(0)
    assert refused(sessions.redeem, "mct_forged", 1) == "unknown or already used ticket"
    assert refused(sessions.redeem, None, 1) == "not a console ticket"
    assert refused(sessions.check, "mcs_forged", 1) == "unknown session"
    assert refused(sessions.check, sessions.issue_ticket(1), 1) == "not a console session"


def test_an_expired_ticket_is_refused():
    sessions = ConsoleSessions(ticket_seconds=60)
    ticket = sessions.issue_ticket(0)
    assert refused(sessions.redeem, ticket, 60) == "expired ticket"


def test_a_session_ends_when_idle_but_use_keeps_it():
    sessions = ConsoleSessions(idle_seconds=10, max_seconds=100)
    session = sessions.redeem(sessions.issue_ticket(0), 0)
    for now in (9, 18, 27):
        sessions.check(session, now)
    assert sessions.expires_in(session, 27) == 10
    sessions.check(session, 36, touch=False)  # looking is not using
    assert refused(sessions.check, session, 37) == "expired session"
    assert refused(sessions.check, session, 38) == "unknown session"  # forgotten once expired


def test_a_session_ends_at_its_maximum_age_however_busy():
    sessions = ConsoleSessions(idle_seconds=10, max_seconds=25)
    session = sessions.redeem(sessions.issue_ticket(0), 0)
    for now in (8, 16, 24):
        sessions.check(session, now)
    assert refused(sessions.check, session, 25) == "expired session"


def test_logout_ends_a_session_and_the_table_is_bounded():
    sessions = ConsoleSessions(max_live=3)
    first = sessions.redeem(sessions.issue_ticket(0), 0)
    later = [sessions.redeem(sessions.issue_ticket(0), 0) for _ in range(3)]
    assert refused(sessions.check, first, 1) == "unknown session"  # the oldest went first
    sessions.end(later[0])
    assert refused(sessions.check, later[0], 1) == "unknown session"
    assert sessions.live_sessions == 2
