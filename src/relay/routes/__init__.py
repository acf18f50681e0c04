"""HTTP routes: thin. Parse, call one service, shape the reply."""
