"""Fault-injecting proxies between the integration under test and each service: the real Toxiproxy
server (TCP toxics per link) and a mitmproxy addon (HTTP-level faults), both driven by the same rules
as the mocks. See ``docs/proxies.md``.

Modules (import what you need; this package imports nothing heavy):
``toxiproxy_client`` (our wrapper of toxiproxy-python), ``toxiproxy_server`` (find/start/stop the
server), ``toxiproxy_links`` (a run's proxies: one per link, per-run names, cleanup), ``toxics`` (rules →
toxics on the run clock), ``mitm`` (mitmdump launcher) + ``mitm_addon`` (runs inside mitmdump) +
``rule_mirror`` (the addon's copy of the run's ``mitm`` rules) + ``addon_journal`` (its batched journal) +
``raw_request``, ``decide`` (``/decide…`` on the control API), ``stack`` (the one builder of the
chain in front of a ``MockHost``), ``errors`` (``ProxyError``). Children are started and always
stopped by ``harness.supervisor``.
"""
