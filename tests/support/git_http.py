"""Git's smart HTTP protocol for the fake forges: ``git http-backend`` behind basic auth, so a
private repository can be cloned only with the right token (as from a real forge)."""

from __future__ import annotations

import base64
import os
import subprocess

from werkzeug import Request, Response

from tests.support.gitrepo import GitRepo

GIT_PATHS = r"\.git/(info/refs|git-upload-pack)$"


def credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return user, password


def serve_git(request: Request, repo: GitRepo, path: str, token: str) -> Response:
    """Answer one smart-HTTP request for ``repo`` (``path``: ``info/refs`` or
    ``git-upload-pack``), 401 unless the password is ``token``."""
    given = credentials(request)
    if given is None or given[1] != token:
        return Response("authentication required", 401, {"WWW-Authenticate": 'Basic realm="fake forge"'})
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_PROJECT_ROOT": str(repo.bare.parent),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": f"/{repo.bare.name}/{path}",
        "REQUEST_METHOD": request.method,
        "QUERY_STRING": request.query_string.decode(),
        "CONTENT_TYPE": request.content_type or "",
        "GIT_PROTOCOL": request.headers.get("Git-Protocol", ""),
        "HTTP_CONTENT_ENCODING": request.headers.get("Content-Encoding", ""),
        "REMOTE_USER": given[0],
    }
    done = subprocess.run(
        ["git", "http-backend"],
        input=request.get_data(),
        env=env,
        capture_output=True,
        check=False,
        timeout=60,
    )
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    status, headers = 200, {}
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        elif name:
            headers[name] = value.strip()
    return Response(body, status, headers)
