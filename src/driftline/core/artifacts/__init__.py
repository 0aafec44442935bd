"""Artifact bytes: a byte-store protocol, its backends, and the content-addressed layer.

``open_byte_store(url)`` picks a backend by URL scheme through one table; the
:class:`ContentStore` on top stores every object under its content hash.
"""

from driftline.core.artifacts.bytestore import ByteStore, open_byte_store
from driftline.core.artifacts.content import Blob, ContentStore
from driftline.core.artifacts.paths import Destination, validate_artifact_path

__all__ = [
    "Blob",
    "ByteStore",
    "ContentStore",
    "Destination",
    "open_byte_store",
    "validate_artifact_path",
]
