"""The captcha mock's own journal kinds (the core's are in `harness/journal/kinds.py`)."""

from harness.journal.kinds import declare

TICKET = declare("captcha.ticket", ("service", "action", "ticket", "randstr", "appid", "evil_level", "age_s"), (),
                 "the control API issued a captcha ticket (`action` issue)")
