"""Property test: at least 1 030 hostile scenario documents (wrong types, missing fields, unknown keys,
huge numbers, deep nesting, alias bombs, tags, non-UTF-8, random bytes, broken ``extends`` graphs).

Every document either validates or gets a ``ScenarioError`` whose message is one line starting with
``<file>[:<line>]: `` — never another exception — within a bounded time and peak memory (measured
with tracemalloc for every case). Figures are in docs/reliability.md.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import timedelta
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.scenario import ScenarioError, load_scenario
from harness.scenario.loader import validate
from harness.scenario.yamlpos import MAX_DEPTH, load_yaml_bytes

NAME = "hostile.yaml"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
PEAK_LIMIT = 64 * 2**20       # bytes allocated at peak by one case (tracemalloc)
CASE_LIMIT_S = 5.0            # CPU seconds for one case (process time: other jobs on the machine don't count)
SETTINGS = dict(deadline=timedelta(seconds=30),  # wall clock: only a hang guard
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])

# A valid scenario touching most of the format: mutations of it reach deep into every model.
BASE: dict[str, Any] = {
    "name": "fuzz-base",
    "description": "every part of the format",
    "tags": ["a", "b"],
    "seed": 7,
    "services": {"captcha": {}, "solver": {"pingback_timeout_s": 2}},
    "links": ["integration->captcha", {"name": "solver->integration", "upstream": "127.0.0.1:1"}],
    "target": {"command": ["python", "app.py"], "env": {"PORT": "${target.port}"},
               "ready": {"path": "/health", "status": 200, "timeout": "5s"}, "stop_timeout": 2,
               "integration": "captcha_backend", "variant": "correct"},
    "traffic": [
        {"name": "login", "count": 3, "concurrency": 2, "rate": 10, "start": "0s", "timeout": "2s",
         "vars": {"t": {"captcha_ticket": {}}, "u": {"choice": ["a", "b"]}},
         "request": {"method": "POST", "path": "/login", "json": {"ticket": "${t.ticket}"},
                     "headers": {"X-A": "1"}, "query": {"q": 1}},
         "intent": "allow", "labels": {"k": "v"}},
    ],
    "timeline": [
        {"at": "1s", "add_rules": [{"id": "r", "match": {"service": "captcha", "action": "DescribeCaptchaResult",
                                                         "params": {"Ticket": {"regex": "^t"}}},
                                    "effect": {"error": "InternalError", "delay_ms": 5},
                                    "schedule": {"after": 1, "times": 2, "probability": 0.5,
                                                 "window": {"start": "1s", "end": "5s"}}}]},
        {"after": {"kind": "response"}, "delay": "100ms", "remove_rules": ["r"]},
        {"at": 2, "set_config": {"captcha": {"signature_skew_s": 10}}},
        {"at": 3, "control": {"method": "POST", "path": "/reset", "json": {}}},
        {"at": 4, "wait_for": {"where": {"kind": "request"}, "count": 2, "timeout": "3s"}},
        {"at": 5, "cut_link": "integration->captcha"},
        {"at": 6, "note": "done"},
    ],
    "expect": [{"verification_fail_open": {"flow": "login", "max_latency": "3s"}},
               {"journal_count": {"where": {"kind": "request"}, "min": 1}},
               {"latency_percentile": {"p": 99, "max": "1s"}}],
    "settle": "1s",
    "max_duration": 30,
}


def test_base_document_is_valid():
    raw = yaml.safe_dump(BASE).encode()
    validate(*load_yaml_bytes(raw, NAME), NAME)


# --- the check applied to every case ----------------------------------------------------------
class Stats:
    def __init__(self) -> None:
        self.cases = self.refused = self.valid = self.traced = 0
        self.max_peak = 0
        self.max_s = 0.0


def message_ok(msg: str, names: tuple[str, ...]) -> bool:
    """One line: ``<file>[:<line>]: <what>``, the file one of ``names`` (or a path under one)."""
    m = re.match(r"^(?P<file>.+?)(?::\d+)?: \S", msg)
    return ("\n" not in msg and "\r" not in msg and "Traceback" not in msg and m is not None
            and any(m["file"] == n or m["file"].startswith(n.rstrip("/") + "/") for n in names))


def check(stats: Stats, fn: Any, names: tuple[str, ...] = (NAME,), trace: bool = True) -> None:
    """Run ``fn`` (load + validate); only ScenarioError may escape it, as one located line.
    With ``trace`` the case's peak allocation is measured with tracemalloc (which slows it ~3x)."""
    if trace:
        tracemalloc.start()
    t0 = time.process_time()
    try:
        fn()
        stats.valid += 1
    except ScenarioError as e:
        msg = str(e)
        assert message_ok(msg, names), repr(msg)
        stats.refused += 1
    finally:
        elapsed = time.process_time() - t0
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
        if trace:
            tracemalloc.stop()
    stats.cases += 1
    stats.traced += trace
    stats.max_peak = max(stats.max_peak, peak)
    stats.max_s = max(stats.max_s, elapsed)
    assert peak < PEAK_LIMIT, f"peak {peak} bytes"
    assert elapsed < CASE_LIMIT_S, f"{elapsed:.1f}s"


