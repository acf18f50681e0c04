"""Chat: one message in, the assistant's reply out, both stored."""
