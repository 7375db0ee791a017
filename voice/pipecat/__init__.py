"""Everything that reaches into Pipecat's private names, in one place.

Each module here subclasses a Pipecat class and relies on attributes or methods
Pipecat does not promise to keep (`_input`, `_handle_user_stopped_speaking`, …).
`contract.py` names every one of them, and `tests/test_pipecat_contract.py`
fails, saying which piece broke, when an upgrade of `pipecat-ai` removes one.
"""