def from_bytes(raw: bytes, name: str = NAME) -> Any:
    return lambda: validate(*load_yaml_bytes(raw, name), name)


def report(what: str, stats: Stats) -> None:
    print(f"\n{what}: {stats.cases} cases, {stats.refused} refused, {stats.valid} valid, "
          f"worst {stats.max_s * 1000:.0f} ms CPU, peak {stats.max_peak / 2**20:.1f} MiB "
          f"(tracemalloc on {stats.traced} cases)")


# --- strategy 1: a valid document, mutated --------------------------------------------------------
def paths_of(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths_of(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths_of(v, prefix + (i,))
    return out


BASE_PATHS = paths_of(BASE)
HOSTILE_STRINGS = ["", " ", "5s", "-1s", "1e999", "9" * 400 + "s", "nan", ".inf", "${", "${nope.x}", "->",
                   "a->b", "GET", "\u202e", "\U0001f4a5", "x" * 5000, "0x10", "~", "null", "[", "*a", "&a",
                   "!!python/object/apply:os.system", "../../etc/passwd", "\t", "1:2:3"]
scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**400, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), st.sampled_from(HOSTILE_STRINGS),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.text(max_size=10), st.integers(-5, 5), st.booleans()), inner, max_size=4)),
    max_leaves=10)
KEYS = st.one_of(st.sampled_from(["name", "at", "count", "json", "extends", "unknown", "services", "effect",
                                  "<<", "match", "request", "__class__", ""]), st.text(max_size=8), st.integers())


def get(doc: Any, path: tuple) -> Any:
    for p in path:
        doc = doc[p]
    return doc


@st.composite
def mutated(draw: Any) -> Any:
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        paths = paths_of(doc)
        path = draw(st.sampled_from(paths if len(paths) > 1 else BASE_PATHS[:1]))
        op = draw(st.sampled_from(["replace", "delete", "add_key", "wrap", "deepen"]))
        if not path:
            if op == "replace":
                return draw(values)
            continue
        parent, key = get(doc, path[:-1]), path[-1]
        if op == "replace":
            parent[key] = draw(values)
        elif op == "delete":
            del parent[key]
        elif op == "add_key":
            target = parent[key] if isinstance(parent[key], dict) else parent
            if isinstance(target, dict):
                target[draw(KEYS)] = draw(values)
            else:
                target.append(draw(values))
        elif op == "wrap":
            parent[key] = [parent[key]] if draw(st.booleans()) else {"x": parent[key]}
        else:
            v: Any = parent[key]
            for _ in range(draw(st.integers(1, MAX_DEPTH + 10))):
                v = [v]
            parent[key] = v
    return doc


def test_mutated_documents():
    stats = Stats()

    @settings(max_examples=320, **SETTINGS)
    @given(doc=mutated(), style=st.sampled_from([None, True, False]))
    def run(doc: Any, style: Any) -> None:
        raw = yaml.dump(doc, Dumper=DUMPER, default_flow_style=style, allow_unicode=True).encode()
        check(stats, from_bytes(raw), trace=stats.cases % 4 == 0)  # small documents: trace a quarter

    run()
    report("mutated documents", stats)
    assert stats.cases >= 310 and stats.refused > stats.cases // 2


# --- strategy 2: hostile YAML structure -----------------------------------------------------------
def alias_bomb(width: int, depth: int) -> str:
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, depth + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def merge_bomb(depth: int) -> str:
    """Nested so PyYAML flattens the whole chain at once: entries double per level."""
    s = "&m0 {k: v}"
    for i in range(1, depth + 1):
        s = f"&m{i} {{<<: [{s}, *m{i - 1}]}}"
    return f"x: {{<<: [{s}, *m{depth}]}}\n"


TAGGED = ["!!python/object/apply:os.system ['echo pwned']", "!!python/name:os.system", "!!binary aGVsbG8=",
          "!!set {a, b}", "!!omap [a: 1, b: 2]", "!!pairs [a: 1]", "!custom x", "!!timestamp 2020-01-01",
          "!!float nan", "!!int 0x1F", "!!int '99999999999999999999999999999999999999'", "!!str 5", "!!null ''",
          "!!map [1, 2]", "!!seq {a: 1}", "!<tag:yaml.org,2002:python/tuple> [1]", "!!float 1e99999"]

