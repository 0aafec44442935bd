"""The stage-agnostic kernel: ids, time, hashing, paging, metadata database, artifact bytes.

Nothing in ``core`` imports a stage package.
"""
