"""paperscope: semantic search and topic maps for scientific paper abstracts.

A paper flows one way through the modules of this package:
ingest -> store -> embed -> index -> topics -> maps -> build (publish) -> engine -> api / cli.
The core (everything but ``service.api``) never imports the web layer.
"""

__version__ = "0.1.0"
