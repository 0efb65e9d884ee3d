"""The domain: pure rules and types, imported by every layer and importing none.

Models (records, ledgers, events, views, tool results), ids and labels,
liveness (status, health, proof of death judged from facts a probe supplies),
the lease decisions, the clock's formats and the errors. No I/O here.
"""
