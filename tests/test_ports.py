"""Listener ports come from below the kernel's ephemeral range, so no client's source port can take
one between the pick and the bind (what made targets die with "Address already in use")."""

import socket
import subprocess
import sys

from harness import ports


def test_free_ports_are_below_the_ephemeral_range_and_bindable():
    low = ports._ephemeral_low()
    picked = {ports.free_port() for _ in range(200)}
    assert len(picked) > 150  # random, not a counter every worker would share
    assert all(ports._BOTTOM <= p < low for p in picked)
    with socket.socket() as s:
        s.bind(("127.0.0.1", picked.pop()))


def test_a_port_is_handed_out_once():
    picked = [ports.free_port() for _ in range(1000)]  # at random, ~40 repeats in 12k ports otherwise
    assert len(set(picked)) == len(picked)


def test_a_port_someone_listens_on_is_never_picked(monkeypatch):
    with socket.socket() as held, socket.socket() as probe:
        held.bind(("127.0.0.1", 0))
        held.listen()
        probe.bind(("127.0.0.1", 0))
        taken, free = held.getsockname()[1], probe.getsockname()[1]
        probe.close()
        tries = iter([taken, taken, free])
        monkeypatch.setattr(ports._rng, "randrange", lambda a, b: next(tries))
        monkeypatch.setattr(ports, "_ephemeral_low", lambda: 61000)
        assert ports.free_port() == free


_OTHER = """
import sys
from harness import ports
first = iter([int(sys.argv[1])])  # its first random pick is our port
real = ports._rng.randrange
ports._rng.randrange = lambda a, b: next(first, None) or real(a, b)
print(ports.free_port())
"""


def test_a_port_another_process_picked_is_never_picked():
    """Two xdist workers must not hand out the same port before either child has bound it."""
    ours = ports.free_port()
    other = subprocess.run([sys.executable, "-c", _OTHER, str(ours)], capture_output=True, text=True, timeout=30)
    assert other.returncode == 0, other.stderr
    assert int(other.stdout) != ours
