# BOOM-TTE torch base: boom-tte/base plus the pinned torch (CUDA build from PyPI; it also runs on CPU).
# Built from the repository root:  docker build -f models/_base/torch.Dockerfile -t boom-tte/base-torch:latest .
ARG BOOM_BASE=boom-tte/base:latest
FROM ${BOOM_BASE}
# Offline builds: torch's wheels and the torch models' have their own wheelhouse (models/_base/wheels-torch,
# GBs), copied here only, beside the base's; model images on this base install from /opt/boom/wheels.
# An online build finds the folder almost empty and installs from PyPI.
COPY models/_base/wheels-torch/ /opt/boom/wheels/
COPY models/_base/torch-requirements.txt /opt/boom/torch-requirements.txt
RUN pip install --no-cache-dir -r /opt/boom/torch-requirements.txt && python -c "import torch"
