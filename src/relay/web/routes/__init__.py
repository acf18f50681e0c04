"""The routes, one module per part of the API; every route is a web.routing.Route."""
