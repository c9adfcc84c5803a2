"""``iis-pipe app``: a local web page to click on an image and watch the predictor's mask.

- ``catalog``: the images offered (the sources' images, listed cheaply, and uploads in memory);
- ``sessions``: one tab's session as a value (clicks, outputs, IoUs), pure functions;
- ``server``: the Starlette app (a JSON API and the static page in ``static/``), run by uvicorn.

    from iis_pipe.app import Catalog, make_app
    app = make_app(Catalog(["../shared/data/GrabCut"]), make_predictor("grabcut"))
"""

from iis_pipe.app.catalog import Catalog
from iis_pipe.app.server import Limits, make_app

__all__ = ["Catalog", "Limits", "make_app"]
