# govtrack API image: dependencies built in a throwaway stage, runtime as a non-root user.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api ./api
COPY storage ./storage
COPY analytics ./analytics
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --create-home --home-dir /home/govtrack govtrack \
    && mkdir -p /var/lib/govtrack \
    && chown govtrack:govtrack /var/lib/govtrack
COPY --from=build /opt/venv /opt/venv
# Sources beside ddl/ so storage finds ddl/clickhouse/ at ../ddl (PYTHONPATH wins over site-packages).
WORKDIR /app
COPY api ./api
COPY storage ./storage
COPY analytics ./analytics
COPY ddl ./ddl
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    GOVTRACK_SPOOL_DIR=/var/lib/govtrack/spool \
    GOVTRACK_ARCHIVE_URL=/var/lib/govtrack/archive
USER govtrack
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/live', timeout=2)"]
CMD ["govtrack", "serve", "--host", "0.0.0.0", "--port", "8000"]
