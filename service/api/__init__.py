"""The web layer: FastAPI app, routes, error envelope and the static map page.

Only this package imports fastapi/starlette; it talks to the core through :class:`Engine`.
"""
