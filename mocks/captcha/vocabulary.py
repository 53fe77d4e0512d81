"""Names the captcha mock journals and the captcha invariants read: one spelling for both sides."""

SERVICE = "captcha"   # the service's name: journal ``service``, rule ``match.service``, links, fixtures

WEB = "DescribeCaptchaResult"          # API 3.0 action verifying a web ticket
MINI = "DescribeCaptchaMiniResult"     # API 3.0 action verifying a mini-program ticket
VERIFY_ACTIONS = (WEB, MINI)
SCRIPT_ACTION = "TCaptcha.js"          # GET /TCaptcha.js: the loader script
TICKET_ACTION = "ticket"               # GET|POST /ticket: the loader asks for a ticket
NO_ACTION = "(none)"                   # a verification request without an X-TC-Action header
TICKET_PARAM = "Ticket"                # the verification request's ticket field
NOT_FOUND = "not_found"                # a request to a path the service does not serve
# every action its requests are journaled with (rule ``match.action`` is checked against these)
ACTIONS = (WEB, MINI, SCRIPT_ACTION, TICKET_ACTION, NO_ACTION, NOT_FOUND)

# scenario traffic variables (``vars:`` kinds; ``var_kinds`` of driver events)
CAPTCHA_TICKET = "captcha_ticket"      # a ticket the mock issued: it will verify it
BAD_TICKET = "bad_ticket"              # a ticket the mock will refuse
DR_TICKET = "dr_ticket"                # a disaster-recovery ``terror_`` ticket built by the client
TICKET_VARS = (CAPTCHA_TICKET, BAD_TICKET, DR_TICKET)
