"""Events: the operator's webhook hears about every call, durably.

builders.py   the events (`call.started`, `call.ended`, …) as JSON, and where each goes
sender.py     `EventSender`: delivery from the outbox, retries with backoff, metrics

The outbox itself is a table of the call records (`records/outbox.py`,
`records.models.Event`), written in the same transaction as the change an
event describes.
"""
