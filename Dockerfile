# One image for every Correio service; docker-compose.yml picks the command.

# htmx and Quill (the rich-text editor) come from the npm registry (package.json / package-lock.json), never from a CDN.
FROM node:20-slim AS assets
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 CORREIO_VAR_DIR=/data
WORKDIR /app
COPY requirements.lock .
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
COPY --from=assets /app/node_modules/htmx.org/dist /app/node_modules/htmx.org/dist
COPY --from=assets /app/node_modules/quill/dist /app/node_modules/quill/dist
# No collectstatic: whitenoise serves static files through Django's finders
# (WHITENOISE_USE_FINDERS), and running settings at build time would write a secret key into
# the image.
RUN mkdir -p /data
EXPOSE 8000 25 587 465 143 993 110 995
CMD ["gunicorn", "webmail.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
