# One image for every Correio service; docker-compose.yml picks the command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 CORREIO_VAR_DIR=/data
WORKDIR /app
COPY requirements.lock .
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
RUN mkdir -p /data && python manage.py collectstatic --noinput -v0
EXPOSE 8000 25 587 465 143 993 110 995
CMD ["gunicorn", "webmail.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