hostile_yaml = st.one_of(
    st.builds(alias_bomb, st.integers(2, 6), st.integers(1, 5)),
    st.builds(merge_bomb, st.integers(1, 14)),
    st.integers(1, 5000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 5000).map(lambda n: "{a: " * n + "}" * n),
    st.integers(1, 400).map(lambda n: "".join(f"{'  ' * i}k{i}:\n" for i in range(n)) + "  " * n + "v\n"),
    st.integers(1, 3000).map(lambda n: "- " * n + "x\n"),
    st.builds(lambda t, f: f"name: x\n{f}: {t}\n", st.sampled_from(TAGGED),
              st.sampled_from(["seed", "tags", "services", "name", "traffic", "timeline"])),
    st.sampled_from(["name: *undefined\n", "<<: *x\n", "a: &x 1\n<<: *x\n", "<<: [1, 2]\n", "? [a, b]\n: c\n",
                     "? {a: 1}\n: c\n", "name: a\nname: a\n", "---\nname: a\n---\nname: b\n", "%YAML 9.9\n---\n",
                     "%TAG ! tag:evil,2000:\n---\n!x {}\n", "name: x\n...\n...\n", "&a [*a]\n", "a: &a\n  b: *a\n",
                     "", "~", "[]", "0", "\"\\ud800\"", "'", "\"", "|", ">\n  x", "? ", ": ", "- - -", "{[}]",
                     "name: x\ntimeline: &t [{at: 1s, note: a}, *t]\n"]),
    st.integers(100, 3000).map(lambda n: "".join(f"k{i}: {i}\n" for i in range(n))),
    st.builds(lambda n, v: "name: " + v * n + "\n", st.integers(1, 50_000), st.sampled_from(["x", "é", "\\"])),
)


def test_hostile_yaml_structures():
    stats = Stats()

    @settings(max_examples=210, **SETTINGS)
    @given(text=hostile_yaml)
    def run(text: str) -> None:
        check(stats, from_bytes(text.encode("utf-8", "surrogatepass")))

    run()
    report("hostile YAML", stats)
    assert stats.cases >= 200


WORST = {  # the largest documents the limits allow (1 MB, 100 000 values) and the classic bombs
    "flow list of 500k": 'b"[" + b"a," * 499_000 + b"a]"',
    "block list of 250k": 'b"- a\\n" * 249_000',
    "120k keys": 'b"".join(b"k%d: v\\n" % i for i in range(120_000))[:999_000]',
    "400k nested [": 'b"[" * 400_000 + b"]" * 400_000',
    "alias bomb 10^9": "alias_bomb(10, 9).encode()",
    "alias bomb 12^10": "alias_bomb(12, 10).encode()",
    "merge bomb 2^30": "merge_bomb(30).encode()",
    "over 1 MB": 'b"x" * 1_000_001',
    "1 MB string": 'b"name: " + b"x" * 999_000',
}
PROBE = """
import json, os, sys, time
from tests.test_fuzz_scenario import WORST, alias_bomb, merge_bomb, from_bytes
from harness.scenario import ScenarioError
def rss_kib(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))
out = {}
for name, expr in WORST.items():
    r, w = os.pipe()
    if os.fork() == 0:  # each case in a fresh fork: its peak is not hidden by memory freed by another
        raw = eval(expr)
        with open("/proc/self/clear_refs", "w") as f:  # reset the peak-RSS mark (VmHWM) to the current size
            f.write("5")
        before = rss_kib("VmRSS")
        t0 = time.process_time()
        try:
            from_bytes(raw)()
            msg = None
        except ScenarioError as e:
            msg = str(e)
        res = {"msg": msg, "seconds": time.process_time() - t0, "rss_growth_kib": rss_kib("VmHWM") - before}
        os.write(w, json.dumps(res).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        out[name] = json.loads(f.read())
    os.wait()
print(json.dumps(out))
"""


def test_worst_cases_within_the_size_limits_are_bounded():
    """Each case in a fresh fork of one process, peak-RSS mark reset first, so each peak is its own."""
    p = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    results = json.loads(p.stdout)
    print()
    for n, r in results.items():
        print(f"{n}: {r['seconds']:.2f} s CPU, +{r['rss_growth_kib'] / 1024:.0f} MiB RSS: {r['msg']}")
    for n, r in results.items():
        if n == "1 MB string":
            assert r["msg"] is None, r  # a long but legal name: valid
        else:
            assert r["msg"] is not None and message_ok(r["msg"], (NAME,)), (n, r)
        assert r["seconds"] < CASE_LIMIT_S, (n, r)
        assert r["rss_growth_kib"] < 100 * 1024, (n, r)


