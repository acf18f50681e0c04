"""History: a client's own messages, paged and searched."""
