"""gunicorn's own log lines (start-up, workers, access) in the format of the app's (orders_project.logs).

The access line is a record with fields, not gunicorn's Apache-style string: method,
path (PATH_INFO: never the query string, which could carry a token), status, duration,
bytes, the client address, and the request's request_id / trace_id / span_id taken
from the response headers the app set (orders_project.request_ids). No request
header, cookie or body is logged.
"""

import logging
from typing import Any

from gunicorn.glogging import Logger  # type: ignore[import-untyped]  # gunicorn ships no type hints

from orders_project.logs import ContextFilter, JsonFormatter, TextFormatter, log_format


class GunicornLogger(Logger):
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        formatter = JsonFormatter() if log_format() == "json" else TextFormatter()
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter)
                handler.addFilter(ContextFilter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        headers = {name.lower(): value for name, value in resp.headers}
        traceparent = headers.get("traceparent", "").split("-")
        ids = (traceparent[1], traceparent[2]) if len(traceparent) == 4 else (None, None)
        method, path = environ.get("REQUEST_METHOD", "-"), environ.get("PATH_INFO", "-")
        status = str(resp.status).split(None, 1)[0]
        try:
            self.access_log.info(
                "%s %s %s",
                method,
                path,
                status,
                extra={
                    "method": method,
                    "path": path,
                    "status": int(status) if status.isdigit() else status,
                    "duration_ms": round(request_time.total_seconds() * 1000, 1),
                    "bytes": getattr(resp, "sent", None),
                    "remote_addr": environ.get("REMOTE_ADDR"),
                    "request_id": headers.get("x-request-id"),
                    "trace_id": ids[0],
                    "span_id": ids[1],
                },
            )
        except Exception:
            logging.getLogger(__name__).exception("Could not write an access log line")
