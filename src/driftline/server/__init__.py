"""The driftline server: an ASGI app over the same services the SDK uses.

``create_app`` builds the app; ``driftline server`` runs it under uvicorn with several
worker processes. Nothing in the library imports this package (it is an adapter).
"""
