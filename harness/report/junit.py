"""JUnit XML: one testsuite per scenario run, one testcase per invariant, plus ``coverage`` when the
run is INCONCLUSIVE (a rule that never fired, a step that never played) and ``run`` for a run error
or an interruption. An invariant that was not exercised, and the coverage case, are failures whose
``type`` is ``inconclusive``; an interrupted run is an error of type ``interrupted``."""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree as ET


def junit_xml(summaries: list[dict[str, Any]]) -> bytes:
    root = ET.Element("testsuites")
    for s in summaries:
        cases = s.get("invariants") or []
        gaps = s.get("gaps") or []
        failures = sum(1 for c in cases if not c["ok"]) + (1 if gaps else 0)
        stopped = s.get("state") == "INTERRUPTED"
        suite = ET.SubElement(root, "testsuite", name=s["scenario"], tests=str(max(1, len(cases) + bool(gaps))),
                              failures=str(failures), errors="1" if s.get("error") or stopped else "0",
                              time=f"{s.get('duration_s', 0):.3f}")
        props = ET.SubElement(suite, "properties")
        for key in ("run_id", "seed", "variant", "time_scale", "state"):
            ET.SubElement(props, "property", name=key, value=str(s.get(key)))
        if s.get("error"):
            case = ET.SubElement(suite, "testcase", classname=s["scenario"], name="run")
            ET.SubElement(case, "error", message=s["error"][:500]).text = s["error"]
        elif stopped:
            case = ET.SubElement(suite, "testcase", classname=s["scenario"], name="run")
            why = (s.get("reasons") or ["interrupted"])[0]
            ET.SubElement(case, "error", type="interrupted", message=why[:500]).text = why
        if gaps:
            case = ET.SubElement(suite, "testcase", classname=s["scenario"], name="coverage")
            text = "\n".join(gaps)
            ET.SubElement(case, "failure", type="inconclusive", message=text[:500]).text = text
        for c in cases:
            case = ET.SubElement(suite, "testcase", classname=s["scenario"], name=c["name"])
            if not c["ok"]:
                kind = "inconclusive" if c.get("exercised") is False else "invariant"
                detail = json.dumps(c.get("evidence", [])[:10], indent=1, default=str)
                ET.SubElement(case, "failure", type=kind, message=c["summary"][:500]).text = f"{c['summary']}\n{detail}"
            else:
                ET.SubElement(case, "system-out").text = c["summary"]
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
