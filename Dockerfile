# twin in a container: `docker build -t twin .`, configured by TWIN_* environment variables
# only (config.toml's keys as TWIN_<SECTION>__<KEY>; see README "Containers").
# Build stage: the wheel of this checkout and of every dependency, compiled where needed.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md LICENSE ./
COPY twin ./twin
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Runtime stage: the wheels installed, no compilers, a user without privileges.
FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin twin \
    && install -d -m 0700 -o twin -g twin /app /app/sessions
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# The data directory (the SQLite database and the key file when they are used; on PostgreSQL
# the sessions are in the database) is the volume; the API listens on every interface.
ENV PYTHONUNBUFFERED=1 \
    TWIN_STORAGE__DATA_DIR=/app/sessions \
    TWIN_API__HOST=0.0.0.0 \
    TWIN_API__PORT=8080 \
    TWIN_LOGGING__FORMAT=json
USER twin
WORKDIR /app
VOLUME ["/app/sessions"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('TWIN_API__PORT', '8080'); sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=4).status != 200)"]
# `twin run` applies the migrations on start (one replica at a time on PostgreSQL) and stops
# cleanly on SIGTERM (docker stop): in-flight replies end, accounts are handed over.
STOPSIGNAL SIGTERM
ENTRYPOINT ["twin"]
CMD ["run"]
