# CastSlice's image: a build stage that installs the wheel and its pinned dependencies into
# a virtual environment, and a final stage with only Python and that environment.
# BASE is the upstream Python image by exact tag; tests build with a local base instead
# (no registry is reachable there): --build-arg BASE=localhost/castslice-base.
ARG BASE=docker.io/library/python:3.11.11-slim-bookworm

FROM ${BASE} AS build
WORKDIR /src
COPY pyproject.toml README.md requirements.lock ./
COPY castslice ./castslice
RUN python3 -m venv /opt/castslice \
 && /opt/castslice/bin/pip install --no-cache-dir --disable-pip-version-check \
      --require-hashes -r requirements.lock \
 && /opt/castslice/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps . \
 && /opt/castslice/bin/python -m compileall -q --invalidation-mode unchecked-hash /opt/castslice
# Bytecode is kept and checked against nothing: the root filesystem is read-only, so without
# it every start (every Knative cold start) would compile the whole stack again, ~0.8 s here.

FROM ${BASE}
COPY --from=build /opt/castslice /opt/castslice
ENV PATH=/opt/castslice/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["castslice"]
CMD ["serve"]
