"""The marker every hookspec carries (pluggy's, for the project name ``virshle``)."""

import pluggy

hookspec = pluggy.HookspecMarker("virshle")
