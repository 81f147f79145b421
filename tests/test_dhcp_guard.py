"""The rogue-server guard never says "clear" without a probe sent and answered by silence (issue 25 item 1).

The guard's other behaviours (probe shape, refuse/warn, forgetting servers) are in tests/test_dhcp_server.py.
"""
from __future__ import annotations

from appliance.dhcp import guard as guardmod
from appliance.dhcp.guard import Guard
from tests.test_dhcp_server import STATION, offer_from

W = guardmod.PROBE_WINDOW


def test_a_probe_that_could_not_be_sent_is_unknown_never_clear():
    g = Guard("refuse", STATION, 60)
    g.probe(0.0)
    events = g.not_sent(0.0, "Network is unreachable")
    assert events and events[0][1]["status"] == "unknown"
    assert events[0][1]["not_probed"] == "Network is unreachable" and events[0][1]["serving"] is False
    # the window of a probe never sent closes on nothing: no "clear", no offers
    assert g.tick(W + 1) == [] and g.status_name(W + 1) == "unknown" and not g.may_offer(W + 1)
    # the same failure again is no news
    assert not g.due(W - 1) and g.due(W)
    g.probe(W)
    assert g.not_sent(W, "Network is unreachable") == []


def test_once_a_probe_is_sent_and_unanswered_it_is_clear():
    g = Guard("refuse", STATION, 60)
    g.probe(0.0)
    g.not_sent(0.0, "Network is unreachable")
    assert g.due(guardmod.RETRY_UNSENT)                      # retried soon, not a whole interval later
    g.probe(10.0)
    assert g.status_name(10.0) == "unknown" and not g.may_offer(10.0)      # sent, but not answered by silence yet
    events = g.tick(10.0 + W + 0.1)
    assert events[-1][1]["status"] == "clear" and events[-1][1]["not_probed"] is None
    assert g.may_offer(10.0 + W + 0.1) and not g.due(30.0)


def test_a_clear_guard_whose_next_probe_fails_stops_offering():
    g = Guard("refuse", STATION, 60)
    g.probe(0.0)
    g.tick(W + 0.1)
    assert g.may_offer(W + 0.1)
    g.probe(60.0)
    events = g.not_sent(60.0, "Network is unreachable")
    assert events[0][1]["status"] == "unknown" and not g.may_offer(60.0)


def test_servers_heard_before_are_kept_while_probes_fail():
    g = Guard("refuse", STATION, 10)
    g.probe(0.0)
    g.observe_reply(offer_from("10.9.0.200"), "10.9.0.200", 1.0)
    g.tick(W + 0.1)
    g.probe(10.0)
    g.not_sent(10.0, "Network is unreachable")
    g.tick(10.0 + W + 0.1)
    assert g.status(15.0)["servers"] == ["10.9.0.200"] and g.status_name(15.0) == "refusing"


def test_warn_mode_serves_but_says_unknown():
    g = Guard("warn", STATION, 60)
    assert g.status_name(0.0) == "checking"
    g.probe(0.0)
    events = g.not_sent(0.0, "No such device")
    assert events[0][1]["status"] == "unknown" and g.may_offer(1.0)


def test_a_guard_that_cannot_listen_serves_as_before_but_is_never_clear():
    g = Guard("refuse", STATION, 60)
    g.cannot_probe(0.0, "cannot listen for other servers' replies")
    assert g.may_offer(0.0) and g.status_name(100.0) == "unknown"
    assert g.status(0.0)["not_probed"] == "cannot listen for other servers' replies"
    assert g.observe_request("10.9.0.201", 1.0)[0][1]["status"] == "refusing" and not g.may_offer(1.0)


def test_off_is_untouched_by_failures():
    g = Guard("off", STATION, 60)
    assert g.not_sent(0.0, "x") == [] and g.status_name(0.0) == "off" and g.may_offer(0.0)
