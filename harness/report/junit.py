"""JUnit XML: one testsuite per scenario run, one testcase per invariant."""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree as ET


def junit_xml(summaries: list[dict[str, Any]]) -> bytes:
    root = ET.Element("testsuites")
    for s in summaries:
        cases = s.get("invariants") or []
        failures = sum(1 for c in cases if not c["ok"])
        suite = ET.SubElement(root, "testsuite", name=s["scenario"], tests=str(max(1, len(cases))),
                              failures=str(failures), errors="1" if s.get("error") else "0",
                              time=f"{s.get('duration_s', 0):.3f}")
        props = ET.SubElement(suite, "properties")
        for key in ("run_id", "seed", "variant", "time_scale"):
            ET.SubElement(props, "property", name=key, value=str(s.get(key)))
        if s.get("error"):
            case = ET.SubElement(suite, "testcase", classname=s["scenario"], name="run")
            ET.SubElement(case, "error", message=s["error"][:500]).text = s["error"]
        for c in cases:
            case = ET.SubElement(suite, "testcase", classname=s["scenario"], name=c["name"])
            if not c["ok"]:
                detail = json.dumps(c.get("evidence", [])[:10], indent=1, default=str)
                ET.SubElement(case, "failure", message=c["summary"][:500]).text = f"{c['summary']}\n{detail}"
            else:
                ET.SubElement(case, "system-out").text = c["summary"]
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
