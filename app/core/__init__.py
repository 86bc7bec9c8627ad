"""icehook's rules, without I/O: no SQLAlchemy, Starlette, httpx, sockets or clocks of their own.

Statuses and their order, the move an ICE answer makes, how a callback is judged, event
types and the webhook body, retry, backoff and lease policies, callback tokens, the limits
ICE puts on a submission, the error tree, and the parsing of outside input. Every other
layer builds on these; they build on nothing of icehook's.
"""