# --- strategy 3: bytes ----------------------------------------------------------------------------
GOOD_TEXT = yaml.safe_dump(BASE, allow_unicode=True)


@st.composite
def spliced(draw: Any) -> bytes:
    raw = bytearray(GOOD_TEXT.encode())
    how = draw(st.sampled_from(["insert", "flip", "truncate", "encode", "prefix"]))
    if how == "insert":
        at = draw(st.integers(0, len(raw)))
        raw[at:at] = draw(st.one_of(st.binary(min_size=1, max_size=8),
                                    st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\x07", b"\x1b[2J",
                                                     b"\r", b"\t", b"\xef\xbb\xbf", b"\xe2\x80\xa8", b"\x85"])))
    elif how == "flip":
        at = draw(st.integers(0, len(raw) - 1))
        raw[at] ^= draw(st.integers(1, 255))
    elif how == "truncate":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif how == "encode":
        return GOOD_TEXT.replace("every part", "é\u00e8 \u00fc").encode(
            draw(st.sampled_from(["utf-16", "utf-16-be", "utf-32", "latin-1", "cp1252", "utf-8-sig", "gb18030", "cp500"])))
    else:
        raw[0:0] = draw(st.sampled_from([b"\xfe\xff", b"\xff\xfe", b"\x00\x00\xfe\xff", b"\xef\xbb\xbf\xef\xbb\xbf"]))
    return bytes(raw)


def test_bytes_and_encodings():
    stats = Stats()

    @settings(max_examples=400, **SETTINGS)
    @given(raw=st.one_of(st.binary(max_size=3000), spliced()))
    def run(raw: bytes) -> None:
        check(stats, from_bytes(raw))

    run()
    report("bytes", stats)
    assert stats.cases >= 390


# --- strategy 4: files on disk and extends graphs -------------------------------------------------
EXTENDS_VALUES = st.one_of(
    st.sampled_from(["b.yaml", "a.yaml", "missing.yaml", ".", "..", "/", "/dev/null", "sub", "bin.yaml",
                     "list.yaml", "", "\x00", "b.yaml\x00x", "../" * 40 + "etc/hostname", "c.yaml"]),
    st.lists(st.sampled_from(["b.yaml", "c.yaml", "missing.yaml", "a.yaml"]), max_size=4),
    values)


@st.composite
def file_sets(draw: Any) -> dict[str, bytes]:
    files: dict[str, bytes] = {
        "bin.yaml": draw(st.binary(max_size=64)),
        "list.yaml": b"- 1\n- 2\n",
    }
    for fname in ("a.yaml", "b.yaml", "c.yaml"):
        body = draw(st.one_of(mutated(), st.just(copy.deepcopy(BASE)), values))
        if isinstance(body, dict) and draw(st.booleans()):
            body["extends"] = draw(EXTENDS_VALUES)
        text = yaml.dump(body, Dumper=DUMPER, allow_unicode=True)
        files[fname] = text.encode() if draw(st.integers(0, 9)) else text.encode("utf-16")
    if draw(st.booleans()):  # a chain longer than the extends limit
        for i in range(draw(st.integers(1, 12))):
            files[f"chain{i}.yaml"] = f"extends: chain{i + 1}.yaml\n".encode()
        files["b.yaml"] = b"extends: chain0.yaml\n"
    return files


def test_files_and_extends_graphs():
    stats = Stats()

    @settings(max_examples=140, **SETTINGS)
    @given(files=file_sets())
    def run(files: dict[str, bytes]) -> None:
        with tempfile.TemporaryDirectory() as d:
            os.mkdir(os.path.join(d, "sub"))
            for fname, raw in files.items():
                with open(os.path.join(d, fname), "wb") as f:
                    f.write(raw)
            check(stats, lambda: load_scenario(os.path.join(d, "a.yaml")), (d, "/dev/null", "/"))

    run()
    report("files", stats)
    assert stats.cases >= 130


def test_regressions_found_by_the_fuzzers():
    """Each was accepted or crashed before its fix (docs/reliability.md, failures 2 and 3)."""
    for body, expected in [(f'name: x\ntimeline: [{{at: "{"9" * 400}s", note: a}}]\n', "hostile.yaml:2: timeline[0].at"),
                           ('name: x\n"a\\r\\nb": 1\n', "hostile.yaml:2: a\\r\\nb: unknown field"),
                           ('name: x\n"\\u202e": 1\n', "hostile.yaml:2: \\u202e: unknown field")]:
        try:
            from_bytes(body.encode())()
        except ScenarioError as e:
            assert str(e).startswith(expected) and message_ok(str(e), (NAME,)), str(e)
        else:
            raise AssertionError(f"accepted: {body!r}")
