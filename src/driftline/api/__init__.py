"""Wire formats shared by the server and the remote (HTTP) backends."""
