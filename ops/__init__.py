"""Running the server in production: admission, drain, health, metrics, logs."""
