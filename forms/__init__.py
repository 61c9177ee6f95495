"""Flask edges: REST API, web pages, and the marshmallow schemas they validate with."""
