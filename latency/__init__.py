"""Where each reply's time goes: its stages, as metrics and as OpenTelemetry traces.

stages.py     the stage observer: when each stage of a reply happened (`Reply`)
traces.py     a trace per call, exported by OTLP when an endpoint is set
breakdown.py  the stages between two scrapes of `/metrics` (for the benchmark)
"""
