FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends xmlsec1 libxmlsec1-dev pkg-config gcc \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY idp ./idp
RUN pip install --no-cache-dir .
RUN useradd --system --home /var/lib/idp idp && mkdir -p /var/lib/idp/keys \
 && chown -R idp /var/lib/idp
USER idp
EXPOSE 8000
CMD ["idp", "serve", "--config", "/etc/idp/config.yaml", "--bind", "0.0.0.0:8000"]
