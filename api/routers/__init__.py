"""The API's routers, one module an area, each with a module-level ``router`` (wired in ``api.app``)."""
