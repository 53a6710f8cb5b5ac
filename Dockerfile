# One image for every Correio service; docker-compose.yml picks the command.

# htmx and Quill (the rich-text editor) come from the npm registry (package.json / package-lock.json), never from a CDN.
FROM node:20-slim AS assets
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 CORREIO_VAR_DIR=/data \
    CORREIO_WEB_ADDR=0.0.0.0:8000
WORKDIR /app
COPY requirements.lock .
RUN pip install --no-cache-dir -r requirements.lock
# Every service runs as the unprivileged user correio. The mail listeners bind ports 25, 143, ...
# below 1024, so the Python binary alone gets the one capability that needs (file capability
# cap_net_bind_service; docker-compose drops every other capability and adds back only
# NET_BIND_SERVICE). setcap comes from libcap2-bin, removed again once used.
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends libcap2-bin >/dev/null \
    && setcap cap_net_bind_service=+ep "$(readlink -f /usr/local/bin/python3)" \
    && apt-get purge -y -qq libcap2-bin >/dev/null && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 correio \
    && useradd --system --uid 10001 --gid correio --home-dir /data --shell /usr/sbin/nologin correio
COPY . .
COPY --from=assets /app/node_modules/htmx.org/dist /app/node_modules/htmx.org/dist
COPY --from=assets /app/node_modules/quill/dist /app/node_modules/quill/dist
# No collectstatic: whitenoise serves static files through Django's finders
# (WHITENOISE_USE_FINDERS), and running settings at build time would write a secret key into
# the image. /data (the volume) is the only place the services write, 0700 and theirs.
RUN mkdir -p /data && chown correio:correio /data && chmod 0700 /data
USER correio
EXPOSE 8000 25 587 465 143 993 110 995
CMD ["gunicorn", "-c", "python:webmail.gunicorn_conf", "webmail.wsgi:application"]
