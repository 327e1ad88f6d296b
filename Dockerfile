# The production image: gunicorn serves Django, whitenoise the static files; the same image runs the Celery
# worker and beat (see docker-compose.yml). Configured only by environment variables.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

RUN useradd --create-home --uid 1000 app
COPY pyproject.toml README.md ./
COPY config ./config
COPY districts ./districts
COPY campaigns ./campaigns
COPY participants ./participants
COPY reports ./reports
RUN pip install --upgrade pip && pip install .
COPY . .
# collectstatic needs settings but no database; the key here is a build-time placeholder, never used at run time.
RUN SECRET_KEY=build-only DEBUG=false python manage.py collectstatic --noinput \
    && mkdir -p /app/media && chown -R app:app /app/media
USER app
EXPOSE 8000
# The access log names the path without its query string: a search or look-up may carry an SI number.
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "60", \
     "--access-logfile", "-", "--access-logformat", "%(h)s %(t)s %(m)s %(U)s %(s)s %(b)s %(L)s"]
