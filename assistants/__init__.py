"""Assistants: named bots, each with its prompt, greeting, voice, timing and tools.

model.py      what an assistants file declares (pydantic, unknown keys refused)
loading.py    reading the YAML file, with errors that name the line
registry.py   `Assistants`: the assistant for a call (parameter, number, default), reloads
routes.py     GET /assistants
"""
