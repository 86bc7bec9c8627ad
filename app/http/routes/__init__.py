"""The HTTP API's routes, one module per resource. Each resource is a class whose constructor
lists what its handlers use, and whose ``routes()`` are its endpoints (each declared with
``http.openapi.operation``)."""
