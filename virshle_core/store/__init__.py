"""The node's database: the store on sqlite3 (``store``), its schema version by version
(``migrations``), opening it safely (``opening``), and how a VM is written in a row
(``rows``)."""
