# CUDA runtime image with the same pins as constraints.txt; `assoc` is the entry point.
#   docker build -t assoc_lightning .
#   docker run --gpus all -v $PWD/runs:/app/runs assoc_lightning fit --config experiments/ig_embedding.yaml --config experiments/base/gpu.yaml
FROM nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 WANDB_MODE=offline ASSOC_DATA_DIR=/data
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv python3-dev git make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY assoc_lightning ./assoc_lightning
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install -c constraints.txt '.[wandb,video]'
COPY experiments ./experiments
COPY scripts ./scripts
ENV PATH=/opt/venv/bin:$PATH
VOLUME ["/data", "/app/runs"]
ENTRYPOINT ["assoc"]
CMD ["--help"]
