# The pipeline services (ingest, validate; report and publish when they arrive): one image, a
# command per service (docker-compose.yml). Build: `docker build -t ddas-pipeline .`
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The project (the `ddas` package in shared/, the services in services/) with its pinned
# dependencies; the package data (migrations, the official schema, the gemeenten) comes along.
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
RUN pip install . && rm -rf /app/build

# Not root.
RUN useradd --system --uid 10001 --no-create-home ddas
USER ddas

# ingest's API (8081), validate's health and metrics (8082).
EXPOSE 8081 8082 8083 8084
CMD ["python", "-m", "services.ingest"]
