"""RAG building blocks that need neither a vector store nor a model.

`documents` turns files, folders, zips and uploads into plain text; `chunking` cuts that
text into spans whose offsets point back into the document; `retrieval_metrics` scores a
ranked list of retrieved chunks against a QA row. Keeping these pure makes them cheap to
test and lets the index and the evaluation code share one definition of "a chunk".
"""
