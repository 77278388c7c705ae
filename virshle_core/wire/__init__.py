"""What crosses a node's socket, declared once and light enough for the CLI's start-up:
the records (``record``: ``Record``, ``dump``), the documents of the API (``api``: the VM,
requests, replies, events), the catalogue of error codes (``errorcodes``) and how a VM is
named on the wire (``refs``: ``id:7``, ``name:web``, ``uuid:…``)."""
