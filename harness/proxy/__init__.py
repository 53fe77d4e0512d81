"""Fault-injecting proxies between the integration under test and each service: the real Toxiproxy
server (TCP toxics per link) and a mitmproxy addon (HTTP-level faults), both driven by the same rules
as the mocks. See ``docs/proxies.md``.

Modules (import what you need; this package imports nothing heavy):
``toxiproxy_client`` (our wrapper of toxiproxy-python), ``toxiproxy_server`` (find/start/stop the
server), ``links`` (one proxy per link, per-run names, cleanup), ``toxics`` (rules → toxics on the run
clock), ``mitm`` (mitmdump launcher) + ``mitm_addon`` (runs inside mitmdump) + ``raw_request``,
``decide`` (``POST /decide`` on the control API), ``stack`` (everything in front of a ``MockHost``),
``processes`` (child processes that are always stopped).
"""
