# ecgviz: the dashboard (default), the scoring service or the command line, with the shipped model and ECG5000.
# (PYTHONPATH: the package is used in place from /app, so `python -m ecgviz` works from any directory.)
#   docker build -t ecgviz .
#   docker run --rm -p 8501:8501 -v ecgviz-data:/var/lib/ecgviz ecgviz                  # dashboard
#   docker run --rm -p 8000:8000 ecgviz python -m ecgviz serve --host 0.0.0.0         # REST service
#   docker run --rm ecgviz python -m ecgviz evaluate                                  # command line
# Workspaces and shared models live in the volume /var/lib/ecgviz, so a restarted container finds them.
# The base image and torch are pinned (a rebuild gets the same versions); docs/service.md says how to pin the
# base image by digest as well.

# Build stage: the virtual environment. Every dependency is a wheel, so no compiler is needed, and none of
# pip's caches reach the final image. The libraries' own test suites (torch's C++ test programs, pandas' tests:
# ~200 MB) and torch's C++ headers (for building extensions, 62 MB) are left out.
FROM python:3.11.13-slim-bookworm AS build
# torch's CPU-only wheels (the default PyPI build pulls in CUDA libraries: gigabytes this image never uses)
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0
ENV VIRTUAL_ENV=/opt/venv
COPY requirements-runtime.txt requirements-service.txt /tmp/requirements/
RUN python -m venv "$VIRTUAL_ENV" \
    && "$VIRTUAL_ENV/bin/pip" install --no-cache-dir --index-url "$TORCH_INDEX" "torch==$TORCH_VERSION" \
    && "$VIRTUAL_ENV/bin/pip" install --no-cache-dir -r /tmp/requirements/requirements-runtime.txt \
        -r /tmp/requirements/requirements-service.txt \
    && find "$VIRTUAL_ENV/lib" -depth -type d \( -name tests -o -name test \) -path "*/site-packages/*" \
        -exec rm -rf {} + \
    && rm -rf "$VIRTUAL_ENV/lib/python3.11/site-packages/torch/include"

# Final stage: the environment, the code, the shipped model and the bundled data; runs as a non-root user.
FROM python:3.11.13-slim-bookworm
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OMP_NUM_THREADS=1 \
    PYTHONPATH=/app \
    ECGVIZ_WORKSPACE_DIR=/var/lib/ecgviz/workspaces \
    ECGVIZ_CHECKPOINT_DIR=/var/lib/ecgviz/checkpoints \
    ECGVIZ_CACHE_DIR=/var/lib/ecgviz/cache
# the user, and the folders of the volume it owns (workspaces private to it: uploads are other people's data)
RUN groupadd --gid 10001 ecgviz \
    && useradd --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin ecgviz \
    && install -d -o 10001 -g 10001 -m 700 /var/lib/ecgviz /var/lib/ecgviz/workspaces /var/lib/ecgviz/cache \
    && install -d -o 10001 -g 10001 -m 755 /var/lib/ecgviz/checkpoints
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY app.py ./
COPY .streamlit ./.streamlit
COPY pages ./pages
COPY ecgviz ./ecgviz
COPY data ./data
# compiled once here: the image writes no bytecode (PYTHONDONTWRITEBYTECODE), and every start would compile it again
RUN python -m compileall -q app.py pages ecgviz
# models trained in the dashboard are saved here, so the user owns it
COPY --chown=10001:10001 checkpoints ./checkpoints
VOLUME ["/var/lib/ecgviz"]
# numeric, so a runtime that insists on a non-root user can check it
USER 10001:10001
# 8501: the dashboard; 8000: python -m ecgviz serve --host 0.0.0.0
EXPOSE 8501 8000
# healthy while the dashboard or the service answers its health URL
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-m", "ecgviz.service.healthcheck"]
CMD ["streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=8501", "--server.headless=true"]
