# Switchboard: a self-hosted server that puts a Pipecat voice bot on a phone line.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LOGURU_AUTOINIT=false

# libgomp1: OpenMP runtime that CTranslate2 (Whisper) and ONNX Runtime link against.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 switchboard
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY --chown=switchboard:switchboard . .
RUN mkdir -p /app/data && chown switchboard:switchboard /app/data
# Numeric, so Kubernetes' runAsNonRoot can check it.
USER 10001:10001

EXPOSE 8000
# WORKERS (default: the CPUs the container may use, its CPU quota respected) processes
# serve port 8000 under one supervisor, which is PID 1 and passes the drain on to them.
# Live calls drain for up to DRAIN_TIMEOUT (300 s) on SIGTERM: give `docker stop -t` at least 345.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]

# Exec form, so SIGTERM reaches Python and live calls drain before the process exits.
CMD ["python", "server.py"]
