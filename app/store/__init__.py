"""Every SQL statement of icehook, and nothing else: the tables, the engine and the embedded
server, the schema's revision, the batching helpers, and one module per aggregate (jobs and
their history, leases, callbacks, subscriptions, deliveries, the audit reads, wake-ups).

Functions take the session or connection they run on and never commit: the flows and the
HTTP handlers open the transactions.
"""
