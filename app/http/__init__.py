"""The HTTP API: the Starlette app, its routes and their contracts per resource, the API's
description, middleware, error handling, and the server's edge (its limits)."""
