"""The glean-sdk route's ping uploader: Glean's own HTTP uploader, plus a line per attempt.

glean-sdk uploads from a subprocess it spawns per upload, so the recording
process cannot see what happened to a ping. This uploader runs *there*
(pickled with the SDK's configuration) and appends ``<document id> <ping>
<result>`` to a log in the data directory, with one ``O_APPEND`` write per
line; the sink reads it to count deliveries, retries and rejections. Imported
only where glean-sdk is installed.
"""

from __future__ import annotations

import os
from typing import Any

from glean.net import HttpClientUploader
from glean.net.ping_uploader import UploadResult


class _Http(HttpClientUploader):  # type: ignore[misc]
    # Glean's default is 10 s per operation; a wedged endpoint should cost less
    # of the one-at-a-time upload subprocess (the ping is retried later).
    _DEFAULT_TIMEOUT = 5


def classify(result: Any) -> str:
    """ "delivered", "retry" or "rejected", as glean-core will treat the result."""
    if isinstance(result, UploadResult.HTTP_STATUS):
        code = int(result.code)
        if 200 <= code < 300:
            return "delivered"
        # glean-core deletes a ping on a 4xx and retries it on anything else.
        return "rejected" if 400 <= code < 500 else "retry"
    if isinstance(result, UploadResult.RECOVERABLE_FAILURE):
        return "retry"
    return "rejected"


class CountingUploader(HttpClientUploader):  # type: ignore[misc]
    def __init__(self, log_path: str) -> None:
        self.log_path = log_path

    def upload(self, capable_request: Any) -> Any:
        result = _Http.upload(capable_request)
        request = capable_request.request
        doc = request.doc_id[0] if isinstance(request.doc_id, tuple) else request.doc_id
        # /submit/<app>/<ping>/<version>/<document id>
        parts = request.url.split("/submit/", 1)[-1].split("/")
        ping = parts[1] if len(parts) > 1 else "-"
        line = f"{doc} {ping} {classify(result)}\n".encode()
        try:
            fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError:
            pass  # counting is best effort; the upload itself happened
        return result
