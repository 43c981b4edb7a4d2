# One image for forgeflow's web, worker and watcher processes:
#   forgeflow web | forgeflow worker | forgeflow watcher
FROM registry.fedoraproject.org/fedora-minimal:41 AS build
RUN microdnf install -y --nodocs --setopt=install_weak_deps=0 python3.11 git && microdnf clean all
WORKDIR /src
COPY requirements.lock pyproject.toml README.md ./
RUN python3.11 -m venv /opt/forgeflow \
 && /opt/forgeflow/bin/pip install --no-cache-dir --disable-pip-version-check -r requirements.lock
COPY service ./service
COPY handlers ./handlers
RUN /opt/forgeflow/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps --no-build-isolation . \
 && /opt/forgeflow/bin/pip uninstall -y --disable-pip-version-check \
      pytest pytest-httpserver pytest-timeout pytest-asyncio kmock kubernetes-validate ruff mypy \
      types-PyYAML types-requests 2>/dev/null || true

FROM registry.fedoraproject.org/fedora-minimal:41
RUN microdnf install -y --nodocs --setopt=install_weak_deps=0 python3.11 git-core && microdnf clean all
COPY --from=build /opt/forgeflow /opt/forgeflow
COPY config /etc/forgeflow
ENV PATH=/opt/forgeflow/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FORGEFLOW_DATA_DIR=/var/lib/forgeflow \
    FORGEFLOW_HOST=0.0.0.0 \
    FORGEFLOW_PORT=8080 \
    FORGEFLOW_EXECUTOR=argo
RUN mkdir -p /var/lib/forgeflow && chown 1001:0 /var/lib/forgeflow && chmod g+rwX /var/lib/forgeflow
# Non-root; OpenShift runs it with an arbitrary uid in group 0, which may write the data dir.
USER 1001
EXPOSE 8080
ENTRYPOINT ["forgeflow"]
CMD ["web"]
