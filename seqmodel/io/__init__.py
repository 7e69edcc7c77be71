"""File formats: one module, one reader, one writer and one error text per format.

Only this package opens, parses or writes a user's file; `seqmodel.data` and the entry points
call it. Paths are local files (gzip and BGZF read transparently).
"""
