# One image for forgeflow's web, worker and watcher processes:
#   forgeflow web | forgeflow worker | forgeflow watcher      (see openshift/ for a deployment)
#
# Build: docker build -t forgeflow .   (or on OpenShift: oc start-build forgeflow --from-dir=.)
# Only forgeflow's runtime dependencies are installed, at the versions pinned in
# requirements.lock (used as constraints: the test and lint tools listed there stay out).

FROM registry.fedoraproject.org/fedora-minimal:41 AS build
RUN microdnf install -y --nodocs --setopt=install_weak_deps=0 python3.11 \
 && microdnf clean all
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.lock pyproject.toml README.md ./
# Dependencies first (their layer is reused while only forgeflow's code changes).
RUN python3.11 -m venv /opt/forgeflow \
 && python3.11 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > runtime.txt \
 && /opt/forgeflow/bin/pip install -c requirements.lock -r runtime.txt setuptools wheel
COPY service ./service
COPY handlers ./handlers
RUN /opt/forgeflow/bin/pip install --no-deps --no-build-isolation . \
 && /opt/forgeflow/bin/pip uninstall -y setuptools wheel \
 && /opt/forgeflow/bin/python -m compileall -q /opt/forgeflow/lib

FROM registry.fedoraproject.org/fedora-minimal:41
# git-core: the embedded `local` forge and executor use git; nothing else is added.
RUN microdnf install -y --nodocs --setopt=install_weak_deps=0 python3.11 git-core \
 && microdnf clean all \
 && rm -rf /var/cache/* /var/log/dnf* /var/lib/dnf
COPY --from=build /opt/forgeflow /opt/forgeflow
COPY config /etc/forgeflow
ENV PATH=/opt/forgeflow/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/forgeflow \
    FORGEFLOW_DATA_DIR=/var/lib/forgeflow \
    FORGEFLOW_HOST=0.0.0.0 \
    FORGEFLOW_PORT=8080 \
    FORGEFLOW_EXECUTOR=argo
# Non-root. OpenShift runs the image with an arbitrary uid in group 0: the data dir is
# group-writable (in the deployment it is an emptyDir; the root filesystem may be read-only).
RUN mkdir -p /var/lib/forgeflow && chown 1001:0 /var/lib/forgeflow && chmod g+rwX /var/lib/forgeflow
USER 1001
WORKDIR /var/lib/forgeflow
EXPOSE 8080
ENTRYPOINT ["forgeflow"]
CMD ["web"]
