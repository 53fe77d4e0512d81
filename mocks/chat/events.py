"""The chat mock's own journal kinds (the core's are in `harness/journal/kinds.py`)."""

from harness.journal.kinds import declare

MESSAGE = declare("message", ("service", "action", "rid", "chat_type", "msg_seq", "time", "random", "body",
                              "cloud_custom_data", "from"),
                  ("to", "msg_key", "group"),
                  "the chat mock delivered a message (one per recipient of a batch send)")
MESSAGE_REFUSED = declare("message_refused", ("service", "action", "rid", "reason"),
                          ("duplicate_of", "from", "to", "random", "group", "msg_key"),
                          "a message was accepted but not delivered: duplicate, or the before-send callback said no")
RATE_ALARM = declare("rate_alarm", ("service", "action", "ServiceName", "Command", "Request", "Limit", "sent"),
                     ("origin",),
                     "a command went over its rate limit; `sent` says whether the alarm webhook is on; "
                     "`origin: emit` for an alarm a timeline `emit` step sent")
WEBHOOK_ANSWER = declare("webhook_answer", ("service", "action", "cid", "ref", "ok", "failure", "status",
                                            "ActionStatus", "ErrorCode", "ErrorInfo", "attempts"),
                         ("verdict",),
                         "what the app answered a webhook; `verdict` for a before-callback")
