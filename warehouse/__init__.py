"""Kho số hóa: the HTTP API and the domain rules of the digitization warehouse."""
