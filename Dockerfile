# One image for the API (default), the workers, the cleaner and the migrations:
#   python -m api | python -m worker | python -m worker.cleaner | alembic upgrade head
# Settings come from the environment (docker-compose.yml passes config.env).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed uid, so files on mounted volumes have a predictable owner, and a home directory
# for whatever expects one. (gunicorn's control socket, which would live there, is turned
# off in the API's gunicorn options: nothing uses it.)
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app --shell /usr/sbin/nologin app

WORKDIR /app

# Dependencies first, in their own layer: it is rebuilt only when requirements.txt changes.
# Every pin ships a manylinux wheel (psycopg2-binary, orjson), so no compiler is needed.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# Only what runs; the code stays owned by root, so the app user cannot change it.
COPY alembic.ini ./
COPY common/ common/
COPY migrations/ migrations/
COPY api/ api/
COPY worker/ worker/

USER app
EXPOSE 3000

# For the API only; docker-compose.yml disables it for the other services. curl is not in slim.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${PORT:-3000}/health', timeout=2)" || exit 1

CMD ["python", "-m", "api"]
