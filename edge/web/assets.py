"""The page's own files under ``/static/``: its script and style, and the vendored uPlot (MIT, v1.6.32).

Only the files listed here are served; they are read once, at start. Browsers revalidate them
with their ETag (Cache-Control: no-cache), so an upgraded daemon's page is never stale.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

# URL path under /static/ -> (file under fer_edge/web/static/, media type)
FILES = {
    "dashboard.js": ("dashboard.js", "text/javascript"),
    "dashboard.css": ("dashboard.css", "text/css"),
    "uPlot.iife.min.js": ("vendor/uPlot.iife.min.js", "text/javascript"),
    "uPlot.min.css": ("vendor/uPlot.min.css", "text/css"),
}


class StaticFiles:
    """Serves FILES from memory."""

    def __init__(self) -> None:
        root = resources.files("fer_edge.web") / "static"
        self.files = {name: ((root / path).read_bytes(), kind) for name, (path, kind) in FILES.items()}

    def rules(self) -> list[Rule]:
        """One GET rule per file, its endpoint the handler."""
        return [Rule(f"/static/{name}", endpoint=self.on_file, methods=["GET"]) for name in self.files]

    def on_file(self, environ: WSGIEnvironment) -> Response:
        """The file; 304 when the browser's copy is current."""
        data, kind = self.files[environ["PATH_INFO"].rsplit("/", 1)[-1]]
        response = Response(data, mimetype=kind, headers={"Cache-Control": "no-cache"})
        response.add_etag()
        return response.make_conditional(Request(environ))
