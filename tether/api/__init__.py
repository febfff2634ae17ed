"""The HTTP API (Litestar): ``tether.api.app.create_app`` builds it, ``tether.api.server.
serve`` runs it. See docs/http-api.md. Nothing is imported here, so importing
``tether.api.settings`` (the CLI does) stays cheap."""
