"""report.html's structure: the timeline axis spans the run's events, step labels never overlap,
one colour per meaning with a legend, expected vs observed per invariant, links to the run's files,
and the suite table's expectation column."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from harness.journal import Event
from harness.report.html import run_html, suite_html
from harness.report.timeline import CATEGORIES, CHAR_W, LABEL_ROW_H, nice_step, timeline_svg

RED = CATEGORIES["failed"][0]


def ev(seq: int, t: float, kind: str, service: str | None = None, action: str | None = None, **data) -> Event:
    return Event(seq=seq, ts=1000 + t, t=t, kind=kind, service=service, action=action, data=data)


def short_run() -> list[Event]:
    """Set-up before run_started, 1.2 s of traffic, then a long tail of shutdown steps (30 s later)."""
    evs = [ev(1, 0.0, "step", step="host_started"), ev(2, 0.4, "step", step="target_started"),
           ev(3, 1.0, "step", step="run_started")]
    for i in range(6):  # six steps in the first 50 ms: their labels would all sit on one another
        evs.append(ev(4 + i, 1.0 + i * 0.01, "step", step=f"timeline.{['add_rules', 'note', 'cut_link'][i % 3]}"))
    seq = 20
    for i in range(10):
        t = 1.1 + i * 0.12
        evs.append(ev(seq, t, "response", "captcha", "DescribeCaptchaResult", status=200,
                      rule="internal-error" if i < 3 else None))
        evs.append(ev(seq + 1, t + 0.01, "driver", flow="login", n=i, status=[200, 403, 500][i % 3]))
        seq += 2
    evs.append(ev(seq, 31.0, "step", step="host_stopped"))
    return evs


class Svg(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.svg: dict[str, str] = {}
        self.circles: list[dict[str, str]] = []
        self.labels: list[tuple[float, float, str]] = []
        self._label: dict[str, str] | None = None
        self.legend: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "svg" and "data-lo" in a:
            self.svg = a
        elif tag == "circle" and "pt" in a.get("class", ""):
            self.circles.append(a)
        elif tag == "text" and a.get("class") == "step-label":
            self._label = a
        elif tag == "span" and a.get("class") == "legend-item":
            self.legend.append(a["data-category"])
        elif tag == "a" and a.get("class") == "file":
            self.links.append(a["href"])

    def handle_data(self, data):
        if self._label is not None:
            self.labels.append((float(self._label["x"]), float(self._label["y"]), data))
            self._label = None


def parse(page: str) -> Svg:
    p = Svg()
    p.feed(page)
    return p


def test_axis_spans_the_run_not_the_process():
    p = parse(timeline_svg(short_run()))
    lo, hi = float(p.svg["data-lo"]), float(p.svg["data-hi"])
    assert lo == 0.0 and 1.19 <= hi <= 1.4, (lo, hi)  # events end at 1.19 s; host_stopped (30 s on) is not drawn
    left, right = float(p.svg["data-left"]), float(p.svg["data-right"])
    xs = [float(c["cx"]) for c in p.circles]
    assert (max(xs) - min(xs)) / (right - left) > 0.7  # the events fill the width
    assert nice_step(1.19) == 0.2 and nice_step(30) == 5 and nice_step(0.03) == 0.005


def test_step_labels_never_overlap():
    p = parse(timeline_svg(short_run()))
    assert len(p.labels) >= 3
    boxes = [(x, y - LABEL_ROW_H + 3, x + len(text) * CHAR_W, y) for x, y, text in p.labels]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            apart = a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
            assert apart, (a, b)
    assert len({(x, y) for x, y, _ in p.labels}) == len(p.labels)
    shown = len(p.labels)
    page = timeline_svg(short_run())
    hidden = re.search(r"\((\d+) step labels? left out", page)
    assert shown + (int(hidden.group(1)) if hidden else 0) == 6  # every step is either labelled or counted


def test_one_colour_per_meaning_and_a_legend():
    p = parse(timeline_svg(short_run()))
    by_class = {}
    for c in p.circles:
        category = c["class"].split()[1]
        by_class.setdefault(category, set()).add(c["fill"])
    assert all(len(fills) == 1 for fills in by_class.values())
    assert len({next(iter(f)) for f in by_class.values()}) == len(by_class)  # distinct colours
    # a fault rule's answer, a 403 and a 500: three meanings, and only the 500 is red
    assert {"fault", "refused", "failed", "ok", "normal"} <= set(by_class)
    assert by_class["failed"] == {RED} and all(RED not in f for k, f in by_class.items() if k != "failed")
    assert set(p.legend) == set(by_class) | {"step"}


def test_failed_invariant_evidence_is_red_on_the_timeline():
    evs = short_run()
    refused = next(e for e in evs if e.kind == "driver" and e.get("status") == 403)
    summary = summary_of([{"name": "verification_fail_open", "ok": False, "exercised": True,
                           "summary": "0 of 1 users got through", "counts": {"blocked": 1},
                           "evidence": [{"seq": refused.seq, "kind": "driver", "status": 403}], "evidence_total": 1,
                           "params": {"flow": "login"}, "defaults": {"slow_ms": 3000.0}}])
    p = parse(run_html(summary, evs, ["journal.jsonl"]))
    assert sum(c["fill"] == RED for c in p.circles) == 4  # the three 500s and the 403 of the evidence
    titles = re.findall(r'<circle class="pt failed"[^>]*><title>([^<]*)</title>', run_html(summary, evs))
    assert any("login #" in t and "evidence of verification_fail_open" in t for t in titles)


def summary_of(invariants: list[dict], **over) -> dict:
    return {"run_id": "r1", "scenario": "s", "description": "", "seed": 1, "variant": "correct", "time_scale": 1.0,
            "ok": all(i["ok"] for i in invariants), "state": "PASS" if all(i["ok"] for i in invariants) else "FAIL",
            "duration_s": 1.3, "counts": {}, "invariants": invariants, **over}


def test_expected_vs_observed_and_evidence_table():
    inv = {"name": "all_requests_succeeded", "ok": False, "exercised": True, "summary": "4 of 5 succeeded",
           "counts": {"sent": 5, "failed": 1}, "params": {"flow": "solve"},
           "defaults": {"status": list(range(200, 300))},
           "evidence": [{"seq": 9, "t": 1.5, "kind": "driver", "status": 502, "response": {"error": "busy"}}],
           "evidence_total": 1}
    page = run_html(summary_of([inv]), [])
    expected = re.search(r'<td class="expected">(.*?)</td>', page).group(1)
    observed = re.search(r'<td class="observed">(.*?)</td><', page).group(1)
    assert "flow" in expected and "solve" in expected and "200–299" in expected and "(default)" in expected
    assert "4 of 5 succeeded" in observed and "sent" in observed and "failed" in observed
    table = re.search(r'<table class="evidence">(.*?)</table>', page).group(1)
    assert "<th>status</th>" in table and "<td>502</td>" in table and "error=busy" in table
    assert '<details class="evidence" open>' in page  # a failed invariant's evidence is open
    assert re.search(r'<details class="raw"><summary>raw JSON</summary><pre>', page)


def test_links_to_the_run_files_that_exist():
    page = run_html(summary_of([]), [], ["journal.jsonl", "target.log", "report.html", "summary.json"])
    assert parse(page).links == ["journal.jsonl", "target.log", "summary.json"]
    load = parse(run_html(summary_of([]), [], ["journal.jsonl", "locust.html"])).links
    assert load == ["journal.jsonl", "locust.html"]


def test_suite_expectation_column_is_filled():
    runs = [summary_of([], ok=True, state="PASS", href="a/report.html", scenario="a"),
            summary_of([], ok=False, state="FAIL", href="b/report.html", scenario="b"),
            summary_of([], ok=False, state="FAIL", href="c/report.html", scenario="c",
                       expectation="bug: verification_fail_open must catch it in some scenario; caught here")]
    page = suite_html("3 scenarios", runs)
    cells = re.findall(r"<tr><td>.*?</td><td><a[^>]*>(\w)</a></td><td>.*?</td><td>.*?</td><td>(.*?)</td>", page)
    by = dict(cells)
    assert "should PASS" in by["a"] and "as expected" in by["a"]
    assert "should PASS" in by["b"] and "UNEXPECTED" in by["b"]
    assert "caught here" in by["c"]
    assert all(v.strip() for v in by.values())


def test_requests_the_mocks_refused_read_as_expected_vs_got():
    sig = {"check": "signature", "expected": "a1b2c3", "got": "ffff00", "why": "signature: expected a1b2c3, got ffff00",
           "canonical_request": "POST\n/\n\ncontent-type:application/json\nhost:127.0.0.1\n", "string_to_sign": "TC3…"}
    app = {"check": "CaptchaAppId", "expected": "190000001", "got": "42", "why": "CaptchaAppId: expected 190000001, got 42"}
    evs = [ev(1, 0.0, "step", step="run_started")]
    for i in range(3):
        evs.append(ev(2 + i, 0.1 * i, "response", "captcha", "DescribeCaptchaResult", status=200, refused=sig))
    evs.append(ev(9, 0.5, "response", "captcha", "DescribeCaptchaResult", status=200, refused=app))
    evs.append(ev(10, 0.6, "response", "captcha", "DescribeCaptchaResult", status=200))
    page = run_html(summary_of([]), evs)
    assert "Requests the mocks refused (4)" in page
    rows = re.findall(r'<tr class="refusal"><td>(\d+)×</td><td><code>([^<]*)</code></td><td>([^<]*)</td>'
                      r'<td><code>([^<]*)</code></td><td><code>([^<]*)</code>', page)
    assert rows == [("3", "captcha DescribeCaptchaResult", "signature", "a1b2c3", "ffff00"),
                    ("1", "captcha DescribeCaptchaResult", "CaptchaAppId", "190000001", "42")]
    assert "<summary>canonical_request, string_to_sign</summary>" in page and "host:127.0.0.1" in page
    p = parse(page)
    categories = [c["class"].split()[1] for c in p.circles]
    assert categories.count("rejected") == 4 and categories.count("normal") == 1 and "rejected" in p.legend
    assert "Requests the mocks refused" not in run_html(summary_of([]), evs[-1:])
