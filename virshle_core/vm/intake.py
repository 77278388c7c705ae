"""What a create request must be before anything is made for it: a template the node
offers, a count it takes, valid names and user-data, template disks that exist."""

from __future__ import annotations

from ..wire.api import CreateRequest
from ..config import VmTemplate
from ..errors import NotFound, UsageError
from ..models import NodeContext
from ..wire.refs import validate_name
from .userdata import template_user_data, user_data_problem


def check_request(node: NodeContext, request: CreateRequest
                  ) -> tuple[VmTemplate, list[str | None], str | None]:
    """The template, the names (None: a random one) and the user-data of a create, or the
    error that refuses it (exit 2 / HTTP 400 or 404) before anything is made."""
    template = node.config.template(request.template)
    if template is None:
        known = ", ".join(t.name for t in node.config.templates) or "none"
        raise NotFound(
            f"no template {request.template!r} on node {node.name!r} (templates: {known})",
            "Add it as [[template.vm]] in the node's config.toml, then run `virshle node reload` "
            "(a running daemon reads its file again); `virshle template ls` lists them.",
            code="template_not_found",
        )
    most = node.config.host.max_count
    if not 1 <= request.count <= most:
        raise UsageError(f"count must be between 1 and {most}, not {request.count}",
                         "Create fewer VMs per request; [host] max_count sets the maximum.",
                         code="bad_count")
    if request.names is not None:
        if request.name is not None or len(request.names) != request.count:
            raise UsageError(f"names gives {len(request.names)} names for {request.count} VMs",
                             "Give count VMs' names in names, without name.", code="bad_count")
        names: list[str | None] = list(request.names)
    elif request.name is not None and request.count > 1:
        names = [f"{request.name}-{index + 1}" for index in range(request.count)]
    else:
        names = [request.name] * request.count
    for name in dict.fromkeys(names):
        if name is not None:
            validate_name(name)
    user_data = request.user_data
    if user_data is None and template.user_data:
        user_data = template_user_data(template)
    if user_data is not None:
        problem = user_data_problem(user_data)
        if problem:
            raise UsageError(f"user-data {problem}", code="bad_user_data")
    for disk in template.disk:
        if disk.is_url:
            continue  # downloaded into the cache (checked against its sha256) when needed
        path = disk.expanded_path
        if not path.is_file():
            raise UsageError(
                f"template {template.name!r}: disk {disk.name!r} is missing: {path} is not a file",
                "Fix the path in config.toml ([[template.vm.disk]]).",
                code="template_disk_missing",
            )
    return template, names, user_data
