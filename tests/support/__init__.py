"""Shared test helpers, written once: ports, services, throwaway servers, processes, fakes."""
