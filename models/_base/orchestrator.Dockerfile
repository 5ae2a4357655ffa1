# BOOM-TTE orchestrator: the base image plus the `boom` core (data, runners, scoring, reports) for compose.
# It drives the model images through the host's Docker socket; it never runs model code itself.
ARG BOOM_BASE=boom-tte/base:latest
FROM ${BOOM_BASE}
USER root
COPY models/_base/orchestrator-requirements.txt /opt/boom/orchestrator-requirements.txt
COPY models/_base/wheels-orchestrator/ /opt/boom/wheels-orchestrator/
RUN pip install --no-cache-dir --find-links /opt/boom/wheels-orchestrator -r /opt/boom/orchestrator-requirements.txt \
    && rm -rf /opt/boom/wheels-orchestrator
COPY core/ /opt/boom/src/core/
RUN pip install --no-cache-dir --no-deps --no-build-isolation /opt/boom/src/core && boom --help >/dev/null
