# BOOM-TTE model image: one shared base plus the model's own requirements.txt and its folder.
# Every model folder without a Dockerfile of its own is built from this template (boom.images): MODEL is the
# folder name, BOOM_BASE the base its model.yaml names (`image: base` -> boom-tte/base, `image: torch`, the
# default -> boom-tte/base-torch). By hand, from the repository root:
#   docker build -f models/_base/model.Dockerfile --build-arg MODEL=rf --build-arg BOOM_BASE=boom-tte/base:latest -t boom-tte/rf .
# A folder that needs more (system packages, another base) keeps its own models/<name>/Dockerfile, which is
# then used instead of this file (it gets the same BOOM_BASE build argument).
ARG BOOM_BASE=boom-tte/base-torch:latest
FROM ${BOOM_BASE}
ARG MODEL
COPY models/${MODEL}/requirements.txt /opt/boom/models/${MODEL}/requirements.txt
RUN pip install --no-cache-dir -r /opt/boom/models/${MODEL}/requirements.txt
COPY models/${MODEL}/ /opt/boom/models/${MODEL}/
WORKDIR /opt/boom/models/${MODEL}
