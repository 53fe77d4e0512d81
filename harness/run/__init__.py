"""Running a scenario: plan, processes (target, backing services), traffic, timeline, runner."""
