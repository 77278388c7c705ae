"""The node daemon: ``virshle node init`` and ``virshle node serve``.

``init`` prepares the host (directories, database, network through the
``virshle_node_init`` hook). ``server`` serves the HTTP API on the node's
unix socket; only ``node serve`` imports it (and h11 and wsproto with it).
"""
