"""Tools: what the assistant can use, from TOOLS_FILE and the backend."""
