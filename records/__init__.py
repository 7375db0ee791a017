"""Call records and transcripts, kept in SQLite (the default) or PostgreSQL.

database.py    URLs, the async engine, migrations (Alembic, in `migrations/`)
models.py      the `calls` and `turns` tables
store.py       `CallStore`: every read and write of a record
recorder.py    `Recorder`: writes records as calls go, off the audio path
writes.py      `Writes`: each write retried while its error may pass, else counted and logged
transcript.py  `Transcript`: a call's turns, as its aggregators write its context
api.py         GET /calls and GET /calls/{sid}
export.py      `python -m records.export --format csv|json`
"""
