"""The web tier: the Flask app factory (``app``), the webhook route (``webhooks``), run pages
and lists (``pages``, ``run_views``, ``graph``, ``logview``, ``present``), the JSON API and its
OpenAPI document (``api``, ``api_models``, ``openapi``, ``manual``, ``actions``), sign-in and
visibility (``auth``, ``login``, ``forge_access``), health and metrics (``health``), artifacts,
and the gunicorn runner (``server``). It stores deliveries and action requests; it never runs
jobs and imports no worker code (see ARCHITECTURE.md)."""
