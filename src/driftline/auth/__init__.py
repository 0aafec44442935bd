"""Users, roles, API tokens and grants of a driftline server."""
