"""Images built locally, since nothing can be pulled from the internet here.

`build_image` builds any small image from files given in memory, through the Docker
API's build call (Podman builds it with its own buildah). `busybox_httpd` is the image
the tests, the benchmarks and the demo run: Debian's static busybox, from scratch, whose
default command serves one page naming its task (the container's host name is the
task id's start) and its version (the VERSION environment variable), on port 80 or PORT.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static (scripts/install)
HTTPD_IMAGE = "localhost/shipyard-httpd:1"

_SERVE = """\
#!/bin/sh
# What the image runs unless told otherwise: one page naming the task and its version.
mkdir -p /www
echo "task $(hostname) version ${VERSION:-1}" > /www/index.html
exec httpd -f -v -p "${PORT:-80}" -h /www
"""

_DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY serve /bin/serve
RUN ["/bin/busybox", "mkdir", "-p", "/tmp", "/www"]
CMD ["/bin/serve"]
"""


class ImageError(Exception):
    """The image could not be built (one readable line)."""


def build_image(client: Any, tag: str, dockerfile: str, files: Mapping[str, bytes]) -> str:
    """Build ``tag`` from ``dockerfile`` and ``files`` (name → bytes, mode 0755); its id."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as context:
        for name, data in {"Dockerfile": dockerfile.encode(), **files}.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            context.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    try:
        image, _log = client.images.build(
            fileobj=buffer, custom_context=True, tag=tag, rm=True, pull=False
        )
    except Exception as exc:  # the library raises BuildError, APIError or a requests error
        raise ImageError(f"building {tag} failed: {exc}") from exc
    return str(image.id)


def busybox_httpd(client: Any, tag: str = HTTPD_IMAGE) -> str:
    """The busybox httpd image under ``tag`` (built once per engine; its id)."""
    try:
        return str(client.images.get(tag).id)
    except Exception:  # not there yet (ImageNotFound), or the engine says why on build
        pass
    if not BUSYBOX.is_file():
        raise ImageError(f"{BUSYBOX} is missing: install the Debian package busybox-static")
    files = {"busybox": BUSYBOX.read_bytes(), "serve": _SERVE.encode()}
    return build_image(client, tag, _DOCKERFILE, files)
