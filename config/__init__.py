"""The settings of each concept, mixed into `settings.Settings`, which reads and validates them.

Each module imports nothing of the project's but other config modules, so any
module may import `settings` without a cycle.
"""
