"""HTTP tools: the bot reaches the business's own systems during a call.

signing.py   Standard Webhooks signatures (also for events), secrets' shape
guard.py     the SSRF guard: public hosts only, unless TOOLS_ALLOW_PRIVATE
http.py      `ToolClient`: schema check, signed POST, timeout; failures as tool errors
calls.py     `CallTools`: one call's tools given to its LLM, the filler
metrics.py   `switchboard_tool_calls_total`, `switchboard_tool_latency_seconds`
"""
