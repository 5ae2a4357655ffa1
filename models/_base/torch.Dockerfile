# BOOM-TTE torch base: boom-tte/base plus the pinned torch (CUDA build from PyPI; it also runs on CPU).
# Built from the repository root:  docker build -f models/_base/torch.Dockerfile -t boom-tte/base-torch:latest .
ARG BOOM_BASE=boom-tte/base:latest
FROM ${BOOM_BASE}
COPY models/_base/torch-requirements.txt /opt/boom/torch-requirements.txt
RUN pip install --no-cache-dir -r /opt/boom/torch-requirements.txt && python -c "import torch"
