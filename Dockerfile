# icehook: `icehook serve` against an external PostgreSQL (ICEHOOK_DATABASE_URL).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY app ./app
COPY migrations ./migrations
# The same install as the README's, into a venv that the runtime stage copies whole.
RUN python3 -m venv /opt/icehook && /opt/icehook/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --system --create-home --uid 10001 icehook
COPY --from=build /opt/icehook /opt/icehook
ENV PATH=/opt/icehook/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ICEHOOK_DATA_DIR=/home/icehook/.icehook
USER icehook
WORKDIR /home/icehook
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
ENTRYPOINT ["icehook"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
