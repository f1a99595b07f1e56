"""chatvakt: shared pieces every process uses.

Kept thin on purpose: configuration, the event contract between services,
errors that cross the RPC boundary, and the database/outbox plumbing.
No service's domain logic or tables live here.
"""
