"""The run journal: every request, response, fault decision and callback attempt, in order."""

from harness.journal.events import Event
from harness.journal.reader import JournalCorrupt, iter_events, read_events
from harness.journal.writer import Journal

__all__ = ["Event", "Journal", "JournalCorrupt", "iter_events", "read_events"]
