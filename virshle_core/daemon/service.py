"""``virshle node init --systemd``: install the node daemon as a systemd service.

The unit is ``virshle_core/systemd/virshle.service`` (``contrib/systemd/`` links to it),
with ``ExecStart`` set to the ``virshle`` that runs this, and its ``--config`` when the
configuration is not the default file. Where systemd runs, the unit is enabled; where it
does not (a container), it is written and the user is told how to enable it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import VirshleError
from ..locations import DEFAULT_PATH
from ..log import log_command

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..config import Config

UNIT = "virshle.service"
UNIT_DIR = Path("/etc/systemd/system")


def unit_text(virshle: str, config_path: str | None, after: list[str] = ()) -> str:
    """The unit, its ExecStart naming ``virshle`` (and ``--config`` if not the default),
    ordered ``After=`` the units the plugins name (``virshle_service_after``)."""
    template = (Path(__file__).parent.parent / "systemd" / UNIT).read_text()
    command = f"{virshle} node serve"
    if config_path and os.path.abspath(config_path) != DEFAULT_PATH:
        command = f"{virshle} --config {os.path.abspath(config_path)} node serve"
    lines = []
    for line in template.splitlines():
        if line.startswith("ExecStart="):
            line = f"ExecStart={command}"
        elif line.startswith("After=") and after:
            line = " ".join([line, *after])
        lines.append(line)
    return "\n".join(lines) + "\n"


def this_virshle() -> str:
    """The absolute path of the ``virshle`` script running now (what the unit must run)."""
    argv0 = sys.argv[0]
    found = argv0 if os.path.sep in argv0 else shutil.which(argv0)
    if found and os.path.basename(found) in ("virshle", "v"):
        return os.path.join(os.path.dirname(os.path.abspath(found)), "virshle")
    return shutil.which("virshle") or os.path.join(os.path.dirname(sys.executable), "virshle")


def systemd_running() -> bool:
    """Whether systemd manages this host (not a container or another init)."""
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def unit_path() -> Path:
    """Where the unit is installed (``$VIRSHLE_SYSTEMD_UNIT_DIR`` for tests)."""
    return Path(os.environ.get("VIRSHLE_SYSTEMD_UNIT_DIR") or UNIT_DIR) / UNIT


def how_to_start() -> str:
    """What starts the node daemon on this host, for a hint: its unit where one is
    installed and systemd runs, else the command."""
    if systemd_running() and unit_path().exists():
        return "`systemctl start virshle`"
    return "`virshle node serve` (after `virshle node init --all`)"


def install(config: Config) -> list[str]:
    """Write the unit and enable it where systemd runs; what was done, a line each."""
    from ..hooks import plugins

    path = unit_path()
    unit_dir = path.parent
    text = unit_text(this_virshle(), config.path, plugins().service_after(config=config))
    done = []
    try:
        unit_dir.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            partial = path.with_name(f".{UNIT}.partial")
            partial.write_text(text)
            os.chmod(partial, 0o644)
            os.replace(partial, path)
            done.append(f"{path} written")
    except OSError as exc:
        raise VirshleError(f"cannot write {path}: {exc.strerror}",
                           "Run `virshle node init --systemd` as root.") from None
    if os.environ.get("VIRSHLE_SYSTEMD_UNIT_DIR"):
        return done  # a unit directory of its own (tests, packaging): systemd is not told
    if not systemd_running():
        done.append("systemd is not running here: enable the service where it runs, with "
                    "`systemctl daemon-reload && systemctl enable --now virshle`")
        return done
    for argv in (["systemctl", "daemon-reload"], ["systemctl", "enable", UNIT]):
        log_command(argv)
        result = subprocess.run(argv, capture_output=True, text=True)
        if result.returncode != 0:
            raise VirshleError(f"{' '.join(argv)} failed: {result.stderr.strip()}",
                               f"The unit is in {path}; check `systemctl status virshle`.")
    done.append(f"enabled {UNIT}: start it with `systemctl start virshle`")
    return done
