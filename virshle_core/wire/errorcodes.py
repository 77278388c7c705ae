"""The catalogue of error codes, published in the OpenAPI document and docs/api.md.

It lives apart from ``api.py`` because building it costs more than a listing can
spare; ``api.ErrorCode`` loads it on first use.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Every ``error`` code a daemon (or the client, for its own failures) reports.

    A code says what kind of failure it is, for scripts; the message says which VM or
    key, and the hint what to do. A plugin reports its failures with one of these
    (``vmm_failed``, ``failed``...), so clients can rely on the list.
    """

    # generic, one per error class (virshle_core.errors)
    FAILED = "failed"
    BAD_REQUEST = "bad_request"
    BAD_USAGE = "bad_usage"  # the command line's: options and arguments
    BAD_CONFIG = "bad_config"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    CANCELLED = "cancelled"
    NODE_UNAVAILABLE = "node_unavailable"
    INTERNAL = "internal"
    # the request itself (HTTP and JSON)
    NO_BODY = "no_body"
    BAD_JSON = "bad_json"
    BAD_BODY = "bad_body"
    BAD_HTTP = "bad_http"
    BODY_TOO_LARGE = "body_too_large"
    BODY_TIMEOUT = "body_timeout"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    URI_TOO_LONG = "uri_too_long"
    HEADERS_TOO_LARGE = "headers_too_large"
    NO_ROUTE = "no_route"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_WEBSOCKET = "not_websocket"
    # what the request names
    BAD_NAME = "bad_name"
    BAD_REF = "bad_ref"
    AMBIGUOUS_REF = "ambiguous_ref"
    AMBIGUOUS = "ambiguous"
    BAD_STATE = "bad_state"
    BAD_COUNT = "bad_count"
    BAD_USER_DATA = "bad_user_data"
    BAD_KEY = "bad_key"
    NOT_OWNER = "not_owner"
    NOT_ADMIN = "not_admin"
    NAME_TAKEN = "name_taken"
    IFNAME_TAKEN = "ifname_taken"
    VM_NOT_FOUND = "vm_not_found"
    NODE_NOT_FOUND = "node_not_found"  # the dashboard's: a node its configuration lacks
    BAD_ACTION = "bad_action"  # the dashboard's: an action it does not know
    BAD_LISTEN = "bad_listen"  # `virshle web --listen`: not HOST:PORT, or not loopback
    TEMPLATE_NOT_FOUND = "template_not_found"
    TEMPLATE_DISK_MISSING = "template_disk_missing"
    DIGEST_MISMATCH = "digest_mismatch"
    DOWNLOAD_FAILED = "download_failed"
    DOWNLOAD_TOO_SLOW = "download_too_slow"
    # where VMs go
    LIMIT_EXCEEDED = "limit_exceeded"
    NO_SPACE = "no_space"
    NODE_FULL = "node_full"
    NO_NODE_FITS = "no_node_fits"
    # a VM's state
    VM_RUNNING = "vm_running"
    VM_NOT_RUNNING = "vm_not_running"
    VM_NOT_PAUSED = "vm_not_paused"
    NOT_SUPPORTED = "not_supported"
    NO_ADDRESS = "no_address"
    # moving a VM between nodes
    VM_MOVING = "vm_moving"
    VM_BUSY = "vm_busy"
    SAME_NODE = "same_node"
    NO_MOVE = "no_move"
    MIGRATION_FAILED = "migration_failed"
    BASE_MISSING = "base_missing"
    NOT_TUNNEL = "not_tunnel"
    NO_NETWORK = "no_network"
    NO_LEASE = "no_lease"
    # snapshots and disks
    SNAPSHOT_NOT_FOUND = "snapshot_not_found"
    SNAPSHOT_EXISTS = "snapshot_exists"
    SNAPSHOT_SHAPE = "snapshot_shape"
    DISK_NOT_FOUND = "disk_not_found"
    BAD_SIZE = "bad_size"
    QEMU_IMG_FAILED = "qemu_img_failed"
    NO_CONSOLE = "no_console"
    CONSOLE_UNREACHABLE = "console_unreachable"
    # hypervisors
    NO_HYPERVISOR = "no_hypervisor"
    HYPERVISOR_MISSING = "hypervisor_missing"
    VMM_FAILED = "vmm_failed"
    CH_API = "ch_api"
    NO_FIRMWARE = "no_firmware"
    FIRMWARE_MISSING = "firmware_missing"
    BOOT_FILE_MISSING = "boot_file_missing"
    # networks
    UNKNOWN_NET_TYPE = "unknown_net_type"
    UNSUPPORTED_NET = "unsupported_net"
    BRIDGE_MISSING = "bridge_missing"
    OVS_MISSING = "ovs_missing"
    OVS_NOT_RUNNING = "ovs_not_running"
    OVS_FAILED = "ovs_failed"
    MACVTAP_LINK_MISSING = "macvtap_link_missing"
    MACVTAP_NO_LINK = "macvtap_no_link"
    IP_FAILED = "ip_failed"
    IPROUTE2_MISSING = "iproute2_missing"
    # the node daemon itself (`node serve`, `node init`)
    NOT_INITIALIZED = "not_initialized"
    ROOT_NOT_WRITABLE = "root_not_writable"
    ALREADY_SERVING = "already_serving"
    SOCKET_PATH_TAKEN = "socket_path_taken"
    CANNOT_LISTEN = "cannot_listen"
    CANNOT_START = "cannot_start"
    DAEMON_RUNNING = "daemon_running"
    BAD_DATABASE = "bad_database"
