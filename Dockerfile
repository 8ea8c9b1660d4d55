# Tallyroom application image: one image, several roles chosen by the command
# (`worker`, `sink`, `web`, `replay ...`, `seats`, ...). Kafka and Redis are not
# in here: docker-compose.yml runs them from their official images, so this image
# needs no Java.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Install the project first (dependencies from pyproject.toml are the slow layer);
# only the packages setuptools is told to include are copied.
COPY pyproject.toml ./
COPY tallyroom ./tallyroom
COPY schemas ./schemas
COPY producers ./producers
COPY streams ./streams
COPY consumers ./consumers
RUN pip install . \
    && rm -rf build ./*.egg-info

# Nights to replay: `tallyroom replay --night data/ge2024` resolves from /app.
COPY data ./data

# Installed (not a checkout), settings default their state directories to the user's
# data folder (~/.local/share/tallyroom): keep them under /app instead.
ENV TALLYROOM_STACK_DIR=/app/.stack \
    TALLYROOM_WORKER_DATA_DIR=/app/.stack/worker

RUN useradd --create-home --uid 10001 tallyroom \
    && mkdir -p /app/.stack/worker \
    && chown -R tallyroom:tallyroom /app/.stack
USER tallyroom

ENTRYPOINT ["python", "-m", "tallyroom"]
CMD ["--help"]
