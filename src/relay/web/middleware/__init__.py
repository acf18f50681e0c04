"""Pure ASGI middleware, one concern each: request context, access log and metrics, bodies."""
