# BOOM-TTE torch base: boom-tte/base plus the pinned torch (CUDA build from PyPI; it also runs on CPU).
# Built from the repository root:  docker build -f models/_base/torch.Dockerfile -t boom-tte/base-torch:latest .
ARG BOOM_BASE=boom-tte/base:latest
FROM ${BOOM_BASE}
# Offline builds: the wheelhouse is copied again here, since torch's wheels may have been added to it after
# the base image was built (an online build finds an almost empty folder and installs from PyPI).
COPY models/_base/wheels/ /opt/boom/wheels/
COPY models/_base/torch-requirements.txt /opt/boom/torch-requirements.txt
RUN pip install --no-cache-dir -r /opt/boom/torch-requirements.txt && python -c "import torch"
