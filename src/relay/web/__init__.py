"""HTTP at the edge: the only package that knows FastAPI and Starlette."""
