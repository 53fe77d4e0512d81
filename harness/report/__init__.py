"""Reports under ``reports/<run-id>/``: summary.json, junit.xml, report.html (self-contained).
Reports only present verdicts; they never recompute them."""

from harness.report.write import write_run_report, write_suite_report

__all__ = ["write_run_report", "write_suite_report"]
