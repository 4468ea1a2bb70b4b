# One image for every Django service of docker-compose.yml (web, worker, gpu-worker, beat, flower).
# torch comes from requirements.txt; the NVIDIA container runtime provides the driver to gpu-worker.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UNITCROWD_VAR_DIR=/var/lib/unitcrowd \
    MEDIA_ROOT=/var/lib/unitcrowd/media \
    DATASETS_ROOT=/var/lib/unitcrowd/datasets \
    STATIC_ROOT=/app/staticfiles

# curl: health checks; libgomp1: torch's OpenMP on the CPU.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl libgomp1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Static files are collected at build time and served by whitenoise from the web container.
RUN SECRET_KEY=build-only-not-secret DEBUG=0 python manage.py collectstatic --noinput --verbosity 0 \
    && useradd --create-home --uid 1000 unitcrowd \
    && mkdir -p /var/lib/unitcrowd/media /var/lib/unitcrowd/datasets \
    && chown -R unitcrowd:unitcrowd /var/lib/unitcrowd /app
USER unitcrowd

EXPOSE 8000
CMD ["gunicorn", "annotate_site.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "120"]
