# The image compose.yaml builds: tether and its example worker.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY tether ./tether
COPY examples ./examples
RUN pip install --no-cache-dir .
CMD ["tether", "--help"]
