# Two images from one file: `api` (onnxruntime, no torch) and `worker` (adds torch, CPU build).
FROM python:3.11-slim AS base
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 GANSERVE_DATA=/data GANSERVE_REPOSITORY=/data/models:/app/models
COPY pyproject.toml README.md ./
COPY ganserve ./ganserve
COPY service ./service
COPY training ./training

FROM base AS api
RUN pip install .
COPY models ./models
EXPOSE 8000
CMD ["ganserve", "serve", "--host", "0.0.0.0", "--port", "8000"]

FROM base AS worker
# The CPU wheel: PyPI's default torch build carries CUDA (several GB).
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 && pip install '.[train]'
COPY models ./models
CMD ["ganserve", "worker"]
